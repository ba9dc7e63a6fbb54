//! Benchmark of shared-fs against references measured in the same process.
//!
//! `cargo run --release -p shared-fs --example bench -- [--json PATH] [--quick]`
//!
//! Every figure is a ratio against a baseline, never an absolute time: the
//! machines this runs on are small and shared, so absolute numbers drift by
//! tens of percent between runs while a ratio of interleaved measurements
//! stays put. Baseline and subject rounds alternate and each side reports the
//! median of its rounds.
//!
//! 1. Per-operation time, shared-fs vs the same operation on Linux tmpfs
//!    through `std::fs` (stat, open+read+close, 4 KiB random pread,
//!    create+unlink, readdir). Goal: shared-fs takes <= 0.2 of tmpfs's time.
//! 2. Sequential read throughput of a 64 MiB file vs a plain 64 MiB memcpy.
//!    Goal: >= 0.8 of memcpy.
//! 3. Read throughput of 2 threads on 2 different files vs 1 thread.
//!    Goal: >= 1.8x.
//!
//! A missed goal is a result, not an error: the exit status is non-zero only
//! when something actually fails (I/O error, errno from shared-fs, bad
//! arguments).

use std::error::Error;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shared_fs::oflags::*;
use shared_fs::{system_clock, Config, FileSystem, Ino};

type Res<T> = Result<T, Box<dyn Error>>;

const ROOT: Ino = FileSystem::ROOT;
const MIB: usize = 1 << 20;
/// Size of the big files (figures 1c, 2, 3) and of the memcpy buffers.
const BIG: usize = 64 * MIB;
/// Read size for the throughput figures.
const CHUNK: usize = MIB;
/// Entries in the directory listed by figure 1e.
const LIST_ENTRIES: usize = 1000;
/// Size of the small file of figures 1a, 1b.
const SMALL_FILE: usize = 1000;

// Paths, identical in both trees and relative to the tree's root (the
// process's working directory for std::fs, `ROOT` for shared-fs), so both
// sides walk the same number of components.
const DEEP_FILE: &str = "d1/d2/d3/file.php";
const BIG_FILES: [&str; 2] = ["big0", "big1"];
const LIST_DIR: &str = "list";
const SCRATCH_FILE: &str = "scratch/new.tmp";

/// How much work a run does; `--quick` shrinks it.
#[derive(Clone, Copy)]
struct Settings {
    /// Timed rounds per side and figure (odd, so the median is one round).
    rounds: usize,
    /// Wall time one round of a per-operation figure should take; the
    /// iteration count is calibrated on the baseline to reach it.
    round_target: Duration,
    /// Passes over a 64 MiB file per round of figures 2 and 3.
    passes: usize,
}

const DEFAULT: Settings = Settings { rounds: 31, round_target: Duration::from_millis(25), passes: 6 };
const QUICK: Settings = Settings { rounds: 7, round_target: Duration::from_millis(5), passes: 2 };

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, ratio: f64) -> bool {
        match self {
            Goal::AtMost(g) => ratio <= g,
            Goal::AtLeast(g) => ratio >= g,
        }
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Goal::AtMost(g) => write!(f, "<= {g}"),
            Goal::AtLeast(g) => write!(f, ">= {g}"),
        }
    }
}

struct Figure {
    name: String,
    value: f64,
    baseline: f64,
    unit: &'static str,
    goal: Goal,
    method: String,
}

impl Figure {
    fn ratio(&self) -> f64 {
        self.value / self.baseline
    }
}

// ------------------------------------------------------------------ timing

/// Median of a non-empty sample.
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Runs `rounds` timed rounds of every side, alternating between sides, and
/// returns each side's median in the order given. Alternating spreads the
/// machine's noise (other tenants, frequency changes) over all sides instead
/// of letting a slow stretch land on one of them; rotating which side goes
/// first each round keeps a side from always inheriting the caches the one
/// before it just warmed. One untimed round of each comes first (page
/// faults, lazily built state, branch predictors).
fn interleaved(rounds: usize, sides: &mut [&mut dyn FnMut() -> Res<f64>]) -> Res<Vec<f64>> {
    for side in sides.iter_mut() {
        side()?;
    }
    let n = sides.len();
    let mut samples = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            samples[i].push(sides[i]()?);
        }
    }
    Ok(samples.into_iter().map(median).collect())
}

/// Nanoseconds per call of `op` over `iters` calls (`op` gets the call index).
fn ns_per_op(iters: u64, op: &mut dyn FnMut(u64) -> Res<()>) -> Res<f64> {
    let start = Instant::now();
    for i in 0..iters {
        op(i)?;
    }
    Ok(start.elapsed().as_nanos() as f64 / iters as f64)
}

/// Iterations of `op` that take about `target`: doubles until one batch
/// reaches it. Calibrated on the baseline so both sides run the same count.
fn calibrate(target: Duration, op: &mut dyn FnMut(u64) -> Res<()>) -> Res<u64> {
    let mut iters = 1u64;
    loop {
        let start = Instant::now();
        for i in 0..iters {
            op(i)?;
        }
        let took = start.elapsed();
        if took >= target || iters >= 1 << 30 {
            // Scale the last batch to the target rather than overshoot by up to 2x.
            let scaled = iters as f64 * target.as_secs_f64() / took.as_secs_f64().max(1e-9);
            return Ok((scaled as u64).clamp(1, iters));
        }
        iters *= 2;
    }
}

/// GiB/s for `bytes` moved in `elapsed`.
fn gib_per_s(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 / elapsed.as_secs_f64()
}

// ------------------------------------------------------------------ fixtures

/// Deterministic filler/offset generator (xorshift64): no dependency, and
/// both sides of a comparison see exactly the same sequence.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Non-zero, non-repeating content, so both filesystems really allocate and
/// nothing can be served from a shared zero page.
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed | 1);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

fn list_entry(i: usize) -> String {
    format!("{LIST_DIR}/entry-{i:04}.php")
}

/// The std::fs side: a directory on tmpfs, removed on drop.
struct NativeTree {
    root: PathBuf,
    /// Where the tree lives and whether it is tmpfs, for the method text.
    description: String,
}

impl NativeTree {
    /// Builds the tree under /dev/shm (tmpfs on Linux), else under
    /// `std::env::temp_dir()`, and makes it the working directory so that
    /// the relative paths above resolve exactly as in shared-fs.
    fn create() -> Res<NativeTree> {
        let name = format!("shared-fs-bench-{}", std::process::id());
        let shm = Path::new("/dev/shm");
        let (root, description) = match fs::create_dir(shm.join(&name)) {
            Ok(()) if mount_type(shm).as_deref() == Some("tmpfs") => (shm.join(&name), "Linux tmpfs (/dev/shm)".to_string()),
            Ok(()) => {
                (shm.join(&name), format!("/dev/shm, which is NOT tmpfs here ({})", mount_type(shm).unwrap_or_default()))
            }
            Err(_) => {
                let dir = std::env::temp_dir().join(&name);
                fs::create_dir(&dir)?;
                let kind = mount_type(&std::env::temp_dir()).unwrap_or_else(|| "unknown fs".into());
                let description = format!("FALLBACK {} ({kind}; /dev/shm unusable)", std::env::temp_dir().display());
                (dir, description)
            }
        };
        let tree = NativeTree { root, description };
        std::env::set_current_dir(&tree.root)?;
        fs::create_dir_all(Path::new(DEEP_FILE).parent().unwrap_or(Path::new(".")))?;
        fs::write(DEEP_FILE, filler(SMALL_FILE, 1))?;
        for (i, name) in BIG_FILES.iter().enumerate() {
            let mut f = File::create(name)?;
            for chunk in 0..BIG / CHUNK {
                f.write_all(&filler(CHUNK, (i * 1000 + chunk) as u64 + 7))?;
            }
        }
        fs::create_dir(LIST_DIR)?;
        for i in 0..LIST_ENTRIES {
            File::create(list_entry(i))?;
        }
        fs::create_dir(Path::new(SCRATCH_FILE).parent().unwrap_or(Path::new(".")))?;
        Ok(tree)
    }
}

impl Drop for NativeTree {
    fn drop(&mut self) {
        // Best effort: leave the directory we entered before deleting it.
        let _ = std::env::set_current_dir("/");
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Filesystem type of the mount holding `path`, from /proc/mounts (longest
/// matching mount point wins).
fn mount_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then(|| (point.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// The shared-fs side: the same tree, same content.
fn shared_tree() -> Res<FileSystem> {
    // All data space up front (two 64 MiB files plus small ones), so no
    // measurement includes the allocator growing.
    let fs = FileSystem::new(Config { initial_bytes: 2 * BIG + 16 * MIB, max_bytes: 4 * BIG, clock: system_clock })?;
    let mut dir = ROOT;
    let (dirs, file) = DEEP_FILE.rsplit_once('/').ok_or("DEEP_FILE has no directory")?;
    for name in dirs.split('/') {
        dir = fs.mkdir(dir, name.as_bytes(), 0o755, 0, 0)?.ino;
    }
    let f = fs.create(dir, file.as_bytes(), 0o644, 0, 0)?.ino;
    fs.write(f, 0, &filler(SMALL_FILE, 1))?;
    for (i, name) in BIG_FILES.iter().enumerate() {
        let f = fs.create(ROOT, name.as_bytes(), 0o644, 0, 0)?.ino;
        for chunk in 0..BIG / CHUNK {
            fs.write(f, (chunk * CHUNK) as u64, &filler(CHUNK, (i * 1000 + chunk) as u64 + 7))?;
        }
    }
    let list = fs.mkdir(ROOT, LIST_DIR.as_bytes(), 0o755, 0, 0)?.ino;
    for i in 0..LIST_ENTRIES {
        let path = list_entry(i);
        let name = path.rsplit_once('/').map_or(path.as_str(), |(_, n)| n);
        fs.create(list, name.as_bytes(), 0o644, 0, 0)?;
    }
    let scratch = SCRATCH_FILE.rsplit_once('/').map_or("", |(d, _)| d);
    fs.mkdir(ROOT, scratch.as_bytes(), 0o755, 0, 0)?;
    Ok(fs)
}

/// Reads a whole file `passes` times, `CHUNK` bytes per call, into `buf`.
/// Returns the bytes read (checked, so a short file is an error, not a fast result).
fn read_passes(fs: &FileSystem, ino: Ino, passes: usize, buf: &mut [u8]) -> Res<usize> {
    let mut total = 0;
    for _ in 0..passes {
        for off in (0..BIG).step_by(CHUNK) {
            let n = fs.read(ino, off as u64, buf)?;
            if n != buf.len() {
                return Err(format!("short read: {n} bytes at {off}").into());
            }
            total += n;
        }
        black_box(&mut *buf);
    }
    Ok(total)
}

/// The control for `read_passes`: the same loop over plain memory, so a
/// result can be split into "what the machine does" and "what shared-fs adds".
fn copy_passes(src: &[u8], passes: usize, buf: &mut [u8]) -> usize {
    let mut total = 0;
    for _ in 0..passes {
        for chunk in src.chunks_exact(buf.len()) {
            buf.copy_from_slice(chunk);
            total += chunk.len();
        }
        black_box(&mut *buf);
    }
    total
}

// ------------------------------------------------------------------ figures

/// Figure 1: one operation timed through std::fs on tmpfs (baseline) and on
/// shared-fs (subject), same path, same iteration count.
fn per_op_figure(
    s: Settings,
    name: &str,
    what: &str,
    native: &mut dyn FnMut(u64) -> Res<()>,
    shared: &mut dyn FnMut(u64) -> Res<()>,
    where_native: &str,
) -> Res<Figure> {
    let iters = calibrate(s.round_target, native)?;
    let medians = interleaved(s.rounds, &mut [&mut || ns_per_op(iters, native), &mut || ns_per_op(iters, shared)])?;
    let (baseline, value) = (medians[0], medians[1]);
    Ok(Figure {
        name: name.to_string(),
        value,
        baseline,
        unit: "ns/op",
        goal: Goal::AtMost(0.2),
        method: format!(
            "{what}; shared-fs vs std::fs on {where_native}; {iters} ops per round, median of {} interleaved rounds each",
            s.rounds
        ),
    })
}

/// Figure 1 (a-e): shared-fs per-operation time vs std::fs on tmpfs.
fn figure_vs_tmpfs(s: Settings, fs: &FileSystem, native: &NativeTree) -> Res<Vec<Figure>> {
    let at = native.description.as_str();
    let mut figures = Vec::new();

    // (a) stat, 3 directories deep.
    figures.push(per_op_figure(
        s,
        "1a stat 3 dirs deep",
        &format!("stat of {DEEP_FILE}: fs.resolve vs std::fs::metadata (relative to cwd)"),
        &mut |_| {
            black_box(fs::metadata(DEEP_FILE)?);
            Ok(())
        },
        &mut |_| {
            black_box(fs.resolve(ROOT, DEEP_FILE.as_bytes(), true)?);
            Ok(())
        },
        at,
    )?);

    // (b) open + read 100 B + close, same deep path.
    let mut buf = [0u8; 100];
    let mut buf2 = [0u8; 100];
    figures.push(per_op_figure(
        s,
        "1b open+read 100B+close",
        &format!("open {DEEP_FILE}, read 100 B, close: open_path+read+release vs File::open+read+drop"),
        &mut |_| {
            let n = File::open(DEEP_FILE)?.read(&mut buf)?;
            if n != buf.len() {
                return Err("short read".into());
            }
            black_box(&buf);
            Ok(())
        },
        &mut |_| {
            let ino = fs.open_path(ROOT, DEEP_FILE.as_bytes(), O_RDONLY, 0)?.ino;
            let n = fs.read(ino, 0, &mut buf2);
            fs.release(ino);
            if n? != buf2.len() {
                return Err("short read".into());
            }
            black_box(&buf2);
            Ok(())
        },
        at,
    )?);

    // (c) 4 KiB pread at random 4K-aligned offsets. Both sides walk the same
    // precomputed offset list (the generator stays out of the timed loop).
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let offsets: Vec<u64> = (0..1 << 16).map(|_| (rng.next() % (BIG as u64 / 4096)) * 4096).collect();
    let big_native = File::open(BIG_FILES[0])?;
    let big_shared = fs.resolve(ROOT, BIG_FILES[0].as_bytes(), true)?.ino;
    let mut page = vec![0u8; 4096];
    let mut page2 = vec![0u8; 4096];
    figures.push(per_op_figure(
        s,
        "1c 4K random pread (64MiB)",
        "4 KiB read at random 4K-aligned offsets of an open 64 MiB file: fs.read vs FileExt::read_at",
        &mut |i| {
            if big_native.read_at(&mut page, offsets[i as usize % offsets.len()])? != 4096 {
                return Err("short pread".into());
            }
            black_box(&page);
            Ok(())
        },
        &mut |i| {
            if fs.read(big_shared, offsets[i as usize % offsets.len()], &mut page2)? != 4096 {
                return Err("short read".into());
            }
            black_box(&page2);
            Ok(())
        },
        at,
    )?);

    // (d) create + write 100 B + close + unlink, by path, in a subdirectory.
    // O_EXCL on both sides: a leftover file would be an error, not a reuse.
    let data = [0x42u8; 100];
    figures.push(per_op_figure(
        s,
        "1d create+unlink small file",
        &format!(
            "create {SCRATCH_FILE} (O_CREAT|O_EXCL), write 100 B, close, unlink: \
             open_path+write+release+resolve_parent+unlink vs OpenOptions::create_new+write_all+drop+remove_file"
        ),
        &mut |_| {
            OpenOptions::new().write(true).create_new(true).open(SCRATCH_FILE)?.write_all(&data)?;
            fs::remove_file(SCRATCH_FILE)?;
            Ok(())
        },
        &mut |_| {
            let path = SCRATCH_FILE.as_bytes();
            let ino = fs.open_path(ROOT, path, O_WRONLY | O_CREAT | O_EXCL, 0o644)?.ino;
            let written = fs.write(ino, 0, &data);
            fs.release(ino);
            written?;
            let (dir, name) = fs.resolve_parent(ROOT, path)?;
            fs.unlink(dir, &name)?;
            Ok(())
        },
        at,
    )?);

    // (e) full listing of a 1,000-entry directory, opened by path. Both sides
    // hand out owned entries (std's DirEntry holds its name, shared-fs's
    // DirEntry a Vec), so neither gets away with less copying.
    figures.push(per_op_figure(
        s,
        "1e readdir 1000 entries",
        &format!("open {LIST_DIR}/ ({LIST_ENTRIES} files), list all entries, close: open_path+readdir+release vs std::fs::read_dir"),
        &mut |_| {
            let mut n = 0;
            for entry in fs::read_dir(LIST_DIR)? {
                black_box(entry?);
                n += 1;
            }
            if n != LIST_ENTRIES {
                return Err(format!("read_dir listed {n} entries").into());
            }
            Ok(())
        },
        &mut |_| {
            let ino = fs.open_path(ROOT, LIST_DIR.as_bytes(), O_RDONLY | O_DIRECTORY, 0)?.ino;
            let mut n = 0;
            let listed = fs.readdir(ino, 0, &mut |entry| {
                black_box(entry);
                n += 1;
                true
            });
            fs.release(ino);
            listed?;
            // shared-fs also lists "." and ".." (std::fs::read_dir skips them).
            if n != LIST_ENTRIES + 2 {
                return Err(format!("readdir listed {n} entries").into());
            }
            Ok(())
        },
        at,
    )?);
    Ok(figures)
}

/// Figure 2: sequential read of 64 MiB from shared-fs vs a plain 64 MiB memcpy.
///
/// The baseline writes a 64 MiB destination while the reads refill one
/// 1 MiB buffer that stays in cache, so a third, control side copies the
/// same source memory in 1 MiB pieces into a 1 MiB buffer: it is the
/// like-for-like bound, reported in the method text.
fn figure_sequential_read(s: Settings, fs: &FileSystem) -> Res<Figure> {
    let ino = fs.resolve(ROOT, BIG_FILES[0].as_bytes(), true)?.ino;
    // Non-zero fills touch every page now, so no round pays page faults.
    let src = filler(BIG, 99);
    let mut dst = vec![1u8; BIG];
    let mut buf = vec![1u8; CHUNK];
    let mut control_buf = vec![1u8; CHUNK];
    let bytes = s.passes * BIG;
    let medians = interleaved(
        s.rounds,
        &mut [
            &mut || {
                let start = Instant::now();
                for _ in 0..s.passes {
                    dst.copy_from_slice(black_box(&src));
                    black_box(&mut dst);
                }
                Ok(gib_per_s(bytes, start.elapsed()))
            },
            &mut || {
                let start = Instant::now();
                let n = read_passes(fs, ino, s.passes, &mut buf)?;
                Ok(gib_per_s(n, start.elapsed()))
            },
            &mut || {
                let start = Instant::now();
                let n = copy_passes(&src, s.passes, &mut control_buf);
                Ok(gib_per_s(n, start.elapsed()))
            },
        ],
    )?;
    let (baseline, value, control) = (medians[0], medians[1], medians[2]);
    Ok(Figure {
        name: "2 seq read 64MiB vs memcpy".into(),
        value,
        baseline,
        unit: "GiB/s",
        goal: Goal::AtLeast(0.8),
        method: format!(
            "fs.read of a 64 MiB file in 1 MiB reads into one 1 MiB buffer vs copy_from_slice of a 64 MiB Vec into \
             another; {} passes per round, median of {} interleaved rounds each; control: memcpy in 1 MiB pieces into \
             a 1 MiB buffer (same access pattern as the reads) ran {control:.2} GiB/s, shared-fs = {:.2} of it",
            s.passes,
            s.rounds,
            value / control
        ),
    })
}

/// A reader thread's body: `(thread index, buffer) -> bytes read`. String
/// errors, because `Box<dyn Error>` is not `Send`.
type Reader<'a> = dyn Fn(usize, &mut [u8]) -> Result<usize, String> + Sync + 'a;

/// Total GiB/s of one thread per buffer, thread `i` running `read(i, buf)`.
/// Timed from before the spawn to after the join: thread start-up (tens of
/// microseconds against tens of milliseconds) weighs on every side alike.
fn threaded_gib_per_s(bufs: &mut [Vec<u8>], read: &Reader) -> Res<f64> {
    let start = Instant::now();
    let total = std::thread::scope(|scope| {
        let handles: Vec<_> = bufs.iter_mut().enumerate().map(|(i, buf)| scope.spawn(move || read(i, buf))).collect();
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|_| "reader thread panicked".to_string())??;
        }
        Ok::<usize, String>(total)
    })?;
    Ok(gib_per_s(total, start.elapsed()))
}

/// Figure 3: read throughput of 2 threads, each on its own 64 MiB file, vs
/// 1 thread.
///
/// On a 2-CPU machine this measures the machine as much as shared-fs: any
/// other busy process takes a CPU away from one of the two readers. So the
/// same 1-vs-2-thread comparison runs on plain memory (two 64 MiB Vecs, same
/// 1 MiB copies) in the same interleaved rounds, and its ratio goes in the
/// method text: if the control also misses 1.8, the machine had no second
/// CPU to give.
fn figure_parallel_readers(s: Settings, fs: &FileSystem) -> Res<Figure> {
    let inos = [
        fs.resolve(ROOT, BIG_FILES[0].as_bytes(), true)?.ino,
        fs.resolve(ROOT, BIG_FILES[1].as_bytes(), true)?.ino,
    ];
    let memory = [filler(BIG, 5), filler(BIG, 6)];
    let shared_read = |i: usize, buf: &mut [u8]| read_passes(fs, inos[i], s.passes, buf).map_err(|e| e.to_string());
    let memory_read = |i: usize, buf: &mut [u8]| Ok(copy_passes(&memory[i], s.passes, buf));
    // One buffer per reader thread and side, allocated (and faulted in) once.
    let buffers = |n: usize| vec![vec![1u8; CHUNK]; n];
    let (mut shared1, mut shared2, mut memory1, mut memory2) = (buffers(1), buffers(2), buffers(1), buffers(2));
    let medians = interleaved(
        s.rounds,
        &mut [
            &mut || threaded_gib_per_s(&mut shared1, &shared_read),
            &mut || threaded_gib_per_s(&mut shared2, &shared_read),
            &mut || threaded_gib_per_s(&mut memory1, &memory_read),
            &mut || threaded_gib_per_s(&mut memory2, &memory_read),
        ],
    )?;
    let (baseline, value) = (medians[0], medians[1]);
    Ok(Figure {
        name: "3 2 readers vs 1 reader".into(),
        value,
        baseline,
        unit: "GiB/s",
        goal: Goal::AtLeast(1.8),
        method: format!(
            "total throughput of 2 threads each reading a different 64 MiB file vs 1 thread reading one, 1 MiB \
             fs.read calls, {} passes per thread per round, median of {} interleaved rounds each; {} CPUs available; \
             control: same threads copying plain memory, {:.2} vs {:.2} GiB/s = {:.2}x",
            s.passes,
            s.rounds,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            medians[3],
            medians[2],
            medians[3] / medians[2]
        ),
    })
}

// ------------------------------------------------------------------ output

fn print_table(figures: &[Figure]) {
    println!(
        "{:<28} | {:>16} | {:>16} | {:>7} | {:>7} | {:<5}",
        "figure", "value", "baseline", "ratio", "goal", "met?"
    );
    println!("{}", "-".repeat(28 + 16 + 16 + 7 + 7 + 5 + 15));
    for f in figures {
        let unit = f.unit;
        println!(
            "{:<28} | {:>16} | {:>16} | {:>7.3} | {:>7} | {:<5}",
            f.name,
            format!("{:.2} {unit}", f.value),
            format!("{:.2} {unit}", f.baseline),
            f.ratio(),
            f.goal.to_string(),
            if f.goal.met(f.ratio()) { "yes" } else { "NO" }
        );
    }
    println!();
    for f in figures {
        println!("{}: {}", f.name, f.method);
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number; non-finite values (a zero-time round) become null.
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

fn write_json(path: &Path, figures: &[Figure]) -> Res<()> {
    let objects: Vec<String> = figures
        .iter()
        .map(|f| {
            format!(
                "  {{\"figure\": {}, \"value\": {}, \"baseline\": {}, \"unit\": {}, \"ratio\": {}, \"goal\": {}, \"met\": {}, \"method\": {}}}",
                json_string(&f.name),
                json_number(f.value),
                json_number(f.baseline),
                json_string(f.unit),
                json_number(f.ratio()),
                json_string(&f.goal.to_string()),
                f.goal.met(f.ratio()),
                json_string(&f.method)
            )
        })
        .collect();
    fs::write(path, format!("[\n{}\n]\n", objects.join(",\n")))?;
    Ok(())
}

// ------------------------------------------------------------------ main

struct Args {
    json: Option<PathBuf>,
    settings: Settings,
}

fn parse_args() -> Res<Args> {
    let mut args = Args { json: None, settings: DEFAULT };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--json") => args.json = Some(it.next().ok_or("--json needs a PATH")?.into()),
            Some("--quick") => args.settings = QUICK,
            Some("--help" | "-h") => {
                println!("usage: bench [--json PATH] [--quick]");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {arg:?} (usage: bench [--json PATH] [--quick])").into()),
        }
    }
    Ok(args)
}

fn main() -> Res<()> {
    let args = parse_args()?;
    // The working directory changes below (NativeTree); make --json relative
    // to where we were started.
    let json = match args.json {
        Some(p) if p.is_relative() => Some(std::env::current_dir()?.join(p)),
        other => other,
    };
    let started = Instant::now();
    let s = args.settings;
    let native = NativeTree::create()?;
    let fs = shared_tree()?;
    println!("baseline filesystem: {}; {} rounds per side\n", native.description, s.rounds);

    let mut figures = figure_vs_tmpfs(s, &fs, &native)?;
    figures.push(figure_sequential_read(s, &fs)?);
    figures.push(figure_parallel_readers(s, &fs)?);
    drop(native);

    print_table(&figures);
    println!("\ntotal time {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = json {
        write_json(&path, &figures)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

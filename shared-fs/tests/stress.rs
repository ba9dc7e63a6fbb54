//! Multi-threaded stress tests; real threads stand in for workers. Each
//! ends with `check()`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;
const THREADS: usize = 8;

/// Errors that concurrent operations legitimately produce in the shared area.
fn expected(e: Errno) -> bool {
    [Errno::ENOENT, Errno::EEXIST, Errno::ENOTEMPTY, Errno::ENOTDIR, Errno::EISDIR, Errno::EINVAL].contains(&e)
}

fn ok_or_expected<T>(r: Result<T>, what: &str) {
    if let Err(e) = r {
        assert!(expected(e), "{what}: unexpected {e}");
    }
}

/// 8 threads run random operations, each in a private directory (checked
/// byte for byte against a model) and in a shared directory (anything
/// goes; only errors that races can explain are accepted).
#[test]
fn mixed_random_operations() {
    let fs = Arc::new(fs_with(MIB, 256 * MIB));
    let shared = fs.mkdir(ROOT, b"shared", 0o777, 0, 0).unwrap().ino;
    for i in 0..4 {
        fs.mkdir(shared, format!("sub{i}").as_bytes(), 0o777, 0, 0).unwrap();
    }
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let fs = fs.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                let private = fs.mkdir(ROOT, format!("private{t}").as_bytes(), 0o755, 0, 0).unwrap().ino;
                let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
                barrier.wait();
                for _ in 0..4000 {
                    private_op(&fs, &mut rng, private, &mut model);
                    shared_op(&fs, &mut rng, shared);
                }
                // The private directory matches the model exactly.
                let mut listed = BTreeSet::new();
                fs.readdir(private, 2, &mut |e| {
                    listed.insert(e.name);
                    true
                })
                .unwrap();
                assert_eq!(listed, model.keys().cloned().collect::<BTreeSet<_>>());
                for (name, content) in &model {
                    let ino = fs.lookup(private, name).unwrap().ino;
                    assert_eq!(&read_all(&fs, ino), content);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    fs.check().unwrap();
}

fn private_op(fs: &FileSystem, rng: &mut Rng, dir: Ino, model: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
    let name = format!("p{}", rng.below(24)).into_bytes();
    match rng.below(7) {
        0 => match fs.create(dir, &name, 0o644, 0, 0) {
            Ok(_) => assert!(model.insert(name, Vec::new()).is_none()),
            Err(e) => assert!(e == Errno::EEXIST && model.contains_key(&name), "{e}"),
        },
        1 | 2 => {
            if let Some(content) = model.get_mut(&name) {
                let ino = fs.lookup(dir, &name).unwrap().ino;
                let off = rng.below(20_000) as usize;
                let len = rng.below(9000) as usize;
                let byte = rng.next() as u8;
                fs.write(ino, off as u64, &vec![byte; len]).unwrap();
                if len > 0 {
                    if content.len() < off + len {
                        content.resize(off + len, 0);
                    }
                    content[off..off + len].fill(byte);
                }
            }
        }
        3 => {
            if let Some(content) = model.get(&name) {
                let ino = fs.lookup(dir, &name).unwrap().ino;
                assert_eq!(&read_all(fs, ino), content);
            }
        }
        4 => {
            let to = format!("p{}", rng.below(24)).into_bytes();
            match fs.rename(dir, &name, dir, &to) {
                Ok(()) => {
                    let content = model.remove(&name).unwrap();
                    model.insert(to, content);
                }
                Err(e) => assert!(e == Errno::ENOENT && !model.contains_key(&name), "{e}"),
            }
        }
        5 => match fs.unlink(dir, &name) {
            Ok(()) => assert!(model.remove(&name).is_some()),
            Err(e) => assert!(e == Errno::ENOENT && !model.contains_key(&name), "{e}"),
        },
        _ => {
            if let Some(content) = model.get_mut(&name) {
                let ino = fs.lookup(dir, &name).unwrap().ino;
                let size = rng.below(30_000) as usize;
                fs.setattr(ino, &SetAttr { size: Some(size as u64), ..Default::default() }).unwrap();
                content.resize(size, 0);
            }
        }
    }
}

fn shared_op(fs: &FileSystem, rng: &mut Rng, shared: Ino) {
    let dirs = [b"sub0".as_slice(), b"sub1", b"sub2", b"sub3"];
    let pick_dir = |rng: &mut Rng| -> Ino {
        if rng.chance(30) {
            return shared;
        }
        fs.lookup(shared, dirs[rng.below(4) as usize]).map(|a| a.ino).unwrap_or(shared)
    };
    let dir = pick_dir(rng);
    let name = format!("s{}", rng.below(16)).into_bytes();
    match rng.below(10) {
        0 => ok_or_expected(fs.create(dir, &name, 0o644, 0, 0), "create"),
        1 => ok_or_expected(fs.mkdir(dir, &name, 0o755, 0, 0), "mkdir"),
        2 => {
            if let Ok(a) = fs.lookup(dir, &name) {
                if a.kind == FileKind::File && fs.open(a.ino).is_ok() {
                    ok_or_expected(fs.write(a.ino, rng.below(10_000), &[1u8; 3000]), "write");
                    let mut buf = [0u8; 5000];
                    ok_or_expected(fs.read(a.ino, 0, &mut buf), "read");
                    fs.release(a.ino);
                }
            }
        }
        3 => {
            let to = pick_dir(rng);
            let to_name = format!("s{}", rng.below(16)).into_bytes();
            ok_or_expected(fs.rename(dir, &name, to, &to_name), "rename");
        }
        4 => ok_or_expected(fs.unlink(dir, &name), "unlink"),
        5 => ok_or_expected(fs.rmdir(dir, &name), "rmdir"),
        6 => {
            if let Ok(a) = fs.lookup(dir, &name) {
                if a.kind != FileKind::Dir {
                    let to = pick_dir(rng);
                    ok_or_expected(fs.link(a.ino, to, format!("s{}", rng.below(16)).as_bytes()), "link");
                }
            }
        }
        7 => ok_or_expected(fs.symlink(dir, &name, b"../sub0", 0, 0), "symlink"),
        8 => {
            let mut seen = BTreeSet::new();
            ok_or_expected(
                fs.readdir(dir, 0, &mut |e| {
                    assert!(seen.insert(e.name), "readdir returned a name twice");
                    true
                }),
                "readdir",
            );
        }
        _ => {
            let path = format!("/shared/{}/{}", String::from_utf8_lossy(dirs[rng.below(4) as usize]), rng.below(16));
            let flags = oflags::O_CREAT | oflags::O_RDWR | if rng.chance(20) { oflags::O_TRUNC } else { 0 };
            match fs.open_path(ROOT, path.as_bytes(), flags, 0o644) {
                Ok(a) => {
                    ok_or_expected(fs.append(a.ino, b"line\n").map(|_| ()), "append");
                    fs.release(a.ino);
                }
                Err(e) => assert!(expected(e) || e == Errno::ELOOP, "open_path: {e}"),
            }
        }
    }
}

/// Readers list a directory over and over while others create, rename and
/// delete other entries: no name twice per pass, and no stable entry missed.
#[test]
fn readdir_under_concurrent_churn() {
    let fs = Arc::new(fs());
    let dir = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap().ino;
    let stable: BTreeSet<Vec<u8>> = (0..300).map(|i| format!("stable{i}").into_bytes()).collect();
    // Interleave stable and churning entries so churn lands between them.
    for (i, name) in stable.iter().enumerate() {
        fs.create(dir, name, 0o644, 0, 0).unwrap();
        fs.create(dir, format!("early{i}").as_bytes(), 0o644, 0, 0).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let passes = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for t in 0..4u64 {
        let (fs, stop) = (fs.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let mut rng = Rng::new(100 + t);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("churn{t}-{n}");
                fs.create(dir, name.as_bytes(), 0o644, 0, 0).unwrap();
                if rng.chance(50) {
                    fs.rename(dir, name.as_bytes(), dir, format!("moved{t}-{n}").as_bytes()).unwrap();
                    fs.unlink(dir, format!("moved{t}-{n}").as_bytes()).unwrap();
                } else {
                    fs.unlink(dir, name.as_bytes()).unwrap();
                }
                let early = format!("early{}", rng.below(300));
                let _ = fs.unlink(dir, early.as_bytes());
                n += 1;
            }
        }));
    }
    for t in 0..3u64 {
        let (fs, stop, passes, stable) = (fs.clone(), stop.clone(), passes.clone(), stable.clone());
        handles.push(thread::spawn(move || {
            let mut rng = Rng::new(200 + t);
            while !stop.load(Ordering::Relaxed) {
                // Resume via cookies in random-sized steps, like getdents with small buffers.
                let mut seen = BTreeSet::new();
                let mut cookie = 0;
                loop {
                    let step = 1 + rng.below(100);
                    let mut got = 0;
                    fs.readdir(dir, cookie, &mut |e| {
                        assert!(seen.insert(e.name.clone()), "{:?} listed twice", String::from_utf8_lossy(&e.name));
                        cookie = e.cookie;
                        got += 1;
                        got < step
                    })
                    .unwrap();
                    if got < step {
                        break;
                    }
                }
                for name in &stable {
                    assert!(seen.contains(name), "stable entry {:?} skipped", String::from_utf8_lossy(name));
                }
                passes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(passes.load(Ordering::Relaxed) > 10);
    fs.check().unwrap();
}

/// Writers write whole buffers of one repeated byte; readers must never see
/// a mix (both the copying and the zero-copy read).
#[test]
fn no_torn_writes() {
    const SIZE: usize = 64 * 1024 + 123; // spans several blocks, unaligned end
    let fs = Arc::new(fs());
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, &[b'a'; SIZE]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..4u8 {
        let (fs, stop) = (fs.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let buf = vec![b'b' + t; SIZE];
            while !stop.load(Ordering::Relaxed) {
                fs.write(f, 0, &buf).unwrap();
            }
        }));
    }
    let reads = Arc::new(AtomicU64::new(0));
    for t in 0..4 {
        let (fs, stop, reads) = (fs.clone(), stop.clone(), reads.clone());
        handles.push(thread::spawn(move || {
            let mut buf = vec![0u8; SIZE];
            while !stop.load(Ordering::Relaxed) {
                if t % 2 == 0 {
                    assert_eq!(fs.read(f, 0, &mut buf).unwrap(), SIZE);
                    assert!(buf.iter().all(|&b| b == buf[0]), "torn read");
                } else {
                    let mut first = None;
                    fs.read_with(f, 0, SIZE, &mut |s| {
                        let b = *first.get_or_insert(s[0]);
                        assert!(s.iter().all(|&x| x == b), "torn zero-copy read");
                    })
                    .unwrap();
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 100);
    fs.check().unwrap();
}

/// Appends from many threads never overlap or get lost.
#[test]
fn concurrent_appends_are_atomic() {
    let fs = Arc::new(fs());
    let f = fs.create(ROOT, b"log", 0o644, 0, 0).unwrap().ino;
    let handles: Vec<_> = (0..THREADS as u8)
        .map(|t| {
            let fs = fs.clone();
            thread::spawn(move || {
                for i in 0..500u32 {
                    let rec = [t; 37];
                    let at = fs.append(f, &rec).unwrap();
                    assert_eq!(at % 37, 0, "append {i} landed mid-record");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let data = read_all(&fs, f);
    assert_eq!(data.len(), THREADS * 500 * 37);
    let mut counts = [0usize; THREADS];
    for rec in data.chunks(37) {
        assert!(rec.iter().all(|&b| b == rec[0]));
        counts[rec[0] as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c == 500));
    fs.check().unwrap();
}

/// Threads move directories around a small tree at random, including into
/// their own subtrees (must be refused even when racing): the tree must stay
/// a tree, every directory reachable, link counts right.
#[test]
fn concurrent_directory_renames_keep_a_tree() {
    let fs = Arc::new(fs());
    let mut dirs = vec![ROOT];
    for i in 0..24 {
        let parent = dirs[i / 3];
        dirs.push(fs.mkdir(parent, format!("d{i}").as_bytes(), 0o755, 0, 0).unwrap().ino);
    }
    let dirs = Arc::new(dirs);
    let moved = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS as u64)
        .map(|t| {
            let (fs, dirs, moved, refused) = (fs.clone(), dirs.clone(), moved.clone(), refused.clone());
            thread::spawn(move || {
                let mut rng = Rng::new(300 + t);
                for _ in 0..3000 {
                    // Move a random directory (found by scanning a random parent) under another.
                    let from = dirs[rng.below(dirs.len() as u64) as usize];
                    let to = dirs[rng.below(dirs.len() as u64) as usize];
                    let mut victim = None;
                    let _ = fs.readdir(from, 2, &mut |e| {
                        if e.kind == FileKind::Dir && rng.chance(50) {
                            victim = Some(e.name);
                            return false;
                        }
                        true
                    });
                    let Some(name) = victim else { continue };
                    let new_name = if rng.chance(50) { name.clone() } else { format!("r{}", rng.below(8)).into_bytes() };
                    match fs.rename(from, &name, to, &new_name) {
                        Ok(()) => moved.fetch_add(1, Ordering::Relaxed),
                        Err(Errno::EINVAL) => refused.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            assert!(expected(e), "rename: {e}");
                            0
                        }
                    };
                    if rng.chance(5) {
                        fs.check_concurrent_smoke();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(moved.load(Ordering::Relaxed) > 100);
    assert!(refused.load(Ordering::Relaxed) > 0);
    fs.check().unwrap();
    // Every directory still there (renaming onto an empty one destroys it)
    // leads back to the root through "..".
    for &d in dirs.iter().filter(|&&d| fs.getattr(d).is_ok()) {
        let mut cur = d;
        for _ in 0..100 {
            if cur == ROOT {
                break;
            }
            cur = fs.lookup(cur, b"..").unwrap().ino;
        }
        assert_eq!(cur, ROOT);
    }
}

trait Smoke {
    fn check_concurrent_smoke(&self);
}

impl Smoke for FileSystem {
    /// Cheap reads that must always work while others rename.
    fn check_concurrent_smoke(&self) {
        self.getattr(ROOT).unwrap();
        let _ = self.resolve(ROOT, b"/d0/d3/..", true);
    }
}

/// The PHP "write to a temp file, rename over the target" pattern: readers
/// of the target always find a complete version, never ENOENT.
#[test]
fn rename_replace_is_atomic_for_readers() {
    let fs = Arc::new(fs());
    let dir = fs.mkdir(ROOT, b"cache", 0o755, 0, 0).unwrap().ino;
    let f = fs.create(dir, b"target", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, &[0u8; 10_000]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for t in 0..2u8 {
        let (fs, stop) = (fs.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            let mut v = 0u8;
            let tmp = format!("tmp{t}");
            while !stop.load(Ordering::Relaxed) {
                v = v.wrapping_add(1);
                let a = fs.create(dir, tmp.as_bytes(), 0o644, 0, 0).unwrap();
                fs.write(a.ino, 0, &[v; 10_000]).unwrap();
                fs.rename(dir, tmp.as_bytes(), dir, b"target").unwrap();
            }
        }));
    }
    for _ in 0..4 {
        let (fs, stop) = (fs.clone(), stop.clone());
        handles.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let a = fs.open_path(ROOT, b"/cache/target", oflags::O_RDONLY, 0).expect("target always exists");
                let data = read_all(&fs, a.ino);
                fs.release(a.ino);
                assert_eq!(data.len(), 10_000);
                assert!(data.iter().all(|&b| b == data[0]));
                assert!(fs.lookup(dir, b"target").is_ok());
            }
        }));
    }
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    fs.check().unwrap();
    // Every temp file was renamed over the target; only the last one is left.
    // Two whole blocks and the 1808-byte tail in 4 sectors of 512.
    assert_eq!(fs.stats().used, 10_000u64.div_ceil(512) * 512);
}

/// Many threads write and delete files so that, together, they cycle ten
/// times the capacity through the allocator; never ENOSPC, nothing leaked.
#[test]
fn concurrent_write_delete_cycles_space() {
    let max = 16 * MIB;
    let fs = Arc::new(fs_with(MIB, max));
    let per_thread_live = max / THREADS / 2; // half the space at most in use
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let fs = fs.clone();
            thread::spawn(move || {
                let dir = fs.mkdir(ROOT, format!("t{t}").as_bytes(), 0o755, 0, 0).unwrap().ino;
                let mut rng = Rng::new(400 + t as u64);
                let mut written = 0;
                let mut n = 0u64;
                while written < 10 * max / THREADS {
                    let len = (1 + rng.below(per_thread_live as u64 / 2)) as usize;
                    let f = fs.create(dir, format!("f{n}").as_bytes(), 0o644, 0, 0).unwrap();
                    fs.write(f.ino, 0, &vec![t as u8; len]).unwrap();
                    let mut first = [0u8];
                    fs.read(f.ino, len as u64 - 1, &mut first).unwrap();
                    assert_eq!(first[0], t as u8);
                    if n > 0 {
                        fs.unlink(dir, format!("f{}", n - 1).as_bytes()).unwrap();
                    }
                    written += len;
                    n += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(fs.stats().capacity <= max as u64);
    fs.check().unwrap();
}

/// Readers of different files do not block each other, and a long
/// zero-copy read of one file does not stop readers of another.
#[test]
fn readers_of_different_files_do_not_wait() {
    let fs = Arc::new(fs());
    let a = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    let b = fs.create(ROOT, b"b", 0o644, 0, 0).unwrap().ino;
    fs.write(a, 0, b"aaaa").unwrap();
    fs.write(b, 0, b"bbbb").unwrap();
    let inside = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let holder = {
        let (fs, inside, done) = (fs.clone(), inside.clone(), done.clone());
        thread::spawn(move || {
            fs.read_with(a, 0, 4, &mut |_| {
                inside.wait();
                done.wait(); // hold a's read lock until the other thread finished
            })
            .unwrap();
        })
    };
    inside.wait();
    let start = Instant::now();
    let mut buf = [0u8; 4];
    fs.read(b, 0, &mut buf).unwrap();
    fs.write(b, 0, b"BBBB").unwrap();
    fs.read(a, 0, &mut buf).unwrap(); // a second reader of `a` is fine too
    assert_eq!(&buf, b"aaaa");
    assert!(start.elapsed() < Duration::from_secs(1));
    done.wait();
    holder.join().unwrap();
}

/// Two siblings renamed into each other at the same moment: exactly one
/// move may win, otherwise a cycle detached from the root would appear.
#[test]
fn crossing_directory_renames_never_make_a_cycle() {
    let fs = Arc::new(fs());
    let rounds = 2000;
    let mut pairs = Vec::new();
    for i in 0..rounds {
        let a = fs.mkdir(ROOT, format!("a{i}").as_bytes(), 0o755, 0, 0).unwrap().ino;
        let b = fs.mkdir(ROOT, format!("b{i}").as_bytes(), 0o755, 0, 0).unwrap().ino;
        pairs.push((a, b));
    }
    let pairs = Arc::new(pairs);
    // A spinning barrier: a parking one wakes threads microseconds apart,
    // longer than a rename takes, and the two renames would never overlap.
    let arrived = Arc::new(AtomicU64::new(0));
    let spawn = |mover_is_a: bool| {
        let (fs, arrived, pairs) = (fs.clone(), arrived.clone(), pairs.clone());
        thread::spawn(move || {
            let mut results = Vec::new();
            for (i, &(a, b)) in pairs.iter().enumerate() {
                arrived.fetch_add(1, Ordering::SeqCst);
                while arrived.load(Ordering::SeqCst) < 2 * (i as u64 + 1) {
                    std::hint::spin_loop();
                }
                results.push(if mover_is_a {
                    fs.rename(ROOT, format!("a{i}").as_bytes(), b, b"x")
                } else {
                    fs.rename(ROOT, format!("b{i}").as_bytes(), a, b"y")
                });
            }
            results
        })
    };
    let (t1, t2) = (spawn(true), spawn(false));
    let (r1, r2) = (t1.join().unwrap(), t2.join().unwrap());
    for (x, y) in r1.iter().zip(&r2) {
        let wins = x.is_ok() as u32 + y.is_ok() as u32;
        assert_eq!(wins, 1, "{x:?} {y:?}");
        for r in [x, y] {
            if let Err(e) = r {
                assert!(*e == Errno::EINVAL || *e == Errno::ENOENT, "{e}");
            }
        }
    }
    fs.check().unwrap();
}

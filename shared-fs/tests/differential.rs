//! Differential test: random operation sequences run against shared-fs and
//! against a real directory of the host (Linux: std::fs / std::os::unix),
//! comparing every result and every errno, then the whole trees.
//!
//! Each sequence starts from an empty directory and uses a small pool of
//! names, so operations keep colliding with each other: existing and missing
//! names, files where directories are expected, symlinks (dangling, looping,
//! to directories), hard links, renames over and into things.
//!
//! Environment (the defaults run in a few seconds):
//!   DIFF_SEQUENCES  number of sequences (default 3000)
//!   DIFF_OPS        operations per sequence (default 40)
//!   DIFF_SEED       first seed (default 1); sequence i uses seed + i
//! e.g. `DIFF_SEQUENCES=100000 cargo test --release -p shared-fs --test differential -- --nocapture`
//! A failure prints the seed and the operations that led to it.

#![cfg(target_os = "linux")]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use common::Rng;
use shared_fs::oflags::*;
use shared_fs::*;
use std::result::Result;

const ROOT: Ino = FileSystem::ROOT;
const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Op {
    Mkdir(String),
    Create { path: String, excl: bool },
    Write { path: String, offset: u64, len: usize, byte: u8 },
    Append { path: String, len: usize, byte: u8 },
    Read { path: String, offset: u64, len: usize },
    Truncate { path: String, size: u64 },
    Rename(String, String),
    Unlink(String),
    Rmdir(String),
    Symlink { target: String, path: String },
    Link(String, String),
    Readdir(String),
    Stat { path: String, follow: bool },
    Open { path: String, flags: u32 },
}

/// What an operation returned, in a form both sides can produce.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Done,
    Bytes(Vec<u8>),
    Names(Vec<Vec<u8>>),
    /// kind, nlink, size (None for directories: sizes differ by design).
    Stat(char, u64, Option<u64>),
}

type Res = Result<Out, i32>;

/// Paths that were created during the sequence (maybe removed since):
/// half of the generated paths start from one, so deep paths get used.
struct Gen {
    rng: Rng,
    known: Vec<String>,
}

impl Gen {
    fn path(&mut self, trailing_slash: bool) -> String {
        let rng = &mut self.rng;
        let mut p = if !self.known.is_empty() && rng.chance(50) {
            let k = self.known[rng.below(self.known.len() as u64) as usize].clone();
            if rng.chance(50) {
                k
            } else {
                format!("{k}/{}", NAMES[rng.below(NAMES.len() as u64) as usize])
            }
        } else {
            let depth = match rng.below(10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            let mut parts: Vec<&str> = Vec::new();
            for _ in 0..depth {
                // "." now and then: "file/." must be ENOTDIR, "dir/." the dir itself.
                parts.push(if rng.chance(4) { "." } else { NAMES[rng.below(NAMES.len() as u64) as usize] });
            }
            parts.join("/")
        };
        if trailing_slash && rng.chance(10) {
            p.push('/');
        }
        p
    }

    /// Remembers the name an operation created.
    fn created(&mut self, op: &Op) {
        let p = match op {
            Op::Mkdir(p) | Op::Create { path: p, .. } | Op::Symlink { path: p, .. } => p,
            Op::Rename(_, p) | Op::Link(_, p) => p,
            _ => return,
        };
        if !self.known.contains(p) && self.known.len() < 64 {
            self.known.push(p.clone());
        }
    }
}

/// Symlink targets stay relative and never use "..", so the host side can
/// never leave its sandbox (shared-fs's root has no parent to escape to).
fn gen_target(g: &mut Gen) -> String {
    let mut t = g.path(false);
    if g.rng.chance(10) {
        t.push('/');
    }
    t
}

fn gen_op(g: &mut Gen) -> Op {
    let p = |g: &mut Gen| g.path(false);
    match g.rng.below(100) {
        0..=15 => Op::Mkdir(p(g)),
        16..=25 => Op::Create { path: p(g), excl: g.rng.chance(30) },
        26..=35 => Op::Write {
            path: p(g),
            offset: if g.rng.chance(50) { g.rng.below(200) } else { g.rng.below(3 * 4096 + 200) },
            len: g.rng.below(6000) as usize,
            byte: g.rng.below(255) as u8 + 1,
        },
        36..=38 => Op::Append { path: p(g), len: g.rng.below(3000) as usize, byte: g.rng.below(255) as u8 + 1 },
        39..=45 => Op::Read { path: g.path(true), offset: g.rng.below(9000), len: g.rng.below(10000) as usize },
        46..=49 => Op::Truncate { path: p(g), size: g.rng.below(10000) },
        50..=57 => Op::Rename(p(g), p(g)),
        58..=61 => Op::Unlink(p(g)),
        62..=64 => Op::Rmdir(p(g)),
        65..=69 => Op::Symlink { target: gen_target(g), path: p(g) },
        70..=73 => Op::Link(p(g), p(g)),
        74..=79 => Op::Readdir(g.path(true)),
        80..=89 => Op::Stat { path: g.path(true), follow: g.rng.chance(50) },
        _ => {
            let mut flags = [O_RDONLY, O_WRONLY, O_RDWR][g.rng.below(3) as usize];
            for f in [O_DIRECTORY, O_NOFOLLOW, O_TRUNC, O_CREAT, O_EXCL] {
                if g.rng.chance(20) {
                    flags |= f;
                }
            }
            if flags & O_TRUNC != 0 && flags & O_ACCMODE == O_RDONLY {
                flags |= O_WRONLY; // O_TRUNC|O_RDONLY is unspecified by POSIX
            }
            Op::Open { path: g.path(true), flags }
        }
    }
}

fn data(len: usize, byte: u8) -> Vec<u8> {
    (0..len).map(|i| byte.wrapping_add(i as u8)).collect()
}

fn kind_char(k: FileKind) -> char {
    match k {
        FileKind::File => 'f',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        _ => 's',
    }
}

// ---- shared-fs side: the path API for names, the ino API for the rest ----

struct Sfs(FileSystem);

impl Sfs {
    fn parent(&self, path: &str) -> Result<(Ino, Vec<u8>), i32> {
        self.0.resolve_parent(ROOT, path.as_bytes()).map_err(|e| e.0)
    }

    /// Opens, runs `f` on the pinned inode, releases.
    fn with_open<T>(&self, path: &str, flags: u32, f: impl FnOnce(&Attr) -> Result<T, Errno>) -> Result<T, i32> {
        let attr = self.0.open_path(ROOT, path.as_bytes(), flags, 0o644).map_err(|e| e.0)?;
        let r = f(&attr);
        self.0.release(attr.ino);
        r.map_err(|e| e.0)
    }

    fn stat_out(a: &Attr) -> Out {
        let size = if a.kind == FileKind::Dir { None } else { Some(a.size) };
        let nlink = if a.kind == FileKind::Dir && !host_counts_subdirs() { 0 } else { u64::from(a.nlink) };
        Out::Stat(kind_char(a.kind), nlink, size)
    }

    fn apply(&self, op: &Op) -> Res {
        let fs = &self.0;
        let e = |r: Result<(), Errno>| r.map(|()| Out::Done).map_err(|e| e.0);
        match op {
            Op::Mkdir(p) => {
                let (d, n) = self.parent(p)?;
                fs.mkdir(d, &n, 0o755, 0, 0).map(|_| Out::Done).map_err(|e| e.0)
            }
            Op::Create { path, excl } => {
                let flags = O_CREAT | O_WRONLY | if *excl { O_EXCL } else { 0 };
                self.with_open(path, flags, |_| Ok(Out::Done))
            }
            Op::Write { path, offset, len, byte } => self.with_open(path, O_WRONLY, |a| {
                fs.write(a.ino, *offset, &data(*len, *byte)).map(|_| Out::Done)
            }),
            Op::Append { path, len, byte } => self.with_open(path, O_WRONLY | O_APPEND, |a| {
                fs.append(a.ino, &data(*len, *byte)).map(|_| Out::Done)
            }),
            Op::Read { path, offset, len } => self.with_open(path, O_RDONLY, |a| {
                let mut buf = vec![0; *len];
                let n = fs.read(a.ino, *offset, &mut buf)?;
                buf.truncate(n);
                Ok(Out::Bytes(buf))
            }),
            Op::Truncate { path, size } => self.with_open(path, O_WRONLY, |a| {
                fs.setattr(a.ino, &SetAttr { size: Some(*size), ..SetAttr::default() }).map(|_| Out::Done)
            }),
            Op::Rename(from, to) => {
                let (d1, n1) = self.parent(from)?;
                let (d2, n2) = self.parent(to)?;
                e(fs.rename(d1, &n1, d2, &n2))
            }
            Op::Unlink(p) => {
                let (d, n) = self.parent(p)?;
                e(fs.unlink(d, &n))
            }
            Op::Rmdir(p) => {
                let (d, n) = self.parent(p)?;
                e(fs.rmdir(d, &n))
            }
            Op::Symlink { target, path } => {
                let (d, n) = self.parent(path)?;
                fs.symlink(d, &n, target.as_bytes(), 0, 0).map(|_| Out::Done).map_err(|e| e.0)
            }
            Op::Link(from, to) => {
                let a = fs.resolve(ROOT, from.as_bytes(), false).map_err(|e| e.0)?;
                let (d, n) = self.parent(to)?;
                fs.link(a.ino, d, &n).map(|_| Out::Done).map_err(|e| e.0)
            }
            Op::Readdir(p) => {
                let a = fs.resolve(ROOT, p.as_bytes(), true).map_err(|e| e.0)?;
                let mut names = Vec::new();
                fs.readdir(a.ino, 0, &mut |e| {
                    if e.name != b"." && e.name != b".." {
                        names.push(e.name);
                    }
                    true
                })
                .map_err(|e| e.0)?;
                names.sort();
                Ok(Out::Names(names))
            }
            Op::Stat { path, follow } => {
                let a = fs.resolve(ROOT, path.as_bytes(), *follow).map_err(|e| e.0)?;
                // The ino API must agree with the path API.
                let again = fs.getattr(a.ino).map_err(|e| e.0)?;
                assert_eq!((again.kind, again.nlink, again.size), (a.kind, a.nlink, a.size));
                Ok(Self::stat_out(&a))
            }
            Op::Open { path, flags } => self.with_open(path, *flags, |a| Ok(Self::stat_out(&fs.getattr(a.ino)?))),
        }
    }
}

// ---- host side ----

struct Host(PathBuf);

fn os(r: io::Result<Out>) -> Res {
    r.map_err(|e| e.raw_os_error().unwrap_or_else(|| panic!("host error without errno: {e}")))
}

fn meta_out(m: &fs::Metadata) -> Out {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else {
        's'
    };
    let nlink = if ft.is_dir() && !host_counts_subdirs() { 0 } else { m.nlink() };
    Out::Stat(kind, nlink, if ft.is_dir() { None } else { Some(m.size()) })
}

/// Whether the host's directories have nlink 2 + subdirectories (ext4,
/// tmpfs, xfs: yes; btrfs: always 1). If not, directory nlink is not compared.
fn host_counts_subdirs() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let d = host_base().join(format!("shared-fs-diff-nlink-{}", std::process::id()));
        fs::create_dir_all(d.join("sub")).unwrap();
        let n = fs::metadata(&d).unwrap().nlink();
        fs::remove_dir_all(&d).unwrap();
        n == 3
    })
}

impl Host {
    fn p(&self, path: &str) -> PathBuf {
        // Join by string: Path::join would drop a trailing slash.
        PathBuf::from(format!("{}/{}", self.0.display(), path))
    }

    fn open(&self, path: &str, flags: u32) -> io::Result<File> {
        let mut o = OpenOptions::new();
        match flags & O_ACCMODE {
            O_RDONLY => o.read(true),
            O_WRONLY => o.write(true),
            _ => o.read(true).write(true),
        };
        // Everything but the access mode goes through custom_flags as is
        // (std's own create() refuses O_RDONLY|O_CREAT, which Linux allows).
        o.custom_flags((flags & !O_ACCMODE) as i32).mode(0o644);
        o.open(self.p(path))
    }

    fn apply(&self, op: &Op) -> Res {
        os((|| -> io::Result<Out> {
            match op {
                Op::Mkdir(p) => fs::create_dir(self.p(p)).map(|()| Out::Done),
                Op::Create { path, excl } => {
                    let f = O_CREAT | O_WRONLY | if *excl { O_EXCL } else { 0 };
                    self.open(path, f).map(|_| Out::Done)
                }
                Op::Write { path, offset, len, byte } => {
                    self.open(path, O_WRONLY)?.write_all_at(&data(*len, *byte), *offset).map(|()| Out::Done)
                }
                Op::Append { path, len, byte } => {
                    use std::io::Write;
                    self.open(path, O_WRONLY | O_APPEND)?.write_all(&data(*len, *byte)).map(|()| Out::Done)
                }
                Op::Read { path, offset, len } => {
                    let f = self.open(path, O_RDONLY)?;
                    let mut buf = vec![0; *len];
                    let mut got = 0;
                    loop {
                        let n = f.read_at(&mut buf[got..], *offset + got as u64)?;
                        got += n;
                        if n == 0 || got == buf.len() {
                            break;
                        }
                    }
                    buf.truncate(got);
                    Ok(Out::Bytes(buf))
                }
                Op::Truncate { path, size } => self.open(path, O_WRONLY)?.set_len(*size).map(|()| Out::Done),
                Op::Rename(a, b) => fs::rename(self.p(a), self.p(b)).map(|()| Out::Done),
                Op::Unlink(p) => fs::remove_file(self.p(p)).map(|()| Out::Done),
                Op::Rmdir(p) => fs::remove_dir(self.p(p)).map(|()| Out::Done),
                Op::Symlink { target, path } => std::os::unix::fs::symlink(target, self.p(path)).map(|()| Out::Done),
                // Linux std::fs::hard_link is linkat(..., 0): a symlink is linked itself.
                Op::Link(a, b) => fs::hard_link(self.p(a), self.p(b)).map(|()| Out::Done),
                Op::Readdir(p) => {
                    let mut names = Vec::new();
                    for e in fs::read_dir(self.p(p))? {
                        names.push(std::os::unix::ffi::OsStrExt::as_bytes(e?.file_name().as_os_str()).to_vec());
                    }
                    names.sort();
                    Ok(Out::Names(names))
                }
                Op::Stat { path, follow: true } => fs::metadata(self.p(path)).map(|m| meta_out(&m)),
                Op::Stat { path, follow: false } => fs::symlink_metadata(self.p(path)).map(|m| meta_out(&m)),
                Op::Open { path, flags } => self.open(path, *flags)?.metadata().map(|m| meta_out(&m)),
            }
        })())
    }
}

/// Every name under `dir` (lstat), recursively: path -> (kind, nlink, size, content or target).
fn host_tree(root: &Path, rel: &str, out: &mut Vec<(String, Out, Vec<u8>)>) {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap().file_name()).collect();
    entries.sort();
    for name in entries {
        let rel = format!("{rel}{}", name.to_str().unwrap());
        let path = root.join(&rel);
        let m = fs::symlink_metadata(&path).unwrap();
        let body = if m.is_file() {
            fs::read(&path).unwrap()
        } else if m.file_type().is_symlink() {
            std::os::unix::ffi::OsStrExt::as_bytes(fs::read_link(&path).unwrap().as_os_str()).to_vec()
        } else {
            Vec::new()
        };
        out.push((rel.clone(), meta_out(&m), body));
        if m.is_dir() {
            host_tree(root, &format!("{rel}/"), out);
        }
    }
}

fn sfs_tree(fs: &FileSystem, dir: Ino, rel: &str, out: &mut Vec<(String, Out, Vec<u8>)>) {
    let mut entries = Vec::new();
    fs.readdir(dir, 0, &mut |e| {
        if e.name != b"." && e.name != b".." {
            entries.push(e);
        }
        true
    })
    .unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for e in entries {
        let rel = format!("{rel}{}", String::from_utf8(e.name.clone()).unwrap());
        let a = fs.lookup(dir, &e.name).unwrap();
        assert_eq!(a.ino, e.ino, "readdir and lookup disagree on {rel}");
        let body = match a.kind {
            FileKind::File => {
                let mut buf = vec![0; a.size as usize];
                assert_eq!(fs.read(a.ino, 0, &mut buf).unwrap(), buf.len());
                buf
            }
            FileKind::Symlink => fs.readlink(a.ino).unwrap(),
            _ => Vec::new(),
        };
        out.push((rel.clone(), Sfs::stat_out(&a), body));
        if a.kind == FileKind::Dir {
            sfs_tree(fs, a.ino, &format!("{rel}/"), out);
        }
    }
}

fn host_base() -> PathBuf {
    std::env::var_os("DIFF_HOST_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn shared_fs_matches_the_host_filesystem() {
    let sequences = env("DIFF_SEQUENCES", 3000);
    let ops_per = env("DIFF_OPS", 60) as usize;
    let first_seed = env("DIFF_SEED", 1);
    let base = host_base().join(format!("shared-fs-diff-{}", std::process::id()));
    let mut checked = 0u64;
    let mut errors = std::collections::BTreeMap::<i32, u64>::new();
    for seed in first_seed..first_seed + sequences {
        let dir = base.join(seed.to_string());
        fs::create_dir_all(&dir).unwrap();
        let host = Host(dir.clone());
        let sfs = Sfs(FileSystem::new(Config { initial_bytes: 0, max_bytes: 64 << 20, clock: zero_clock }).unwrap());
        let mut gen = Gen { rng: Rng::new(seed), known: Vec::new() };
        let mut log = Vec::new();
        for _ in 0..ops_per {
            let op = gen_op(&mut gen);
            let want = host.apply(&op);
            let got = sfs.apply(&op);
            log.push(format!("{op:?} -> {want:?}"));
            if std::env::var("DIFF_TRACE").is_ok() { eprintln!("{op:?} -> {want:?}"); }
            if want != got {
                panic!(
                    "seed {seed}: {op:?}\n  host:      {want:?}\n  shared-fs: {got:?}\nsequence:\n  {}",
                    log.join("\n  ")
                );
            }
            if want.is_ok() {
                gen.created(&op);
            }
            checked += 1;
            if let Err(e) = want {
                *errors.entry(e).or_default() += 1;
            }
        }
        let (mut h, mut s) = (Vec::new(), Vec::new());
        host_tree(&dir, "", &mut h);
        sfs_tree(&sfs.0, ROOT, "", &mut s);
        if h != s {
            panic!("seed {seed}: trees differ\n  host:      {h:?}\n  shared-fs: {s:?}\nsequence:\n  {}", log.join("\n  "));
        }
        sfs.0.check().unwrap_or_else(|e| panic!("seed {seed}: check: {e}"));
        fs::remove_dir_all(&dir).unwrap();
    }
    let _ = fs::remove_dir(&base);
    let failed: u64 = errors.values().sum();
    println!(
        "differential: {sequences} sequences, {checked} operations checked, {} succeeded, {failed} failed alike (by errno: {errors:?})",
        checked - failed
    );
}

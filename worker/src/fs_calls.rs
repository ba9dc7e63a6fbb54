//! The calls the Emscripten mount adapter (`src-js/shared-fs-mount.js`) makes.
//! Every call goes to shared-fs: nothing is cached on the JS side, so what
//! another worker changed is what the next call sees.
//!
//! Inode numbers travel as f64 (exact below 2^53). Calls that produce
//! attributes write them into this worker's attribute buffer (laid out as
//! `ATTR_FIELDS`), which the adapter reads through a view made once: no
//! allocation per call. File bytes move between the file's blocks and PHP's
//! heap through this worker's staging area: one copy in Rust, one in JS.

use crate::{errno, fs};
use shared_fs::{oflags, Attr, Errno, FileSystem, FlockOp, Ino, LockRange, LockType, SetAttr, Timespec};
use wasm_bindgen::prelude::*;

/// Order of the fields in an attribute array; the adapter reads it by name.
#[wasm_bindgen]
pub fn attr_fields() -> Vec<String> {
    ATTR_FIELDS.iter().map(|s| s.to_string()).collect()
}

const ATTR_FIELDS: [&str; 11] =
    ["ino", "mode", "nlink", "uid", "gid", "size", "blocks", "blksize", "atime", "mtime", "ctime"];

fn ms(t: Timespec) -> f64 {
    t.sec as f64 * 1000.0 + t.nsec as f64 / 1e6
}

fn from_ms(ms: f64) -> Timespec {
    let sec = (ms / 1000.0).floor();
    Timespec { sec: sec as i64, nsec: ((ms - sec * 1000.0) * 1e6).round().min(999_999_999.0) as u32 }
}

thread_local! {
    /// This worker's attribute buffer (thread-locals are per worker).
    static ATTR: std::cell::Cell<[f64; 11]> = const { std::cell::Cell::new([0.0; 11]) };
    /// Staging area: PHP's heap is another memory, so written bytes are
    /// copied here by the adapter, then into the file (and large reads the
    /// other way round).
    static STAGING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static LAST_READDIR: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Address of this worker's attribute buffer (11 f64, see `attr_fields`).
#[wasm_bindgen]
pub fn attr_buffer() -> u32 {
    ATTR.with(|a| a.as_ptr() as usize as u32)
}

fn attr_array(a: &Attr) -> [f64; 11] {
    [
        a.ino as f64,
        a.mode as f64,
        a.nlink as f64,
        a.uid as f64,
        a.gid as f64,
        a.size as f64,
        a.blocks as f64,
        a.blksize as f64,
        ms(a.atime),
        ms(a.mtime),
        ms(a.ctime),
    ]
}

type Res<T> = Result<T, JsValue>;

/// Stores the attributes in the attribute buffer.
fn attr(r: Result<Attr, Errno>) -> Res<()> {
    let a = r.map_err(errno)?;
    ATTR.with(|cell| cell.set(attr_array(&a)));
    Ok(())
}

fn ino(v: f64) -> u64 {
    v as u64
}

#[wasm_bindgen]
pub fn fs_root() -> Res<()> {
    attr(fs()?.getattr(FileSystem::ROOT))
}

#[wasm_bindgen]
pub fn fs_lookup(parent: f64, name: &str) -> Res<()> {
    attr(fs()?.lookup(ino(parent), name.as_bytes()))
}

#[wasm_bindgen]
pub fn fs_getattr(node: f64) -> Res<()> {
    attr(fs()?.getattr(ino(node)))
}

/// NaN means "leave unchanged" for every field.
#[wasm_bindgen]
pub fn fs_setattr(node: f64, mode: f64, size: f64, atime_ms: f64, mtime_ms: f64) -> Res<()> {
    let set = SetAttr {
        mode: (!mode.is_nan()).then_some(mode as u32),
        size: (!size.is_nan()).then_some(size as u64),
        atime: (!atime_ms.is_nan()).then(|| from_ms(atime_ms)),
        mtime: (!mtime_ms.is_nan()).then(|| from_ms(mtime_ms)),
        ..SetAttr::default()
    };
    attr(fs()?.setattr(ino(node), &set))
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

#[wasm_bindgen]
pub fn fs_mknod(parent: f64, name: &str, mode: u32) -> Res<()> {
    let fs = fs()?;
    let perm = mode & 0o7777;
    match mode & S_IFMT {
        S_IFDIR => attr(fs.mkdir(ino(parent), name.as_bytes(), perm, 0, 0)),
        S_IFREG | 0 => attr(fs.create(ino(parent), name.as_bytes(), perm, 0, 0)),
        // Devices, FIFOs and sockets have no place on a shared site disk.
        _ => Err(errno(Errno::EPERM)),
    }
}

#[wasm_bindgen]
pub fn fs_symlink(parent: f64, name: &str, target: &str) -> Res<()> {
    attr(fs()?.symlink(ino(parent), name.as_bytes(), target.as_bytes(), 0, 0))
}

#[wasm_bindgen]
pub fn fs_readlink(node: f64) -> Res<String> {
    let bytes = fs()?.readlink(ino(node)).map_err(errno)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[wasm_bindgen]
pub fn fs_unlink(parent: f64, name: &str) -> Res<()> {
    fs()?.unlink(ino(parent), name.as_bytes()).map_err(errno)
}

#[wasm_bindgen]
pub fn fs_rmdir(parent: f64, name: &str) -> Res<()> {
    fs()?.rmdir(ino(parent), name.as_bytes()).map_err(errno)
}

#[wasm_bindgen]
pub fn fs_rename(parent: f64, name: &str, new_parent: f64, new_name: &str) -> Res<()> {
    fs()?.rename(ino(parent), name.as_bytes(), ino(new_parent), new_name.as_bytes()).map_err(errno)
}

/// All names in the directory, `.` and `..` included, in shared-fs order,
/// joined by `/` (which no name contains): one string crosses into JS
/// instead of one per entry.
#[wasm_bindgen]
pub fn fs_readdir(node: f64) -> Res<String> {
    let mut names = String::new();
    let mut kinds = Vec::new();
    fs()?
        .readdir(ino(node), 0, &mut |entry| {
            if !names.is_empty() {
                names.push('/');
            }
            names.push_str(&String::from_utf8_lossy(&entry.name));
            kinds.push(entry.ino as f64);
            kinds.push(type_bits(entry.kind) as f64);
            true
        })
        .map_err(errno)?;
    LAST_READDIR.with(|k| *k.borrow_mut() = kinds);
    Ok(names)
}

/// `[ino, file type bits]` for each entry of the last `fs_readdir`, in its
/// order: the directory's own snapshot of its entries, as `getdents` reports.
#[wasm_bindgen]
pub fn fs_last_readdir() -> Vec<f64> {
    LAST_READDIR.with(|k| k.borrow().clone())
}

fn type_bits(kind: shared_fs::FileKind) -> u32 {
    use shared_fs::FileKind::*;
    match kind {
        Dir => 0o040000,
        File => 0o100000,
        Symlink => 0o120000,
        Fifo => 0o010000,
        CharDev => 0o020000,
        BlockDev => 0o060000,
        Socket => 0o140000,
    }
}

#[wasm_bindgen]
pub fn fs_open(node: f64) -> Res<()> {
    fs()?.open(ino(node)).map_err(errno)
}

#[wasm_bindgen]
pub fn fs_release(node: f64) -> Res<()> {
    fs()?.release(ino(node));
    Ok(())
}

/// Reads up to `length` bytes at `position` into the staging area at
/// `skew` bytes from its start (see `fs_staging`); returns the count.
///
/// The adapter picks `skew` so that the staged bytes and their destination
/// in PHP's heap have the same address modulo 8: V8 copies out of a
/// SharedArrayBuffer about 8 times slower when they do not.
#[wasm_bindgen]
pub fn fs_read_staged(node: f64, position: f64, length: u32, skew: u32) -> Res<u32> {
    let fs = fs()?;
    let (start, end) = (skew as usize, skew as usize + length as usize);
    STAGING.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < end {
            s.resize(end, 0);
        }
        fs.read(ino(node), position as u64, &mut s[start..end]).map(|n| n as u32).map_err(errno)
    })
}

/// Makes the staging area at least `length` bytes; returns its address
/// (valid until the next call).
#[wasm_bindgen]
pub fn fs_staging(length: u32) -> u32 {
    STAGING.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < length as usize {
            s.resize(length as usize, 0);
        }
        s.as_ptr() as usize as u32
    })
}

/// Writes `length` staged bytes, starting `skew` bytes into the staging
/// area, through a description opened with `flags` (see `write_through`).
/// Returns `[bytes written, offset written at]`.
#[wasm_bindgen]
pub fn fs_write_staged(node: f64, position: f64, length: u32, skew: u32, flags: u32) -> Res<Box<[f64]>> {
    let fs = fs()?;
    STAGING.with(|s| {
        let s = s.borrow();
        let data = s.get(skew as usize..(skew + length) as usize).ok_or_else(|| errno(Errno::EINVAL))?;
        let (written, at) = write_through(fs, ino(node), position as u64, flags, data).map_err(errno)?;
        Ok(Box::new([written as f64, at as f64]) as Box<[f64]>)
    })
}

/// Where a write through an open description lands: at `position`, or, if
/// the description is `O_APPEND`, at the end of the file as it is when the
/// write takes the file's lock, so appends from any number of workers never
/// land on each other (Emscripten would seek to the end, then write: two
/// steps another worker can come between). Returns what was written, where.
pub(crate) fn write_through(fs: &FileSystem, ino: Ino, position: u64, flags: u32, data: &[u8]) -> Result<(usize, u64), Errno> {
    if flags & oflags::O_APPEND != 0 {
        fs.append(ino, data).map(|at| (data.len(), at))
    } else {
        fs.write(ino, position, data).map(|n| (n, position))
    }
}

/// Whether an `open` that failed with Emscripten errno `errno` should simply
/// be tried again: with `O_CREAT` but not `O_EXCL`, a file another worker
/// created between Emscripten's lookup and its create is opened (POSIX),
/// not reported as `EEXIST`.
#[wasm_bindgen]
pub fn open_lost_create_race(flags: u32, errno: i32) -> bool {
    errno == crate::errno_abi::emscripten_errno(Errno::EEXIST) && flags & oflags::O_CREAT != 0 && flags & oflags::O_EXCL == 0
}

/// `[block_size, blocks, blocks_free, files, files_free, name_max]`
#[wasm_bindgen]
pub fn fs_statfs() -> Res<Box<[f64]>> {
    let s = fs()?.statfs();
    Ok(Box::new([
        s.block_size as f64,
        s.blocks as f64,
        s.blocks_free as f64,
        s.files as f64,
        s.files_free as f64,
        s.name_max as f64,
    ]))
}

#[wasm_bindgen]
pub fn fs_resolve(path: &str) -> Res<()> {
    attr(fs()?.resolve(FileSystem::ROOT, path.as_bytes(), true))
}

// ------------------------------------------------------------------ locks
// PHP's fcntl(F_GETLK/F_SETLK/F_SETLKW) and flock() reach these through the
// adapter; the owner is this worker (a "process" in POSIX terms).

/// musl's `l_type` values, as php.wasm's libc uses them.
const F_RDLCK: u32 = 0;
const F_WRLCK: u32 = 1;
const F_UNLCK: u32 = 2;

fn lock_type(l_type: u32) -> Result<LockType, JsValue> {
    match l_type {
        F_RDLCK => Ok(LockType::Read),
        F_WRLCK => Ok(LockType::Write),
        F_UNLCK => Ok(LockType::Unlock),
        _ => Err(errno(Errno::EINVAL)),
    }
}

/// F_SETLK (`wait` false: EAGAIN on conflict) or F_SETLKW (blocks).
/// `start` is already absolute; `len` 0 means to end of file.
#[wasm_bindgen]
pub fn fs_setlk(node: f64, start: f64, len: f64, l_type: u32, wait: bool) -> Res<()> {
    let range = LockRange { start: start as u64, len: len as u64 };
    let kind = lock_type(l_type)?;
    let fs = fs()?;
    let owner = crate::worker_index();
    if wait {
        fs.setlkw(ino(node), owner, range, kind, None).map_err(errno)
    } else {
        fs.setlk(ino(node), owner, range, kind).map_err(errno)
    }
}

/// F_GETLK: `[l_type, start, len, owner]` of the first conflicting lock, or
/// `[F_UNLCK, ...]` when the request would be granted.
#[wasm_bindgen]
pub fn fs_getlk(node: f64, start: f64, len: f64, l_type: u32) -> Res<Box<[f64]>> {
    let range = LockRange { start: start as u64, len: len as u64 };
    let conflict = fs()?.getlk(ino(node), crate::worker_index(), range, lock_type(l_type)?).map_err(errno)?;
    Ok(match conflict {
        Some(c) => {
            let kind = if c.kind == LockType::Write { F_WRLCK } else { F_RDLCK };
            Box::new([kind as f64, c.range.start as f64, c.range.len as f64, c.owner as f64])
        }
        None => Box::new([F_UNLCK as f64, start, len, 0.0]),
    })
}

/// Closing any descriptor of a file drops this worker's range locks on it.
#[wasm_bindgen]
pub fn fs_close_release(node: f64) -> Res<()> {
    fs()?.close_release(ino(node), crate::worker_index());
    Ok(())
}

/// `flock(2)` on an open file description. `operation` is LOCK_SH (1),
/// LOCK_EX (2) or LOCK_UN (8), optionally | LOCK_NB (4).
#[wasm_bindgen]
pub fn fs_flock(node: f64, description: f64, operation: u32) -> Res<()> {
    let op = match operation & !4 {
        1 => FlockOp::Shared,
        2 => FlockOp::Exclusive,
        8 => FlockOp::Unlock,
        _ => return Err(errno(Errno::EINVAL)),
    };
    let nonblocking = operation & 4 != 0;
    fs()?.flock(ino(node), description as u64, crate::worker_index(), op, nonblocking).map_err(errno)
}

// ------------------------------------------------------------ path walks
/// What `fs_walk` met that the adapter must leave to Emscripten's own walk.
const WALK_SYMLINK: f64 = -1.0;
/// The last component does not exist (its parent does).
const WALK_MISSING_LAST: f64 = -2.0;

/// Walks `path` (components separated by `/`, no `.` or `..`) from `start`
/// in one call: `[status, ino, mode, ino, mode, ...]` for each component
/// found, status being their count, `WALK_MISSING_LAST`, or `WALK_SYMLINK`
/// when a symlink is met (Emscripten then walks it itself, so its symlink
/// rules stay the only ones). The last component's attributes are also left
/// in the attribute buffer. Errors other than a missing last component are
/// thrown as for `fs_lookup`.
#[wasm_bindgen]
pub fn fs_walk(start: f64, path: &str, follow_last: bool) -> Res<Vec<f64>> {
    let fs = fs()?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut out = vec![0.0; 1 + 2 * parts.len()];
    let mut dir = ino(start);
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let found = match fs.lookup(dir, name.as_bytes()) {
            Ok(a) => a,
            Err(Errno::ENOENT) if last => {
                out[0] = WALK_MISSING_LAST;
                out.truncate(1 + 2 * i);
                return Ok(out);
            }
            Err(e) => return Err(errno(e)),
        };
        if found.kind == shared_fs::FileKind::Symlink && (!last || follow_last) {
            return Ok(vec![WALK_SYMLINK]);
        }
        out[1 + 2 * i] = found.ino as f64;
        out[2 + 2 * i] = found.mode as f64;
        if last {
            ATTR.with(|cell| cell.set(attr_array(&found)));
        }
        dir = found.ino;
    }
    out[0] = parts.len() as f64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn appends_from_many_workers_land_whole_at_the_end() {
        let fs = Arc::new(
            FileSystem::new(shared_fs::Config { initial_bytes: 1 << 20, max_bytes: 16 << 20, clock: Timespec::default })
                .unwrap(),
        );
        let log = fs.create(FileSystem::ROOT, b"debug.log", 0o644, 0, 0).unwrap().ino;
        let workers: Vec<_> = (0..4u8)
            .map(|w| {
                let fs = fs.clone();
                std::thread::spawn(move || {
                    for i in 0..600u32 {
                        let line = format!("worker {w} line {i:04}\n");
                        // Every worker's view of the end is stale: position 0.
                        let (n, _) = write_through(&fs, log, 0, oflags::O_WRONLY | oflags::O_APPEND, line.as_bytes()).unwrap();
                        assert_eq!(n, line.len());
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let mut data = vec![0; fs.getattr(log).unwrap().size as usize];
        fs.read(log, 0, &mut data).unwrap();
        let text = String::from_utf8(data).unwrap();
        let lines: std::collections::HashSet<&str> = text.lines().collect();
        assert_eq!(text.lines().count(), 2400);
        assert_eq!(lines.len(), 2400, "every line once and whole");
        fs.check().unwrap();
    }

    #[test]
    fn only_a_non_exclusive_create_that_lost_a_race_is_retried() {
        let eexist = crate::errno_abi::emscripten_errno(Errno::EEXIST);
        assert!(open_lost_create_race(oflags::O_WRONLY | oflags::O_CREAT | oflags::O_APPEND, eexist));
        assert!(!open_lost_create_race(oflags::O_WRONLY | oflags::O_CREAT | oflags::O_EXCL, eexist));
        assert!(!open_lost_create_race(oflags::O_WRONLY, eexist));
        assert!(!open_lost_create_race(oflags::O_CREAT, crate::errno_abi::emscripten_errno(Errno::ENOENT)));
    }

    #[test]
    fn a_write_without_append_lands_where_asked() {
        let fs = FileSystem::new(shared_fs::Config { initial_bytes: 1 << 20, max_bytes: 16 << 20, clock: Timespec::default })
            .unwrap();
        let f = fs.create(FileSystem::ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        write_through(&fs, f, 0, oflags::O_WRONLY, b"hello world").unwrap();
        assert_eq!(write_through(&fs, f, 6, oflags::O_RDWR, b"W").unwrap(), (1, 6));
        assert_eq!(write_through(&fs, f, 0, oflags::O_RDWR | oflags::O_APPEND, b"!").unwrap(), (1, 11));
        let mut data = vec![0; 12];
        fs.read(f, 0, &mut data).unwrap();
        assert_eq!(&data, b"hello World!");
    }
}

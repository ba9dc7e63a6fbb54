//! The calls the Emscripten mount adapter (`src-js/shared-fs-mount.js`) makes.
//! Every call goes to shared-fs: nothing is cached on the JS side, so what
//! another worker changed is what the next call sees. What a call means
//! (locks, flock descriptions, directory listings, path walks, seeks) is
//! decided in `mount/`, tested natively; this file holds each worker's state
//! for it in thread-locals and translates numbers and errors.
//!
//! Inode numbers travel as f64 (exact below 2^53). Calls that produce
//! attributes write them into this worker's attribute buffer (laid out as
//! `ATTR_FIELDS`), which the adapter reads through a view made once: no
//! allocation per call. File bytes move between the file's blocks and PHP's
//! heap through this worker's staging area: one copy in Rust, one in JS.

use crate::errno_abi::{self, emscripten_errno};
use crate::mount::{fcntl, flock::Flocks, getdents::Listings, paths};
use crate::{errno, fs};
use shared_fs::{oflags, Attr, Errno, FileSystem, Ino, SetAttr, Timespec, MODE_PERM_MASK, S_IFDIR, S_IFMT, S_IFREG};
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
    /// `[address, length]` of the staging area, for the adapter to read
    /// without a call (`staging_buffer`); kept up to date by `grow`.
    static STAGING_AT: std::cell::Cell<[f64; 2]> = const { std::cell::Cell::new([0.0; 2]) };
    /// The `struct flock` of the fcntl lock call in progress (see `fs_fcntl_lock`).
    static FLOCK: std::cell::Cell<fcntl::FlockBytes> = const { std::cell::Cell::new([0; errno_abi::flock_struct::SIZE]) };
    /// This worker's flock descriptions and open descriptors.
    static FLOCKS: std::cell::RefCell<Flocks> = const { std::cell::RefCell::new(Flocks::new()) };
    /// This worker's directory streams' listings.
    static LISTINGS: std::cell::RefCell<Listings> = const { std::cell::RefCell::new(Listings::new()) };
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

#[wasm_bindgen]
pub fn fs_mknod(parent: f64, name: &str, mode: u32) -> Res<()> {
    let fs = fs()?;
    let perm = mode & MODE_PERM_MASK;
    match mode & S_IFMT {
        S_IFDIR => attr(fs.mkdir(ino(parent), name.as_bytes(), perm, 0, 0)),
        S_IFREG | 0 if crate::compiled_cache::refuses_create(fs, ino(parent), name.as_bytes(), crate::jobs::caches_current(fs), &crate::jobs::on_shared_mount) => {
            Err(errno(crate::compiled_cache::REFUSED))
        }
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
/// instead of one per entry. (PHP lists directories through
/// `fs_getdents`; this is Emscripten's `FS.readdir`.)
#[wasm_bindgen]
pub fn fs_readdir(node: f64) -> Res<String> {
    let mut names = String::new();
    fs()?
        .readdir(ino(node), 0, &mut |entry| {
            if !names.is_empty() {
                names.push('/');
            }
            names.push_str(&String::from_utf8_lossy(&entry.name));
            true
        })
        .map_err(errno)?;
    Ok(names)
}

/// A descriptor of `node` opened (or duplicated): it pins the inode, so an
/// unlinked file stays readable until the last close.
#[wasm_bindgen]
pub fn fs_open(node: f64) -> Res<()> {
    fs()?.open(ino(node)).map_err(errno)?;
    FLOCKS.with(|f| f.borrow_mut().opened(ino(node)));
    Ok(())
}

/// Descriptor `fd` of `node` closes. POSIX: closing any descriptor of a file
/// drops this worker's range locks on it; its flocks go with its last
/// descriptor of the file (`Flocks::closed`); a directory stream's listing
/// goes with the stream.
#[wasm_bindgen]
pub fn fs_close(node: f64, fd: u32) -> Res<()> {
    let (fs, file, owner) = (fs()?, ino(node), crate::worker_index());
    fs.close_release(file, owner);
    FLOCKS.with(|f| f.borrow_mut().closed(fs, owner, file));
    LISTINGS.with(|l| l.borrow_mut().closed(fd));
    fs.release(file);
    Ok(())
}

/// `llseek`: the new position of a descriptor of `node` at `position`
/// (`paths::seek`).
#[wasm_bindgen]
pub fn fs_llseek(node: f64, offset: f64, whence: i32, position: f64) -> Res<f64> {
    paths::seek(fs()?, ino(node), offset, whence, position).map_err(errno)
}

/// `getdents64` on directory `dir` open as `fd` at `position`, into a
/// buffer of `count` bytes (`Listings::getdents`): the records are left in
/// the staging area. Returns `[bytes, new position, staging address]`.
#[wasm_bindgen]
pub fn fs_getdents(fd: u32, dir: f64, position: f64, count: f64) -> Res<Box<[f64]>> {
    let fs = fs()?;
    STAGING.with(|s| {
        let mut s = s.borrow_mut();
        let found = LISTINGS.with(|l| l.borrow_mut().getdents(fs, fd, ino(dir), position, count, &mut s));
        grow(&mut s, 0);
        let (bytes, position) = found.map_err(errno)?;
        Ok(Box::new([bytes as f64, position, s.as_ptr() as usize as f64]) as Box<[f64]>)
    })
}

/// Reads up to `length` bytes at `position` into PHP's heap at address
/// `into` (`to` in the adapter's buffer), all under the file's read lock:
/// `copy(from, length, to)` copies that many bytes out of the shared memory.
/// Straight from the blocks (one `copy` per run of adjacent blocks) when
/// that is V8's fast copy (`reads_straight`), else through the staging area
/// at a matching address (one read, one `copy`). Returns the count.
#[wasm_bindgen]
pub fn fs_read(node: f64, position: f64, length: u32, into: f64, to: f64, copy: &js_sys::Function) -> Res<u32> {
    let fs = fs()?;
    let call = |from: usize, n: usize, to: f64| copy.call3(&JsValue::NULL, &(from as f64).into(), &(n as f64).into(), &to.into());
    if !reads_straight(into as u64, position as u64) {
        return STAGING.with(|s| {
            let mut s = s.borrow_mut();
            let skew = (into as usize).wrapping_sub(s.as_ptr() as usize) & 7;
            grow(&mut s, skew + length as usize);
            let n = fs.read(ino(node), position as u64, &mut s[skew..skew + length as usize]).map_err(errno)?;
            call(s.as_ptr() as usize + skew, n, to)?;
            Ok(n as u32)
        });
    }
    let mut dest = to;
    let mut run: Option<(usize, usize)> = None;
    let mut failed = None;
    let mut flush = |run: (usize, usize), dest: &mut f64| {
        if failed.is_none() {
            failed = call(run.0, run.1, *dest).err();
        }
        *dest += run.1 as f64;
    };
    let n = fs
        .read_with(ino(node), position as u64, length as usize, &mut |part| {
            let at = part.as_ptr() as usize;
            match &mut run {
                Some((start, len)) if *start + *len == at => *len += part.len(),
                _ => {
                    if let Some(done) = run.replace((at, part.len())) {
                        flush(done, &mut dest);
                    }
                }
            }
        })
        .map_err(errno)?;
    if let Some(done) = run {
        flush(done, &mut dest);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(n as u32),
    }
}

/// Whether a read at `position` into address `into` copies straight from
/// the blocks: V8 copies out of a SharedArrayBuffer about 8 times slower
/// when source and destination differ modulo 8, and a block (or a
/// fragment: 512-byte aligned) holds `position`'s byte at an address equal
/// to `position` modulo 8.
fn reads_straight(into: u64, position: u64) -> bool {
    into.wrapping_sub(position).is_multiple_of(8)
}

/// Makes the staging area at least `length` bytes; returns its address
/// (valid until it grows again). The adapter calls this only when
/// `staging_buffer` says the area is too small.
#[wasm_bindgen]
pub fn fs_staging(length: u32) -> u32 {
    STAGING.with(|s| {
        let mut s = s.borrow_mut();
        grow(&mut s, length as usize);
        s.as_ptr() as usize as u32
    })
}

/// Address of `[staging address, staging length]` (2 f64), which the
/// adapter reads before each read or write instead of calling `fs_staging`.
#[wasm_bindgen]
pub fn staging_buffer() -> u32 {
    STAGING_AT.with(|a| a.as_ptr() as usize as u32)
}

/// Makes the staging area at least `length` bytes and publishes where it is.
fn grow(s: &mut Vec<u8>, length: usize) {
    if s.len() < length {
        s.resize(length, 0);
    }
    STAGING_AT.with(|a| a.set([s.as_ptr() as usize as f64, s.len() as f64]));
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

/// Address of this worker's `struct flock` buffer (`flock_struct::SIZE`
/// bytes): the adapter copies the caller's struct in before `fs_fcntl_lock`
/// and back after it.
#[wasm_bindgen]
pub fn fcntl_flock_buffer() -> u32 {
    FLOCK.with(|b| b.as_ptr() as usize as u32)
}

/// fcntl lock command `cmd` on `node` (NaN: a file of php-wasm's own) through
/// a descriptor at `position`, on the struct in the flock buffer
/// (`fcntl::lock`). Returns 0 or minus php.wasm's errno, as a syscall does.
#[wasm_bindgen]
pub fn fs_fcntl_lock(node: f64, cmd: i32, position: f64) -> Res<i32> {
    let fs = fs()?;
    let file = (!node.is_nan()).then(|| ino(node));
    Ok(FLOCK.with(|cell| {
        let mut flock = cell.get();
        let result = fcntl::lock(fs, crate::worker_index(), file, cmd, position, &mut flock);
        cell.set(flock);
        result.map_or_else(|e| -emscripten_errno(e), |()| 0)
    }))
}

/// PHP's `flock()` (the polyfill's message): the reply it expects
/// (`Flocks::flock`).
#[wasm_bindgen]
pub fn php_flock(shared: bool, node: f64, resource: f64, operation: u32) -> Res<String> {
    let fs = fs()?;
    let owner = crate::worker_index();
    let reply = FLOCKS.with(|f| f.borrow_mut().flock(fs, owner, shared, ino(node), resource as u64, operation));
    Ok(reply.as_str().to_string())
}

/// A request ended on this worker (`Flocks::request_ended`).
#[wasm_bindgen]
pub fn fs_request_ended() -> Res<()> {
    let fs = fs()?;
    FLOCKS.with(|f| f.borrow_mut().request_ended(fs, crate::worker_index()));
    Ok(())
}

/// What the adapter needs of php.wasm's ABI (`errno_abi`), as JSON: the
/// fcntl lock commands it hands to `fs_fcntl_lock`, the size of the struct
/// it copies, and the errnos it returns itself (a missing descriptor, a
/// failed mmap).
#[wasm_bindgen]
pub fn adapter_abi() -> String {
    use errno_abi::fcntl::*;
    let e = |e: Errno| emscripten_errno(e);
    format!(
        r#"{{"lockCommands":[{},{},{}],"flockSize":{},"EBADF":{},"ENOMEM":{}}}"#,
        F_GETLK,
        F_SETLK,
        F_SETLKW,
        errno_abi::flock_struct::SIZE,
        e(Errno::EBADF),
        e(Errno::ENOMEM),
    )
}

/// php.wasm's fcntl for a command other than a shared-fs lock, as
/// `[kind, value]` (`fcntl::OtherCommand::encode`); the adapter carries it
/// out on Emscripten's descriptor.
#[wasm_bindgen]
pub fn fcntl_other_command(cmd: i32, arg: i32) -> Vec<i32> {
    fcntl::OtherCommand::of(cmd, arg).encode().to_vec()
}

// ------------------------------------------------------------ path walks
/// `FS.lookupPath(prefix + path, opts)` for a path under the mount, walked
/// from the mount's directory `start` in one call (`paths::walk`):
/// `[n, ino, mode, ino, mode, ...]`, n being how many components of `path`
/// the answer's path has, with an (ino, mode) pair for each of them, or
/// none when the last is missing (`noent_okay`: a path without a node); `[0]`
/// leaves the path to Emscripten's own walk. Errors are thrown as for
/// `fs_lookup`.
#[wasm_bindgen]
pub fn fs_walk(start: f64, path: &str, parent: bool, follow: bool, noent_okay: bool) -> Res<Vec<f64>> {
    let fs = fs()?;
    let mut out = Vec::with_capacity(2 + 2 * path.bytes().filter(|b| *b == b'/').count());
    out.push(0.0);
    let opts = paths::WalkOptions { parent, follow, noent_okay };
    let walk = paths::walk(fs, ino(start), path, opts, &mut |_, a| {
        out.push(a.ino as f64);
        out.push(a.mode as f64);
    });
    let n = match walk.map_err(errno)? {
        paths::Walk::Emscripten => 0,
        paths::Walk::Found(n) => n,
        paths::Walk::MissingLast(n) => {
            out.truncate(1);
            n
        }
    };
    if n == 0 {
        out.truncate(1);
    }
    out[0] = n as f64;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_go_straight_only_when_source_and_destination_agree_modulo_8() {
        use super::reads_straight;
        assert!(reads_straight(4096, 0));
        assert!(reads_straight(1000 + 13, 13));
        assert!(reads_straight(8, 4096 + 8));
        assert!(!reads_straight(4097, 0));
        assert!(!reads_straight(1000, 13));
        // A destination below the position's remainder wraps, still modulo 8.
        assert!(reads_straight(3, 11) && !reads_straight(3, 12));
    }
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

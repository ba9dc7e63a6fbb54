//! Plain data types of the public API.

/// Inode number. The root is 1; numbers come from a monotonic counter and are
/// never reused, so a stale `Ino` yields `ENOENT` instead of another file.
pub type Ino = u64;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// Special files (`mknod`): they keep only attributes and `rdev`; their
    /// I/O is the host kernel's business, never the filesystem's.
    Fifo,
    CharDev,
    BlockDev,
    Socket,
}

impl FileKind {
    /// The `S_IFMT` bits of `st_mode` for this kind.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileKind::File => S_IFREG,
            FileKind::Dir => S_IFDIR,
            FileKind::Symlink => S_IFLNK,
            FileKind::Fifo => S_IFIFO,
            FileKind::CharDev => S_IFCHR,
            FileKind::BlockDev => S_IFBLK,
            FileKind::Socket => S_IFSOCK,
        }
    }

    /// The kind named by the `S_IFMT` bits of `mode`, if any.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        Some(match mode & S_IFMT {
            S_IFREG => FileKind::File,
            S_IFDIR => FileKind::Dir,
            S_IFLNK => FileKind::Symlink,
            S_IFIFO => FileKind::Fifo,
            S_IFCHR => FileKind::CharDev,
            S_IFBLK => FileKind::BlockDev,
            S_IFSOCK => FileKind::Socket,
            _ => return None,
        })
    }
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_IXGRP: u32 = 0o0010;
/// Permission bits a caller may set (`chmod` mask).
pub const MODE_PERM_MASK: u32 = 0o7777;

/// `renameat2` flags (Linux values) for `FileSystem::rename2`.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;

/// Linux `open(2)` flag values understood by `FileSystem::open_path`.
pub mod oflags {
    pub const O_ACCMODE: u32 = 0o3;
    pub const O_RDONLY: u32 = 0o0;
    pub const O_WRONLY: u32 = 0o1;
    pub const O_RDWR: u32 = 0o2;
    pub const O_CREAT: u32 = 0o100;
    pub const O_EXCL: u32 = 0o200;
    pub const O_TRUNC: u32 = 0o1000;
    pub const O_APPEND: u32 = 0o2000;
    pub const O_DIRECTORY: u32 = 0o200000;
    pub const O_NOFOLLOW: u32 = 0o400000;
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    /// Full `st_mode`, including the `S_IFMT` type bits.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Allocated space in 512-byte units.
    pub blocks: u64,
    pub blksize: u32,
    /// Device number of a character or block device (0 otherwise).
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// Fields to change in `setattr`; `None` leaves a field alone. `ctime` is set
/// to now whenever anything changes, as POSIX says.
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Truncate or extend (regular files only).
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileKind,
    pub name: Vec<u8>,
    /// Pass back as `after_cookie` to continue after this entry.
    pub cookie: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub blocks_free: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of data space obtained from the backing so far.
    pub capacity: u64,
    /// Bytes of data space in the 512-byte sectors owned by files (a file's
    /// last block takes only the sectors its bytes reach). `capacity - used`
    /// also counts free sectors inside blocks shared by small fragments,
    /// which only fragments can use.
    pub used: u64,
    /// Highest `used` ever seen.
    pub high_water: u64,
    /// Configured limit for `capacity`.
    pub max: u64,
    /// Live inodes (linked or still open).
    pub inodes: u64,
    /// Lock acquisitions that had to wait (process-wide, all filesystems).
    pub contention: u64,
}

#[derive(Copy, Clone, Debug)]
pub struct Config {
    /// Data space obtained at `FileSystem::new` (rounded up to 64 KiB).
    pub initial_bytes: usize,
    /// Data space never grows past this (rounded down to 64 KiB, the wasm
    /// page); writes beyond it fail with `ENOSPC`. Metadata (inodes, names,
    /// symlink targets) lives on the global heap and is not counted.
    pub max_bytes: usize,
    /// Source of timestamps (`SystemTime::now` panics on wasm32-unknown-unknown).
    pub clock: fn() -> Timespec,
}

/// A clock that always says 1970; handy for tests and hosts without time.
pub fn zero_clock() -> Timespec {
    Timespec::default()
}

/// Wall-clock time from the OS (not available on wasm32-unknown-unknown).
#[cfg(not(target_arch = "wasm32"))]
pub fn system_clock() -> Timespec {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timespec { sec: d.as_secs() as i64, nsec: d.subsec_nanos() },
        Err(_) => Timespec::default(),
    }
}

/// Who holds a lock: a worker id (a process, in POSIX terms). Byte-range
/// locks conflict only between different owners; `release_all(owner)` frees
/// everything an owner held.
pub type Owner = u32;

/// A byte range `[start, start+len)`; `len == 0` means "to end of file and
/// beyond" (it grows with the file), as in `struct flock`. The adapter turns
/// `l_whence` and negative `l_len` into this form.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockRange {
    pub start: u64,
    pub len: u64,
}

/// `F_RDLCK` / `F_WRLCK` / `F_UNLCK`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockType {
    Read,
    Write,
    Unlock,
}

/// What `getlk` reports: the first lock that would block the request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub range: LockRange,
    pub kind: LockType,
    pub owner: Owner,
}

/// `LOCK_SH` / `LOCK_EX` / `LOCK_UN` of `flock(2)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FlockOp {
    Shared,
    Exclusive,
    Unlock,
}

/// Kind of a held lock in `lock_table`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeldKind {
    /// Byte-range read (shared) lock.
    Read,
    /// Byte-range write (exclusive) lock.
    Write,
    /// Whole-file `flock(LOCK_SH)`.
    FlockShared,
    /// Whole-file `flock(LOCK_EX)`.
    FlockExclusive,
}

/// One held lock, for a status panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub ino: Ino,
    /// A path naming the inode, best effort (`None` if unlinked or not found).
    pub path: Option<Vec<u8>>,
    pub start: u64,
    /// 0 = to end of file (always 0 for flock).
    pub len: u64,
    pub kind: HeldKind,
    pub owner: Owner,
    /// Open file description id (flock only).
    pub description: Option<u64>,
    /// Blocked requests waiting on this lock.
    pub waiters: usize,
}

/// Safe-point state of an owner; see `FileSystem::enter`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SafePointState {
    /// Not running shared-fs code: may be terminated.
    Outside,
    /// Running shared-fs code: must not be terminated.
    Inside,
    /// Inside, and a kill was requested: it becomes `Killed` when it leaves;
    /// blocking lock waits return `EINTR` so that happens soon.
    KillPending,
    /// Outside and refused further entry: terminate it, then `release_all`.
    Killed,
}

//! `shared-fs`: a POSIX-like in-memory filesystem that several PHP workers
//! share through one WebAssembly memory (natively: several threads).
//!
//! Everything is an ordinary `Send + Sync` data structure; on
//! `wasm32-unknown-unknown` with `+atomics` every worker instantiates the
//! same module over the same memory, so statics, heap and locks are shared
//! exactly as between threads. Linux tmpfs is the reference for semantics.
//!
//! # Design
//!
//! * **Space** (`space`): file data never lives on the global heap. Space
//!   comes in chunks (wasm32: `memory.grow`; native: aligned
//!   `std::alloc`), at least 1 MiB or 1/8 of the capacity per growth step,
//!   whole 64 KiB pages, never past `max_bytes`. Chunks are cut into 4 KiB
//!   blocks (page size, SQLite's page size) kept on a LIFO free list;
//!   freed blocks are reused before growing. A block slot of a file holds
//!   a fragment of 1..=8 sectors of 512 bytes inside one block, so tails
//!   and small files take only the sectors their bytes reach (WordPress
//!   6.5: 1.02x its bytes instead of 1.23x); blocks carved into fragments
//!   keep a sector mask and go back to the free list once empty.
//!   A write reserves all the space it needs before copying a byte, so
//!   `ENOSPC` leaves the file untouched (no short writes).
//! * **Files** (`file`): a sparse `BTreeMap` block index -> fragment; holes,
//!   and a block's bytes past its fragment, read as zeros; bytes past EOF
//!   inside the last block are kept zero; a write reaching past a
//!   fragment moves that block into a larger one.
//! * **Directories** (`dir`): entries by name plus an ordered map by cookie;
//!   cookies come from a per-directory counter at insertion, so readdir
//!   resumed after a cookie never repeats nor skips a stable entry.
//! * **Inodes** (`inode`): `RwLock` per inode (readers share, writers are
//!   exclusive, so no torn reads), a sharded table from `Ino` to inode,
//!   inode numbers from a counter (never reused). An inode is destroyed
//!   when it has neither names nor `open` pins.
//! * **Locking** (`fs`): no global lock on any path. Order: the rename
//!   mutex (only for moving a directory to another directory), then inode
//!   locks in ascending `Ino` taken all at once after lookups and
//!   re-validated, then leaf locks (atime, table shards, allocator).
//!   `sync` is the only module naming lock types.
//! * Times follow POSIX; atime uses Linux "relatime". `Stats::contention`
//!   counts process-wide lock waits.
//! * **Advisory locks** (`locks`): POSIX byte-range locks (`getlk`,
//!   `setlk`, `setlkw`, `close_release`) owned by an `Owner` (a worker = a
//!   POSIX process) and whole-file `flock` per open file description,
//!   independent of each other as on Linux. Blocked requests sleep and are
//!   granted first come, first served; `setlkw` detects deadlock cycles of
//!   any length (`EDEADLK`) and takes a timeout (`ETIMEDOUT`). Outcomes are
//!   checked against Linux `fcntl` in `tests/linux_locks.rs`. `lock_table`
//!   lists held locks for a status panel.
//!
//! # Worker death
//!
//! All workers share the module's memory, so a worker terminated while
//! inside shared-fs could leave a lock held or a structure half-changed.
//! Two layers make that harmless:
//!
//! 1. **Safe points** (`owner`): a worker runs shared-fs code only between
//!    `fs.enter(owner)` and dropping the returned `SafePoint`. The host
//!    calls `fs.request_kill(owner)` (never blocks): `Killed` means the
//!    worker is outside and cannot re-enter, so `Worker.terminate()` is
//!    safe; `KillPending` means it is inside: its blocking lock waits return
//!    `EINTR` at once and it becomes `Killed` when it leaves (poll
//!    `safe_point_state`). After terminating it, some worker (not the main
//!    thread) calls `fs.release_all(owner)`, which frees its range locks,
//!    flocks and queued requests and resets the id for reuse.
//! 2. **Owner-aware internals**, for a worker terminated inside anyway
//!    (e.g. a hard timeout): every internal lock records its owner
//!    (`sync`, owner set per thread by `set_current_owner`), and every
//!    mutating operation (create/mkdir/symlink, write, truncate,
//!    unlink/rmdir, rename) is a list of steps recorded in its owner's
//!    journal (`journal`). `release_all` takes over the dead owner's inode
//!    locks, completes its operation from the next step (or, for write,
//!    returns the blocks reserved but not yet linked), then force-releases
//!    every internal lock it still held. Kill-point tests stop a thread at
//!    each of the 30 steps and check that `check()` stays clean.
//!
//! The dead worker's guards are abandoned, not dropped: a terminated
//! worker never runs again (the test hook parks the thread forever), and
//! the memory its stack pointed to is never reclaimed, so the abandoned
//! references are never used.
//!
//! Module map: `space`, `file`, `dir`, `inode`, `fs` (the filesystem object
//! and lock order), `namespace` (name operations), `data` (read/write),
//! `path` (path resolution and open), `check` (invariants), `sync`
//! (owner-aware locks), `locks` (advisory locks), `journal` (operations in
//! flight), `owner` (safe points, `release_all`), `kill_points` (test hook),
//! `errno`, `names`, `types`; `fuse` (feature `fuse`, Linux): a native FUSE
//! adapter behind the `shared-fs-fuse` binary, used to run pjdfstest.
//!
//! Conformance tests beyond the unit tests: `tests/differential.rs` (random
//! sequences compared with the host filesystem, errno included),
//! `tests/fsx.rs` (random I/O against a model) and `tests/pjdfstest.sh`
//! (pjdfstest on the FUSE mount: 350 passed, 48 skipped, 0 failed).
//!
//! Not done yet: permission checks (the API carries no caller identity, so
//! nothing returns `EACCES`; uid/gid/mode are stored only), clearing
//! set-user-ID on write, xattrs, `RENAME_EXCHANGE`, open file description
//! (OFD) locks, mandatory locks, lock leases.

mod check;
mod data;
mod dir;
mod epochs;
mod errno;
mod file;
#[cfg(all(feature = "fuse", target_os = "linux"))]
pub mod fuse;
mod fs;
mod inode;
mod journal;
#[cfg(test)]
mod kill_tests;
#[cfg(any(test, feature = "kill-points"))]
pub mod kill_points;
mod locks;
mod names;
mod namespace;
mod owner;
mod path;
mod persist;
mod space;
mod sync;
mod types;

pub use epochs::CACHE_UPDATE_PROTECTION_SECS;
pub use errno::{Errno, Result};
pub use fs::FileSystem;
pub use owner::{request_stop, Released, SafePoint};
/// Values of the safe-point word (see `FileSystem::safe_point_word`).
pub use sync::{
    INSIDE as SAFE_POINT_INSIDE, KILLED as SAFE_POINT_KILLED, KILL_PENDING as SAFE_POINT_KILL_PENDING,
    OUTSIDE as SAFE_POINT_OUTSIDE,
};
pub use sync::{clear_current_owner, current_owner, set_current_owner};
pub use names::{NAME_MAX, PATH_MAX};
pub use path::MAX_SYMLINK_HOPS;
pub use persist::{crc32, open_log, Log, LogFile, LogWriter, Opened, Saved, Sink, Source, StoredFile};
pub use types::*;

/// Size of a data block: the unit of file addressing, of `statfs` and of
/// `Attr::blksize`. Storage is allocated in 512-byte sectors (`Attr::blocks`
/// counts them): a block's last bytes, when zero, may take no memory.
pub const BLOCK_SIZE: usize = space::BLOCK_SIZE;

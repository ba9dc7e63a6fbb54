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
//!   blocks (page size, SQLite's page size, small PHP files waste little)
//!   kept on a LIFO free list; freed blocks are reused before growing.
//!   A write reserves all the blocks it needs before copying a byte, so
//!   `ENOSPC` leaves the file untouched (no short writes).
//! * **Files** (`file`): a sparse `BTreeMap` block index -> block; holes read
//!   as zeros; bytes past EOF inside the last block are kept zero.
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
//!
//! Module map: `space`, `file`, `dir`, `inode`, `fs` (the filesystem object
//! and lock order), `namespace` (name operations), `data` (read/write),
//! `path` (path resolution and open), `check` (invariants), `sync`, `errno`,
//! `names`, `types`.
//!
//! Not done yet: permission checks (the API carries no caller identity, so
//! nothing returns `EACCES`; uid/gid/mode are stored only), clearing
//! set-user-ID on write, byte-range/whole-file locks, recovery of a dead
//! worker's locks, xattrs, `RENAME_NOREPLACE`/`RENAME_EXCHANGE`.

mod check;
mod data;
mod dir;
mod errno;
mod file;
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
mod space;
mod sync;
mod types;

pub use errno::{Errno, Result};
pub use fs::FileSystem;
pub use owner::{Released, SafePoint};
pub use sync::{clear_current_owner, current_owner, set_current_owner};
pub use names::{NAME_MAX, PATH_MAX};
pub use path::MAX_SYMLINK_HOPS;
pub use types::*;

/// Size of a data block: the unit of allocation and of `Attr::blocks * 512 / BLOCK_SIZE`.
pub const BLOCK_SIZE: usize = space::BLOCK_SIZE;

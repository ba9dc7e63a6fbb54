//! `shared-fs`: a POSIX-like in-memory filesystem that several PHP workers
//! share through one WebAssembly memory (natively: several threads).
//!
//! Everything is an ordinary `Send + Sync` data structure; on
//! `wasm32-unknown-unknown` with `+atomics` every worker instantiates the
//! same module over the same memory, so statics, heap and locks are shared
//! exactly as between threads. Linux tmpfs is the reference for semantics.
//!
//! Module map: `space` (data blocks), `file` (a file's block map), `dir`
//! (entries and readdir cookies), `inode` (inodes and the inode table),
//! `fs` (the filesystem object and lock order), `namespace` (name
//! operations), `data` (read/write), `path` (path resolution and open),
//! `check` (invariants), `sync` (the lock types), `errno`.
//!
//! Not done yet: permission checks (`EACCES`; the caller's identity is not
//! part of the API), byte-range/whole-file locks, recovery of a dead
//! worker's locks, xattrs.

mod check;
mod data;
mod dir;
mod errno;
mod file;
mod fs;
mod inode;
mod names;
mod namespace;
mod path;
mod space;
mod sync;
mod types;

pub use errno::{Errno, Result};
pub use fs::FileSystem;
pub use names::{NAME_MAX, PATH_MAX};
pub use path::MAX_SYMLINK_HOPS;
pub use types::*;

/// Size of a data block: the unit of allocation and of `Attr::blocks * 512 / BLOCK_SIZE`.
pub const BLOCK_SIZE: usize = space::BLOCK_SIZE;

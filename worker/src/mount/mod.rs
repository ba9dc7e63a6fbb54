//! The mount's rules: what PHP's system calls on the shared-fs mount mean,
//! decided here so they are tested natively against real shared-fs
//! instances. The Emscripten mount adapter (`src-js/shared-fs-mount.js`)
//! only forwards: it hands over what Emscripten gives it (a descriptor's
//! position, the bytes of a `struct flock`, a path) through the exports in
//! `fs_calls.rs` and writes back what comes out.
//!
//! Every function takes the `&FileSystem` it works on and, where a rule
//! needs to remember something per worker (the flock descriptions it holds,
//! its open descriptors, the listings its directory streams took), that
//! worker's state as a plain value: `fs_calls.rs` keeps one of each in a
//! thread-local (thread-locals are per worker), a test makes as many
//! "workers" as it likes.

pub mod fcntl;
pub mod flock;
pub mod getdents;
pub mod paths;

#[cfg(test)]
pub(crate) fn test_fs() -> shared_fs::FileSystem {
    shared_fs::FileSystem::new(shared_fs::Config {
        initial_bytes: 1 << 20,
        max_bytes: 16 << 20,
        clock: shared_fs::Timespec::default,
    })
    .unwrap()
}

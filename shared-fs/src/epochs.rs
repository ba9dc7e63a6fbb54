//! Change epochs: counters that per-process caches of what the filesystem
//! holds compare to know when they may have gone stale. Each moves after the
//! change it counts is visible.
//!
//! The mtime-reuse epoch is for caches that validate a path by its mtime in
//! whole seconds (PHP's OPcache with `validate_timestamps`). Such a cache can only be fooled when a path comes to name different bytes
//! under an mtime it already showed. A write cannot do that: it stamps the
//! current time, and a cache that refuses files modified within the last two
//! seconds (OPcache's `file_update_protection=2`) only ever holds mtimes at
//! least two seconds old. What can do it: a rename or a new link that puts an
//! older file, a directory or a symlink at the path, and an mtime set
//! explicitly into the past (`touch -d`, an unpacked archive). Each of those
//! bumps the epoch; a cache that sees the epoch move drops everything.
//!
//! The names epoch is for caches of path resolutions (PHP's realpath cache):
//! it moves whenever a name stops naming what it named (unlink, rmdir,
//! rename). A resolution cannot go stale otherwise: such caches keep only
//! paths that resolved, and a new name does not change an old resolution.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::fs::FileSystem;
use crate::types::{FileKind, Timespec};

#[derive(Default)]
pub(crate) struct Epochs {
    mtime_reuse: AtomicU64,
    names: AtomicU64,
}

/// The protection the mtime-reuse epoch assumes of a cache: it keeps no file
/// modified in the last this many seconds (OPcache's `file_update_protection`).
pub const CACHE_UPDATE_PROTECTION_SECS: i64 = 2;

/// An mtime this recent cannot equal one such a cache holds (those are at
/// least `CACHE_UPDATE_PROTECTION_SECS` old).
fn is_recent(mtime: Timespec, now: Timespec) -> bool {
    mtime.sec > now.sec - CACHE_UPDATE_PROTECTION_SECS
}

impl FileSystem {
    /// Moves whenever a path may have come to name other bytes under an
    /// mtime (in whole seconds) it showed before; see the module docs.
    pub fn mtime_reuse_epoch(&self) -> u64 {
        self.epochs.mtime_reuse.load(Ordering::Acquire)
    }

    /// Moves whenever a name stops naming what it named; see the module docs.
    pub fn names_epoch(&self) -> u64 {
        self.epochs.names.load(Ordering::Acquire)
    }

    pub(crate) fn note_name_removed(&self) {
        self.epochs.names.fetch_add(1, Ordering::AcqRel);
    }

    /// Called after a rename or link put an inode of `kind` with `mtime` at a
    /// path, or after `mtime` was set explicitly.
    pub(crate) fn note_mtime_placed(&self, kind: FileKind, mtime: Timespec) {
        if kind != FileKind::File || !is_recent(mtime, self.now()) {
            self.epochs.mtime_reuse.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::types::{Config, SetAttr, Timespec};
    use crate::FileSystem;

    fn fs() -> FileSystem {
        FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 1 << 22, clock: || Timespec { sec: 1_000, nsec: 0 } })
            .unwrap()
    }

    fn file(fs: &FileSystem, name: &str) -> u64 {
        let attr = fs.create(FileSystem::ROOT, name.as_bytes(), 0o644, 0, 0).unwrap();
        fs.write(attr.ino, 0, b"<?php echo 1;").unwrap();
        attr.ino
    }

    fn backdate(fs: &FileSystem, ino: u64, sec: i64) {
        fs.setattr(ino, &SetAttr { mtime: Some(Timespec { sec, nsec: 0 }), ..Default::default() }).unwrap();
    }

    #[test]
    fn writes_creates_and_unlinks_leave_it_alone() {
        let fs = fs();
        let ino = file(&fs, "a.php");
        fs.write(ino, 0, b"<?php echo 2;").unwrap();
        fs.setattr(ino, &SetAttr { size: Some(3), ..Default::default() }).unwrap();
        fs.unlink(FileSystem::ROOT, b"a.php").unwrap();
        assert_eq!(fs.mtime_reuse_epoch(), 0);
    }

    #[test]
    fn an_mtime_set_into_the_past_moves_it_and_a_recent_one_does_not() {
        let fs = fs();
        let ino = file(&fs, "a.php");
        backdate(&fs, ino, 999);
        assert_eq!(fs.mtime_reuse_epoch(), 0, "within a second of now");
        backdate(&fs, ino, 998);
        assert_eq!(fs.mtime_reuse_epoch(), 1);
    }

    #[test]
    fn renaming_an_old_file_over_a_path_moves_it_and_a_fresh_one_does_not() {
        let fs = fs();
        file(&fs, "a.php");
        file(&fs, "fresh.tmp");
        fs.rename(FileSystem::ROOT, b"fresh.tmp", FileSystem::ROOT, b"a.php").unwrap();
        assert_eq!(fs.mtime_reuse_epoch(), 0, "write-to-temp then rename is caught by the mtime");
        let old = file(&fs, "old.tmp");
        backdate(&fs, old, 10);
        let before = fs.mtime_reuse_epoch();
        fs.rename(FileSystem::ROOT, b"old.tmp", FileSystem::ROOT, b"a.php").unwrap();
        assert_eq!(fs.mtime_reuse_epoch(), before + 1);
    }

    #[test]
    fn renaming_a_directory_moves_it() {
        let fs = fs();
        fs.mkdir(FileSystem::ROOT, b"plugin-new", 0o755, 0, 0).unwrap();
        fs.rename(FileSystem::ROOT, b"plugin-new", FileSystem::ROOT, b"plugin").unwrap();
        assert_eq!(fs.mtime_reuse_epoch(), 1);
    }

    #[test]
    fn removing_or_replacing_a_name_moves_the_names_epoch_and_creating_one_does_not() {
        let fs = fs();
        file(&fs, "a.php");
        fs.mkdir(FileSystem::ROOT, b"d", 0o755, 0, 0).unwrap();
        fs.symlink(FileSystem::ROOT, b"l", b"a.php", 0, 0).unwrap();
        assert_eq!(fs.names_epoch(), 0);
        fs.rename(FileSystem::ROOT, b"a.php", FileSystem::ROOT, b"b.php").unwrap();
        assert_eq!(fs.names_epoch(), 1);
        fs.unlink(FileSystem::ROOT, b"l").unwrap();
        assert_eq!(fs.names_epoch(), 2);
        fs.rmdir(FileSystem::ROOT, b"d").unwrap();
        assert_eq!(fs.names_epoch(), 3);
        assert!(fs.unlink(FileSystem::ROOT, b"missing").is_err());
        assert_eq!(fs.names_epoch(), 3, "a failed unlink changes nothing");
    }

    #[test]
    fn linking_an_old_file_moves_it() {
        let fs = fs();
        let ino = file(&fs, "a.php");
        backdate(&fs, ino, 10);
        let before = fs.mtime_reuse_epoch();
        fs.link(ino, FileSystem::ROOT, b"b.php").unwrap();
        assert_eq!(fs.mtime_reuse_epoch(), before + 1);
    }
}

//! The filesystem object: construction, attributes, pinning, accounting,
//! and the lock-ordering helpers shared by all operations.
//!
//! Lock order (a thread only ever acquires in this order):
//! 0. the persistence gate (`persist`), shared by every mutating operation
//!    from its start, exclusive only for a save's cut.
//! 1. `rename_lock` — only for renames that move a directory to another
//!    directory (Linux's `s_vfs_rename_mutex`): it freezes the shape of the
//!    directory tree so "is the target inside the source?" stays true.
//! 2. inode state locks, in ascending `Ino`. An operation that needs several
//!    looks the inodes up first, then locks them all at once in that order
//!    (`Locked`), then re-validates the names it looked up and retries if
//!    something moved in between.
//! 3. leaf locks, under which nothing else is locked: an inode's atime
//!    mutex, inode-table shards, the space allocator.

use std::sync::Arc;

use crate::errno::{Errno, Result};
use crate::inode::{Body, Inode, InodeTable, State};
use crate::dir::Dir;
use crate::file::MAX_FILE_SIZE;
use crate::journal::{Op, Plan};
use crate::locks::LockManager;
use crate::names::NAME_MAX;
use crate::space::{Space, BLOCK_SIZE};
use crate::sync::{Mutex, RwLockWriteGuard};
use crate::types::*;

/// Give up re-validating after this many lost races (never seen in practice;
/// it bounds the loop instead of spinning forever).
pub(crate) const RETRY_LIMIT: usize = 10_000;

pub struct FileSystem {
    pub(crate) table: InodeTable,
    pub(crate) space: Space,
    pub(crate) clock: fn() -> Timespec,
    pub(crate) rename_lock: Mutex<()>,
    pub(crate) locks: LockManager,
    pub(crate) epochs: crate::epochs::Epochs,
    pub(crate) tracker: crate::persist::Tracker,
}

impl FileSystem {
    pub const ROOT: Ino = 1;

    /// Obtains `initial_bytes` of data space and creates the root directory
    /// (mode 0o755, owned by 0:0).
    pub fn new(config: Config) -> Result<FileSystem> {
        if config.initial_bytes > config.max_bytes {
            return Err(Errno::EINVAL);
        }
        let fs = FileSystem {
            table: InodeTable::new(Self::ROOT + 1),
            space: Space::new(config.initial_bytes, config.max_bytes)?,
            clock: config.clock,
            rename_lock: Mutex::new(()),
            locks: LockManager::new(),
            epochs: Default::default(),
            tracker: Default::default(),
        };
        let now = fs.now();
        let root = State::new(S_IFDIR | 0o755, 0, 0, 2, now, Body::Dir(Dir::default()));
        fs.table.insert(Arc::new(Inode::new(Self::ROOT, Self::ROOT, now, root)));
        Ok(fs)
    }

    pub(crate) fn now(&self) -> Timespec {
        (self.clock)()
    }

    /// The live inode `ino`, or `ENOENT` (also for numbers never handed out).
    pub(crate) fn inode(&self, ino: Ino) -> Result<Arc<Inode>> {
        self.table.get(ino)
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr> {
        let inode = self.inode(ino)?;
        let st = inode.state.read();
        if st.dead {
            return Err(Errno::ENOENT);
        }
        Ok(inode.attr(&st))
    }

    /// Changes the given fields; `ctime` becomes now if anything changed.
    /// Changing uid/gid of a non-directory clears set-user-ID, and
    /// set-group-ID when group-execute is set (as Linux does even for root).
    /// No permission checks: the caller's identity is not known here.
    pub fn setattr(&self, ino: Ino, set: &SetAttr) -> Result<Attr> {
        let _saving = self.persist_enter();
        let inode = self.inode(ino)?;
        let mut st = inode.state.write();
        if st.dead {
            return Err(Errno::ENOENT);
        }
        self.mark(ino, None);
        let now = self.now();
        let mut changed = false;
        if let Some(size) = set.size {
            match &st.body {
                Body::File(_) if size > MAX_FILE_SIZE => return Err(Errno::EFBIG),
                Body::File(_) => {}
                Body::Dir(_) => return Err(Errno::EISDIR),
                Body::Symlink(_) | Body::Special(_) => return Err(Errno::EINVAL),
            }
            self.step(Op::Truncate, 0);
            let _journal = self.journal_begin(Op::Truncate, 0, core::slice::from_ref(&inode), || Plan::Truncate { size, detached: Vec::new() });
            // Once journaled: from here a repair finishes this truncate.
            if let Body::File(file) = &st.body {
                if size < file.size {
                    self.mark_cut(ino, size);
                }
            }
            // Steps 1..=5; POSIX truncate marks both times even when the size stays.
            self.truncate_commit(&mut st, size, &mut Vec::new(), 1, now);
            changed = true;
        }
        if set.uid.is_some() || set.gid.is_some() {
            if let Some(uid) = set.uid {
                st.uid = uid;
            }
            if let Some(gid) = set.gid {
                st.gid = gid;
            }
            if inode.kind != FileKind::Dir {
                let kill_sgid = if st.mode & S_IXGRP != 0 { S_ISGID } else { 0 };
                st.mode &= !(S_ISUID | kill_sgid);
            }
            changed = true;
        }
        if let Some(mode) = set.mode {
            st.mode = (st.mode & S_IFMT) | (mode & MODE_PERM_MASK);
            changed = true;
        }
        if let Some(atime) = set.atime {
            inode.set_atime(atime);
            changed = true;
        }
        if let Some(mtime) = set.mtime {
            st.mtime = mtime;
            changed = true;
            self.note_mtime_placed(inode.kind, mtime);
        }
        if changed {
            st.ctime = now;
        }
        Ok(inode.attr(&st))
    }

    /// Pins `ino`: its data outlives unlinking until the matching `release`.
    pub fn open(&self, ino: Ino) -> Result<()> {
        let inode = self.inode(ino)?;
        let mut st = inode.state.write();
        if st.dead {
            return Err(Errno::ENOENT);
        }
        st.opens = st.opens.checked_add(1).ok_or(Errno::ENFILE)?;
        Ok(())
    }

    /// Drops one pin; an unlinked inode is destroyed with its last pin.
    /// Releasing an inode that is not open is ignored.
    pub fn release(&self, ino: Ino) {
        if let Ok(inode) = self.inode(ino) {
            let mut st = inode.state.write();
            st.opens = st.opens.saturating_sub(1);
            self.destroy_if_unused(ino, &mut st);
        }
    }

    /// Frees an inode that has neither names nor pins. Called with its write lock held.
    pub(crate) fn destroy_if_unused(&self, ino: Ino, st: &mut State) {
        if st.nlink > 0 || st.opens > 0 || st.dead {
            return;
        }
        st.dead = true;
        match &mut st.body {
            Body::File(file) => file.free_all(&self.space),
            Body::Symlink(target) => *target = Box::default(),
            Body::Dir(_) | Body::Special(_) => {}
        }
        self.table.remove(ino);
    }

    /// Capacity is counted in data blocks; free blocks are the bytes not in
    /// allocated sectors, in blocks (an estimate: free sectors inside blocks
    /// carved into fragments only hold fragments). `files_free` is an
    /// estimate too (an inode costs no data, a file with content a sector
    /// or more).
    pub fn statfs(&self) -> StatFs {
        let usage = self.space.usage();
        let block = BLOCK_SIZE as u64;
        let free_blocks = usage.max.saturating_sub(usage.used) / block;
        StatFs {
            block_size: BLOCK_SIZE as u32,
            blocks: usage.max / block,
            blocks_free: free_blocks,
            files: self.table.live() + free_blocks,
            files_free: free_blocks,
            name_max: NAME_MAX as u32,
        }
    }

    /// Grows the space once, now, for files of these sizes about to be
    /// written (a site being unpacked), instead of step by step with a
    /// growth step's slack at the end. Whole blocks plus each tail's
    /// sectors, and 1/64 more for tails that do not pack perfectly into
    /// shared blocks. `ENOSPC` if they cannot fit.
    pub fn reserve_for_files(&self, sizes: impl IntoIterator<Item = u64>) -> Result<()> {
        use crate::space::SECTOR;
        let block = BLOCK_SIZE as u64;
        let bytes: u64 = sizes.into_iter().map(|size| size / block * block + (size % block).next_multiple_of(SECTOR as u64)).sum();
        let bytes = bytes.saturating_add(bytes / 64);
        self.space.reserve(usize::try_from(bytes).map_err(|_| Errno::ENOSPC)?)
    }

    pub fn stats(&self) -> Stats {
        let usage = self.space.usage();
        Stats {
            capacity: usage.capacity,
            used: usage.used,
            high_water: usage.high_water,
            max: usage.max,
            inodes: self.table.live(),
            contention: crate::sync::contention(),
        }
    }
}

/// Write locks on a set of inodes, taken in ascending `Ino` order.
pub(crate) struct Locked<'a> {
    slots: Vec<(Ino, RwLockWriteGuard<'a, State>)>,
}

impl<'a> Locked<'a> {
    /// `inodes` must come from `lock_order`.
    pub(crate) fn new(inodes: &'a [Arc<Inode>]) -> Locked<'a> {
        Locked { slots: inodes.iter().map(|i| (i.ino, i.state.write())).collect() }
    }

    /// Write locks taken over from a dead owner (see `journal.rs`).
    pub(crate) fn from_guards(slots: Vec<(Ino, RwLockWriteGuard<'a, State>)>) -> Locked<'a> {
        Locked { slots }
    }

    pub(crate) fn get(&mut self, ino: Ino) -> Result<&mut State> {
        // Not finding it would be a bug in the caller; report, don't panic.
        self.slots.iter_mut().find(|(i, _)| *i == ino).map(|(_, g)| &mut **g).ok_or(Errno::EIO)
    }
}

/// Sorts and de-duplicates inodes into the global lock order.
pub(crate) fn lock_order(mut inodes: Vec<Arc<Inode>>) -> Vec<Arc<Inode>> {
    inodes.sort_by_key(|i| i.ino);
    inodes.dedup_by_key(|i| i.ino);
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn filesystem_is_send_and_sync() {
        assert_send_sync::<FileSystem>();
    }
}

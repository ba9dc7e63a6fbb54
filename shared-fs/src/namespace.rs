//! Operations on names: lookup, creation, links, removal, rename, readdir.
//!
//! Each operation looks up the inodes it needs, locks them all in `Ino`
//! order (see `fs.rs`), re-validates what it looked up and retries if a
//! concurrent operation changed it in between.

use std::sync::Arc;

use crate::dir::{Dir, DOTDOT_COOKIE, DOT_COOKIE};
use crate::errno::{Errno, Result};
use crate::file::FileData;
use crate::fs::{lock_order, FileSystem, Locked, RETRY_LIMIT};
use crate::inode::{Body, Inode, State};
use crate::journal::{Op, Plan, RenamePlan};
use crate::names::{check_component, is_dot_or_dotdot};
use crate::types::*;

/// Entries gathered per directory lock hold in `readdir`; the callback runs
/// with no lock held, so it may call back into the filesystem.
const READDIR_BATCH: usize = 64;

/// Deepest directory tree the rename ancestry walk accepts.
const MAX_DEPTH: usize = 1 << 20;

impl FileSystem {
    /// Finds `name` in directory `parent`; "." and ".." are understood.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr> {
        check_component(name)?;
        let dir = self.dir_inode(parent)?;
        for _ in 0..RETRY_LIMIT {
            let child = match name {
                b"." => parent,
                b".." => dir.parent(),
                _ => self.entry(&dir, name)?.ino,
            };
            // Not under the directory lock (that would break the lock order);
            // if the child died meanwhile (e.g. replaced by a rename), the
            // name now means something else: look again.
            match self.getattr(child) {
                Err(Errno::ENOENT) if !is_dot_or_dotdot(name) => continue,
                other => return other,
            }
        }
        Err(Errno::EAGAIN)
    }

    /// Creates a regular file; `EEXIST` if the name exists (even as a dangling symlink).
    pub fn create(&self, parent: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.make_node(parent, name, S_IFREG | (mode & MODE_PERM_MASK), uid, gid, Body::File(FileData::default()))
    }

    pub fn mkdir(&self, parent: Ino, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.make_node(parent, name, S_IFDIR | (mode & MODE_PERM_MASK), uid, gid, Body::Dir(Dir::default()))
    }

    /// Creates a node of the kind given by the `S_IFMT` bits of `mode`
    /// (regular file if none, as Linux): a regular file, or a fifo, socket
    /// or device that stores `rdev`. Directories and symlinks have their own
    /// calls (`EINVAL` here).
    pub fn mknod(&self, parent: Ino, name: &[u8], mode: u32, rdev: u64, uid: u32, gid: u32) -> Result<Attr> {
        let perm = mode & MODE_PERM_MASK;
        match FileKind::from_mode(if mode & S_IFMT == 0 { S_IFREG } else { mode }) {
            Some(FileKind::File) => self.create(parent, name, perm, uid, gid),
            Some(kind @ (FileKind::Fifo | FileKind::Socket | FileKind::CharDev | FileKind::BlockDev)) => {
                let rdev = if matches!(kind, FileKind::CharDev | FileKind::BlockDev) { rdev } else { 0 };
                self.make_node(parent, name, kind.mode_bits() | perm, uid, gid, Body::Special(rdev))
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Creates a symlink (mode 0o777); the target is stored as given, up to
    /// `PATH_MAX - 1` bytes, and must not be empty.
    pub fn symlink(&self, parent: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> Result<Attr> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= crate::names::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.make_node(parent, name, S_IFLNK | 0o777, uid, gid, Body::Symlink(target.into()))
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        let st = inode.state.read();
        match &st.body {
            _ if st.dead => Err(Errno::ENOENT),
            Body::Symlink(target) => {
                inode.touch_atime(&st, self.now());
                Ok(target.to_vec())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn make_node(&self, parent: Ino, name: &[u8], mode: u32, uid: u32, gid: u32, body: Body) -> Result<Attr> {
        check_new_name(name)?;
        let _saving = self.persist_enter();
        let dir_inode = self.dir_inode(parent)?;
        let is_dir = matches!(body, Body::Dir(_));
        let mut dir_st = dir_inode.state.write();
        let dir = dir_st.linked_dir()?;
        if dir.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if is_dir && dir_st.nlink == u32::MAX {
            return Err(Errno::EMLINK);
        }
        self.step(Op::Create, 0);
        let now = self.now();
        // The new Ino is larger than any existing one, so holding the
        // parent's lock while touching the new inode respects the lock order.
        let ino = self.table.next_ino();
        self.mark(parent, None);
        self.mark(ino, None);
        let inode = Arc::new(Inode::new(ino, parent, now, State::new(mode, uid, gid, if is_dir { 2 } else { 1 }, now, body)));
        let attr = inode.attr(&inode.state.read());
        let _journal = self.journal_begin(Op::Create, 1, core::slice::from_ref(&dir_inode), || Plan::Create { name: name.into(), inode: inode.clone() });
        self.step(Op::Create, 1);
        self.create_commit(&mut dir_st, name, &inode, 2, now);
        Ok(attr)
    }

    /// Steps `from..=4` of `Op::Create`; also completes a dead owner's create.
    pub(crate) fn create_commit(&self, dir_st: &mut State, name: &[u8], inode: &Arc<Inode>, from: usize, now: Timespec) {
        for step in from..=4 {
            match step {
                2 => self.table.insert(inode.clone()),
                3 => {
                    if let Ok(dir) = dir_st.linked_dir() {
                        dir.insert(name, inode.ino, inode.kind);
                    }
                }
                4 => {
                    if inode.kind == FileKind::Dir {
                        dir_st.nlink += 1;
                    }
                    dir_st.touch_modified(now);
                }
                _ => {}
            }
            self.step(Op::Create, step);
        }
    }

    /// Adds the name `new_name` in `new_parent` for the non-directory `ino`.
    pub fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> Result<Attr> {
        check_new_name(new_name)?;
        let _saving = self.persist_enter();
        let target = self.inode(ino)?;
        let dir = self.dir_inode(new_parent)?;
        let set = lock_order(vec![target.clone(), dir]);
        let mut locked = Locked::new(&set);
        let dir_st = locked.get(new_parent)?;
        if dir_st.linked_dir()?.get(new_name).is_some() {
            return Err(Errno::EEXIST);
        }
        // After EEXIST, as Linux (the new name is checked before the inode).
        if target.kind == FileKind::Dir {
            return Err(Errno::EPERM);
        }
        let st = locked.get(ino)?;
        if st.dead || st.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        st.nlink = st.nlink.checked_add(1).ok_or(Errno::EMLINK)?;
        self.mark(ino, None);
        self.mark(new_parent, None);
        let now = self.now();
        st.ctime = now;
        let attr = target.attr(st);
        let dir_st = locked.get(new_parent)?;
        dir_st.linked_dir()?.insert(new_name, ino, target.kind);
        dir_st.touch_modified(now);
        self.note_mtime_placed(target.kind, attr.mtime);
        Ok(attr)
    }

    /// Removes a non-directory name; the inode lives on while it is open.
    pub fn unlink(&self, parent: Ino, name: &[u8]) -> Result<()> {
        check_component(name)?;
        if is_dot_or_dotdot(name) {
            return Err(Errno::EISDIR);
        }
        self.remove_name(parent, name, false)
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<()> {
        check_component(name)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.remove_name(parent, name, true)
    }

    fn remove_name(&self, parent: Ino, name: &[u8], want_dir: bool) -> Result<()> {
        let _saving = self.persist_enter();
        let dir = self.dir_inode(parent)?;
        for _ in 0..RETRY_LIMIT {
            let entry = self.entry(&dir, name)?;
            match (want_dir, entry.kind == FileKind::Dir) {
                (false, true) => return Err(Errno::EISDIR),
                (true, false) => return Err(Errno::ENOTDIR),
                _ => {}
            }
            let Ok(child) = self.inode(entry.ino) else { continue };
            let set = lock_order(vec![dir.clone(), child]);
            let mut locked = Locked::new(&set);
            let dir_st = locked.get(parent)?;
            if dir_st.linked_dir()?.get(name).map(|e| e.ino) != Some(entry.ino) {
                continue; // renamed or replaced meanwhile
            }
            let child_st = locked.get(entry.ino)?;
            if want_dir && !child_st.dir()?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            let now = self.now();
            self.mark(parent, None);
            self.mark(entry.ino, None);
            self.step(Op::Unlink, 0);
            let _journal = self.journal_begin(Op::Unlink, 0, &set, || Plan::Unlink { parent, name: name.into(), child: entry.ino, want_dir });
            return self.unlink_commit(&mut locked, parent, name, entry.ino, want_dir, 1, now);
        }
        Err(Errno::EAGAIN)
    }

    /// Steps `from..=4` of `Op::Unlink` (name first, so a half-done unlink
    /// is completed, never undone); also completes a dead owner's unlink.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn unlink_commit(&self, locked: &mut Locked<'_>, parent: Ino, name: &[u8], child: Ino, want_dir: bool, from: usize, now: Timespec) -> Result<()> {
        for step in from..=4 {
            match step {
                1 => {
                    locked.get(parent)?.linked_dir()?.remove(name);
                }
                2 => {
                    let child_st = locked.get(child)?;
                    child_st.nlink = if want_dir { 0 } else { child_st.nlink.saturating_sub(1) };
                    child_st.ctime = now;
                }
                3 => self.destroy_if_unused(child, locked.get(child)?),
                4 => {
                    let dir_st = locked.get(parent)?;
                    if want_dir {
                        dir_st.nlink = dir_st.nlink.saturating_sub(1);
                    }
                    dir_st.touch_modified(now);
                }
                _ => {}
            }
            self.step(Op::Unlink, step);
        }
        self.note_name_removed();
        Ok(())
    }

    /// Atomically moves `parent/name` to `new_parent/new_name`, replacing a
    /// non-directory or an empty directory there.
    pub fn rename(&self, parent: Ino, name: &[u8], new_parent: Ino, new_name: &[u8]) -> Result<()> {
        self.rename2(parent, name, new_parent, new_name, 0)
    }

    /// `renameat2`: `flags` may hold `RENAME_NOREPLACE` (fail with `EEXIST`
    /// if the new name exists, checked atomically under the locks); any
    /// other flag, `RENAME_EXCHANGE` included, is `EINVAL` (not supported).
    pub fn rename2(&self, parent: Ino, name: &[u8], new_parent: Ino, new_name: &[u8], flags: u32) -> Result<()> {
        if flags & !RENAME_NOREPLACE != 0 {
            return Err(Errno::EINVAL);
        }
        let noreplace = flags & RENAME_NOREPLACE != 0;
        check_component(name)?;
        check_component(new_name)?;
        if is_dot_or_dotdot(name) || is_dot_or_dotdot(new_name) {
            return Err(Errno::EBUSY);
        }
        let _saving = self.persist_enter();
        let old_dir = self.dir_inode(parent)?;
        let new_dir = self.dir_inode(new_parent)?;
        for _ in 0..RETRY_LIMIT {
            let src = self.entry(&old_dir, name)?;
            let Ok(src_inode) = self.inode(src.ino) else { continue };
            let moves_dir = src.kind == FileKind::Dir && parent != new_parent;
            // Held to the end: no other directory can change parents, so
            // the ancestry walk below stays true until we are done.
            let _tree_frozen = if moves_dir { Some(self.rename_lock.lock()) } else { None };
            if moves_dir {
                self.check_not_ancestor(src.ino, new_parent)?;
            }
            let dst = match self.entry(&new_dir, new_name) {
                Ok(e) => Some(e),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            };
            let mut set = vec![old_dir.clone(), new_dir.clone(), src_inode.clone()];
            if let Some(d) = dst {
                match self.inode(d.ino) {
                    Ok(i) => set.push(i),
                    Err(_) => continue,
                }
            }
            let set = lock_order(set);
            let mut locked = Locked::new(&set);
            // Re-validate both names under the locks.
            if locked.get(parent)?.linked_dir()?.get(name) != Some(src) {
                continue;
            }
            if locked.get(new_parent)?.linked_dir()?.get(new_name) != dst {
                continue;
            }
            if let Some(d) = dst {
                if noreplace {
                    return Err(Errno::EEXIST);
                }
                if d.ino == src.ino {
                    return Ok(()); // two names of one inode: POSIX says do nothing
                }
                match (src.kind == FileKind::Dir, d.kind == FileKind::Dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    // A directory containing the source is "not empty"
                    // before it is "a directory" (Linux checks ancestry first).
                    (false, true) if self.check_not_ancestor(d.ino, parent).is_err() => return Err(Errno::ENOTEMPTY),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !locked.get(d.ino)?.dir()?.is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
            let now = self.now();
            // All checks passed; from here on nothing can fail half-way.
            for ino in [parent, new_parent, src.ino].into_iter().chain(dst.map(|d| d.ino)) {
                self.mark(ino, None);
            }
            self.step(Op::Rename, 0);
            let plan = RenamePlan {
                parent,
                name: name.into(),
                new_parent,
                new_name: new_name.into(),
                src,
                dst,
                moves_dir,
                src_inode: src_inode.clone(),
            };
            let _journal = self.journal_begin(Op::Rename, 0, &set, || Plan::Rename(plan.clone()));
            return self.rename_commit(&mut locked, &plan, 1, now);
        }
        Err(Errno::EAGAIN)
    }

    /// Steps `from..=6` of `Op::Rename`; also completes a dead owner's rename.
    pub(crate) fn rename_commit(&self, locked: &mut Locked<'_>, p: &RenamePlan, from: usize, now: Timespec) -> Result<()> {
        for step in from..=6 {
            match (step, p.dst) {
                (1, _) => {
                    locked.get(p.parent)?.linked_dir()?.remove(&p.name);
                }
                (2, Some(d)) => {
                    let new_st = locked.get(p.new_parent)?;
                    new_st.linked_dir()?.remove(&p.new_name);
                    if d.kind == FileKind::Dir {
                        new_st.nlink = new_st.nlink.saturating_sub(1);
                    }
                    let dst_st = locked.get(d.ino)?;
                    dst_st.nlink = if d.kind == FileKind::Dir { 0 } else { dst_st.nlink.saturating_sub(1) };
                    dst_st.ctime = now;
                }
                (3, Some(d)) => self.destroy_if_unused(d.ino, locked.get(d.ino)?),
                (4, _) => locked.get(p.new_parent)?.linked_dir()?.insert(&p.new_name, p.src.ino, p.src.kind),
                (5, _) if p.moves_dir => {
                    let old_st = locked.get(p.parent)?;
                    old_st.nlink = old_st.nlink.saturating_sub(1);
                    let new_st = locked.get(p.new_parent)?;
                    new_st.nlink = new_st.nlink.saturating_add(1);
                    p.src_inode.set_parent(p.new_parent);
                }
                (6, _) => {
                    locked.get(p.src.ino)?.ctime = now;
                    locked.get(p.parent)?.touch_modified(now);
                    locked.get(p.new_parent)?.touch_modified(now);
                }
                _ => {}
            }
            self.step(Op::Rename, step);
        }
        // Now that the new name is visible (a dead owner's rename completes here too).
        self.note_name_removed();
        self.note_mtime_placed(p.src.kind, locked.get(p.src.ino)?.mtime);
        Ok(())
    }

    /// `EINVAL` if `dir` is `start` or one of its ancestors. Caller holds the rename lock.
    fn check_not_ancestor(&self, dir: Ino, start: Ino) -> Result<()> {
        let mut cur = start;
        for _ in 0..MAX_DEPTH {
            if cur == dir {
                return Err(Errno::EINVAL);
            }
            if cur == Self::ROOT {
                return Ok(());
            }
            cur = self.inode(cur)?.parent();
        }
        Err(Errno::ELOOP)
    }

    /// Calls `f` for each entry after `after_cookie` (0 = from the start,
    /// "." and ".." first) until it returns false. A removed directory
    /// lists nothing. See `dir.rs` for why this is safe under concurrent changes.
    pub fn readdir(&self, dir: Ino, after_cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> Result<()> {
        let inode = self.dir_inode(dir)?;
        let mut cursor = after_cookie;
        let mut batch = Vec::with_capacity(READDIR_BATCH);
        loop {
            {
                let st = inode.state.read();
                if st.dead {
                    return Err(Errno::ENOENT);
                }
                if st.nlink == 0 {
                    return Ok(());
                }
                if cursor < DOT_COOKIE {
                    batch.push(DirEntry { ino: dir, kind: FileKind::Dir, name: b".".to_vec(), cookie: DOT_COOKIE });
                }
                if cursor < DOTDOT_COOKIE {
                    batch.push(DirEntry { ino: inode.parent(), kind: FileKind::Dir, name: b"..".to_vec(), cookie: DOTDOT_COOKIE });
                }
                let room = READDIR_BATCH - batch.len();
                batch.extend(st.dir()?.after(cursor).take(room).map(|(name, e)| DirEntry {
                    ino: e.ino,
                    kind: e.kind,
                    name: name.to_vec(),
                    cookie: e.cookie,
                }));
                if cursor == after_cookie {
                    inode.touch_atime(&st, self.now());
                }
            }
            let full = batch.len() == READDIR_BATCH;
            for entry in batch.drain(..) {
                cursor = entry.cookie;
                if !f(entry) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// The directory inode `ino`: `ENOENT` if gone, `ENOTDIR` if not a directory.
    pub(crate) fn dir_inode(&self, ino: Ino) -> Result<Arc<Inode>> {
        let inode = self.inode(ino)?;
        if inode.kind != FileKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(inode)
    }

    /// Looks `name` up under a short read lock on the directory.
    fn entry(&self, dir: &Inode, name: &[u8]) -> Result<crate::dir::Entry> {
        let st = dir.state.read();
        if st.dead || st.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        st.dir()?.get(name).ok_or(Errno::ENOENT)
    }
}

/// A name that is about to be created: "." and ".." always exist.
fn check_new_name(name: &[u8]) -> Result<()> {
    check_component(name)?;
    if is_dot_or_dotdot(name) {
        return Err(Errno::EEXIST);
    }
    Ok(())
}

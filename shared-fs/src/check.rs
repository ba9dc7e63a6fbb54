//! The structural invariant checker.

use std::collections::{BTreeMap, BTreeSet};

use crate::fs::FileSystem;
use crate::inode::Body;
use crate::types::{FileKind, Ino, S_IFMT};

impl FileSystem {
    /// Verifies every structural invariant: link counts (files: number of
    /// names; directories: 2 + subdirectories), each directory named exactly
    /// once by the directory its ".." points to, every linked inode reachable
    /// from the root, entries pointing at live inodes of the right kind,
    /// readdir cookie maps, no data past EOF, and that the blocks owned by
    /// files plus the free list partition the obtained space exactly.
    ///
    /// Inodes are locked one at a time, so the answer is exact only when no
    /// operation runs concurrently (call it at quiescent points).
    pub fn check(&self) -> core::result::Result<(), String> {
        let inodes = self.table.snapshot();
        if inodes.len() as u64 != self.table.live() {
            return Err(format!("table holds {} inodes, counter says {}", inodes.len(), self.table.live()));
        }
        let by_ino: BTreeMap<Ino, FileKind> = inodes.iter().map(|i| (i.ino, i.kind)).collect();
        if by_ino.get(&Self::ROOT) != Some(&FileKind::Dir) {
            return Err("root directory missing".into());
        }
        let mut names: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut named_in: BTreeMap<Ino, Ino> = BTreeMap::new(); // directory -> its containing dir
        let mut subdirs_of: BTreeMap<Ino, Vec<Ino>> = BTreeMap::new();
        let mut owned_blocks = Vec::new();

        for inode in &inodes {
            let ino = inode.ino;
            let st = inode.state.read();
            let fail = |what: String| Err(format!("inode {ino} ({:?}): {what}", inode.kind));
            if st.dead {
                return fail("destroyed but still in the table".into());
            }
            if st.mode & S_IFMT != inode.kind.mode_bits() {
                return fail(format!("mode {:o} has wrong type bits", st.mode));
            }
            if st.nlink == 0 && st.opens == 0 {
                return fail("neither linked nor open, yet not destroyed".into());
            }
            match &st.body {
                Body::File(file) => {
                    file.verify().or_else(fail)?;
                    owned_blocks.extend(file.blocks());
                }
                Body::Symlink(target) if target.is_empty() => return fail("empty symlink target".into()),
                Body::Symlink(_) | Body::Special(_) => {}
                Body::Dir(dir) => {
                    dir.verify().or_else(fail)?;
                    if st.nlink == 0 && !dir.is_empty() {
                        return fail("removed directory still has entries".into());
                    }
                    let mut subdirs = Vec::new();
                    for (name, entry) in dir.after(0) {
                        *names.entry(entry.ino).or_default() += 1;
                        if by_ino.get(&entry.ino) != Some(&entry.kind) {
                            return fail(format!("entry {:?} -> {} is dangling or of the wrong kind", String::from_utf8_lossy(name), entry.ino));
                        }
                        if entry.kind == FileKind::Dir {
                            subdirs.push(entry.ino);
                            if named_in.insert(entry.ino, ino).is_some() {
                                return Err(format!("directory {} has two names", entry.ino));
                            }
                        }
                    }
                    if st.nlink != 0 && st.nlink as usize != 2 + subdirs.len() {
                        return fail(format!("nlink {} but {} subdirectories", st.nlink, subdirs.len()));
                    }
                    subdirs_of.insert(ino, subdirs);
                }
            }
        }

        let mut linked = BTreeSet::new();
        for inode in &inodes {
            let ino = inode.ino;
            let st = inode.state.read();
            let count = names.get(&ino).copied().unwrap_or(0);
            let ok = match inode.kind {
                _ if ino == Self::ROOT => count == 0 && inode.parent() == Self::ROOT,
                FileKind::Dir if st.nlink == 0 => count == 0,
                FileKind::Dir => count == 1 && named_in.get(&ino) == Some(&inode.parent()),
                _ => count == st.nlink,
            };
            if !ok {
                return Err(format!(
                    "inode {ino} ({:?}): nlink {} but named {count} times (parent {})",
                    inode.kind,
                    st.nlink,
                    inode.parent()
                ));
            }
            if st.nlink > 0 && inode.kind == FileKind::Dir {
                linked.insert(ino);
            }
        }

        // Counts alone allow a detached cycle of directories: walk from the root.
        let mut reached = BTreeSet::new();
        let mut todo = vec![Self::ROOT];
        while let Some(dir) = todo.pop() {
            if reached.insert(dir) {
                todo.extend(subdirs_of.get(&dir).into_iter().flatten().copied());
            }
        }
        if let Some(lost) = linked.difference(&reached).next() {
            return Err(format!("directory {lost} is not reachable from the root"));
        }

        self.space.verify(owned_blocks)
    }
}

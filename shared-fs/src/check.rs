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
    /// readdir cookie maps, no data past EOF, each file's sector count, and
    /// that the fragments owned by files, the carved blocks' sector masks
    /// and the free list partition the obtained space exactly (no fragment
    /// overlaps another, a carved block's mask is exactly the sectors files
    /// hold in it, used sectors are counted exactly).
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

#[cfg(test)]
mod tests {
    use crate::inode::Body;
    use crate::space::BlockPtr;
    use crate::types::{Config, Ino, Timespec};
    use crate::FileSystem;

    /// Three small files packed into one block (sectors 0, 1, 2) and a big one.
    fn packed() -> (FileSystem, [Ino; 4]) {
        let fs = FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 4 << 20, clock: Timespec::default }).unwrap();
        let mut inos = [0; 4];
        for (i, len) in [100usize, 200, 300, 9000].into_iter().enumerate() {
            let f = fs.create(FileSystem::ROOT, format!("f{i}").as_bytes(), 0o644, 0, 0).unwrap().ino;
            fs.write(f, 0, &vec![i as u8 + 1; len]).unwrap();
            inos[i] = f;
        }
        fs.check().unwrap();
        (fs, inos)
    }

    fn block(fs: &FileSystem, ino: Ino, index: u64) -> BlockPtr {
        let inode = fs.inode(ino).unwrap();
        let st = inode.state.read();
        let Body::File(file) = &st.body else { panic!("not a file") };
        file.block(index).unwrap()
    }

    fn set_block(fs: &FileSystem, ino: Ino, index: u64, to: BlockPtr) {
        let inode = fs.inode(ino).unwrap();
        let mut st = inode.state.write();
        let Body::File(file) = &mut st.body else { panic!("not a file") };
        file.corrupt_block(index, to);
    }

    fn fails(fs: &FileSystem, what: &str) -> String {
        fs.check().expect_err(what)
    }

    #[test]
    fn check_catches_an_overlapping_fragment() {
        let (fs, [a, b, c, _]) = packed();
        let ours = block(&fs, c, 0);
        // c (300 bytes) now names b's sector (200 bytes): c's own checks
        // pass and the sector counts add up; only the overlap is wrong.
        set_block(&fs, c, 0, block(&fs, b, 0));
        let err = fails(&fs, "two files hold the same sector");
        assert!(err.contains("overlaps"), "{err}");
        set_block(&fs, c, 0, ours);
        fs.check().unwrap();
        // A fragment reaching into its neighbour.
        set_block(&fs, a, 0, block(&fs, a, 0).with_sectors(2));
        fails(&fs, "a fragment grown over its neighbour");
    }

    #[test]
    fn check_catches_fragment_sizes_the_allocator_does_not_know() {
        let (fs, [_, _, _, big]) = packed();
        // big's tail: 808 bytes in 2 sectors. Seen as 1 sector, the file
        // is still well formed; the allocator's count is not.
        let tail = block(&fs, big, 2);
        assert_eq!(tail.sectors(), 2);
        set_block(&fs, big, 2, tail.with_sectors(1));
        let err = fails(&fs, "a fragment smaller than allocated");
        assert!(err.contains("accounting"), "{err}");
        // Seen as 3 sectors, into free ones: the masks disagree.
        set_block(&fs, big, 2, tail.with_sectors(3));
        fails(&fs, "a fragment larger than allocated");
        set_block(&fs, big, 2, tail);
        fs.check().unwrap();
        // A whole block that files see as 7 sectors.
        let whole = block(&fs, big, 0);
        set_block(&fs, big, 0, whole.with_sectors(7));
        fails(&fs, "a whole block seen as a fragment");
        set_block(&fs, big, 0, whole);
        fs.check().unwrap();
    }

    #[test]
    fn check_catches_a_fragment_freed_while_a_file_holds_it() {
        let (fs, [a, _, _, big]) = packed();
        fs.space.free([block(&fs, a, 0)]);
        fails(&fs, "a freed fragment still linked");
        let (fs, _) = packed();
        fs.space.free([block(&fs, big, 1)]);
        fails(&fs, "a freed whole block still linked");
    }

    #[test]
    fn check_catches_a_free_of_the_wrong_size() {
        // Into sectors that are free: refused (the masks stay right) and reported.
        let (fs, [_, _, _, big]) = packed();
        fs.space.free([block(&fs, big, 2).with_sectors(5)]);
        let err = fails(&fs, "a free that does not match the masks");
        assert!(err.contains("free of 5 sectors"), "{err}");
        // Into a neighbour's sector: applied, and the accounting shows it.
        let (fs, [_, b, _, _]) = packed();
        fs.space.free([block(&fs, b, 0).with_sectors(2)]);
        fails(&fs, "a free that took a neighbour's sector");
    }
}

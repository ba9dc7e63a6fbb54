//! One test (or a few) per operation and per error it can return.

mod common;

use common::*;
use shared_fs::oflags::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;

#[test]
fn new_has_root_and_checks() {
    let fs = fs();
    let root = fs.getattr(ROOT).unwrap();
    assert_eq!(root.kind, FileKind::Dir);
    assert_eq!(root.mode, S_IFDIR | 0o755);
    assert_eq!(root.nlink, 2);
    assert_eq!(names(&fs, ROOT), vec![b".".to_vec(), b"..".to_vec()]);
    assert_eq!(fs.stats().capacity, MIB as u64);
    assert_eq!(fs.stats().inodes, 1);
    fs.check().unwrap();
}

#[test]
fn new_rejects_initial_above_max() {
    let r = FileSystem::new(Config { initial_bytes: 2 * MIB, max_bytes: MIB, clock: zero_clock });
    assert_eq!(r.err(), Some(Errno::EINVAL));
}

#[test]
fn create_lookup_getattr() {
    let fs = fs();
    let a = fs.create(ROOT, b"a.php", 0o644, 33, 44).unwrap();
    assert_eq!(a.kind, FileKind::File);
    assert_eq!(a.mode, S_IFREG | 0o644);
    assert_eq!((a.uid, a.gid, a.nlink, a.size, a.blocks), (33, 44, 1, 0, 0));
    assert_eq!(a.blksize, BLOCK_SIZE as u32);
    assert_eq!(fs.lookup(ROOT, b"a.php").unwrap().ino, a.ino);
    assert_eq!(fs.getattr(a.ino).unwrap().ino, a.ino);
    assert_eq!(fs.lookup(ROOT, b".").unwrap().ino, ROOT);
    assert_eq!(fs.lookup(ROOT, b"..").unwrap().ino, ROOT);
    assert_eq!(fs.create(ROOT, b"a.php", 0o644, 0, 0).err(), Some(Errno::EEXIST));
    assert_eq!(fs.create(ROOT, b".", 0o644, 0, 0).err(), Some(Errno::EEXIST));
    assert_eq!(fs.lookup(ROOT, b"missing").err(), Some(Errno::ENOENT));
    assert_eq!(fs.lookup(a.ino, b"x").err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.create(a.ino, b"x", 0o644, 0, 0).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.getattr(999).err(), Some(Errno::ENOENT));
    assert_eq!(fs.create(999, b"x", 0o644, 0, 0).err(), Some(Errno::ENOENT));
    fs.check().unwrap();
}

#[test]
fn create_updates_parent_times() {
    let fs = fs();
    let before = fs.getattr(ROOT).unwrap();
    fs.create(ROOT, b"f", 0o600, 0, 0).unwrap();
    let after = fs.getattr(ROOT).unwrap();
    assert!(after.mtime > before.mtime && after.ctime > before.ctime);
    assert!(after.size > before.size, "dir size grows per entry like tmpfs");
}

#[test]
fn names_up_to_255_bytes() {
    let fs = fs();
    let ok = vec![b'n'; 255];
    let long = vec![b'n'; 256];
    fs.create(ROOT, &ok, 0o644, 0, 0).unwrap();
    assert_eq!(fs.lookup(ROOT, &ok).unwrap().kind, FileKind::File);
    assert_eq!(fs.create(ROOT, &long, 0o644, 0, 0).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(fs.lookup(ROOT, &long).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(fs.mkdir(ROOT, &long, 0o755, 0, 0).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(fs.create(ROOT, b"", 0o644, 0, 0).err(), Some(Errno::ENOENT));
    assert_eq!(fs.create(ROOT, b"a/b", 0o644, 0, 0).err(), Some(Errno::EINVAL));
    // Non-UTF-8 names are fine: names are bytes.
    fs.create(ROOT, &[0xff, 0xfe], 0o644, 0, 0).unwrap();
    fs.check().unwrap();
}

#[test]
fn mkdir_and_nlink() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o750, 1, 2).unwrap();
    assert_eq!(d.mode, S_IFDIR | 0o750);
    assert_eq!(d.nlink, 2);
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 3);
    let e = fs.mkdir(d.ino, b"e", 0o755, 0, 0).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3);
    assert_eq!(fs.lookup(e.ino, b"..").unwrap().ino, d.ino);
    fs.create(d.ino, b"file", 0o644, 0, 0).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 3, "files do not count");
    assert_eq!(fs.mkdir(ROOT, b"d", 0o755, 0, 0).err(), Some(Errno::EEXIST));
    assert_eq!(fs.mkdir(ROOT, b"..", 0o755, 0, 0).err(), Some(Errno::EEXIST));
    fs.check().unwrap();
}

#[test]
fn mode_bits_are_masked() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o177777, 0, 0).unwrap();
    assert_eq!(f.mode, S_IFREG | 0o7777);
}

#[test]
fn symlink_and_readlink() {
    let fs = fs();
    let l = fs.symlink(ROOT, b"l", b"some/where", 5, 6).unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(l.mode, S_IFLNK | 0o777);
    assert_eq!(l.size, 10);
    assert_eq!((l.uid, l.gid), (5, 6));
    assert_eq!(fs.readlink(l.ino).unwrap(), b"some/where");
    assert_eq!(fs.symlink(ROOT, b"l", b"x", 0, 0).err(), Some(Errno::EEXIST));
    assert_eq!(fs.symlink(ROOT, b"e", b"", 0, 0).err(), Some(Errno::ENOENT));
    assert_eq!(fs.symlink(ROOT, b"e", &vec![b'a'; 4096], 0, 0).err(), Some(Errno::ENAMETOOLONG));
    assert_eq!(fs.readlink(ROOT).err(), Some(Errno::EINVAL));
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.readlink(f.ino).err(), Some(Errno::EINVAL));
    assert_eq!(fs.read(l.ino, 0, &mut [0; 4]).err(), Some(Errno::EINVAL));
    fs.check().unwrap();
}

#[test]
fn hard_links() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, b"shared").unwrap();
    let before = fs.getattr(f.ino).unwrap().ctime;
    let l = fs.link(f.ino, d.ino, b"g").unwrap();
    assert_eq!(l.ino, f.ino);
    assert_eq!(l.nlink, 2);
    assert!(l.ctime > before);
    assert_eq!(read_all(&fs, fs.lookup(d.ino, b"g").unwrap().ino), b"shared");
    assert_eq!(fs.link(f.ino, d.ino, b"g").err(), Some(Errno::EEXIST));
    assert_eq!(fs.link(d.ino, ROOT, b"dirlink").err(), Some(Errno::EPERM));
    assert_eq!(fs.link(f.ino, f.ino, b"x").err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.link(12345, ROOT, b"x").err(), Some(Errno::ENOENT));
    fs.unlink(ROOT, b"f").unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 1);
    assert_eq!(read_all(&fs, f.ino), b"shared");
    fs.unlink(d.ino, b"g").unwrap();
    assert_eq!(fs.getattr(f.ino).err(), Some(Errno::ENOENT));
    fs.check().unwrap();
}

#[test]
fn link_to_unlinked_open_file_is_enoent() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.open(f.ino).unwrap();
    fs.unlink(ROOT, b"f").unwrap();
    assert_eq!(fs.link(f.ino, ROOT, b"again").err(), Some(Errno::ENOENT));
    fs.release(f.ino);
    fs.check().unwrap();
}

#[test]
fn unlink_errors() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    assert_eq!(fs.unlink(ROOT, b"d").err(), Some(Errno::EISDIR));
    assert_eq!(fs.unlink(ROOT, b"nope").err(), Some(Errno::ENOENT));
    assert_eq!(fs.unlink(ROOT, b".").err(), Some(Errno::EISDIR));
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.unlink(f.ino, b"x").err(), Some(Errno::ENOTDIR));
    let before = fs.getattr(d.ino).unwrap();
    fs.create(d.ino, b"x", 0o644, 0, 0).unwrap();
    fs.unlink(d.ino, b"x").unwrap();
    let after = fs.getattr(d.ino).unwrap();
    assert!(after.mtime > before.mtime);
    fs.check().unwrap();
}

#[test]
fn unlink_while_open_keeps_data_until_release() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, &[7u8; 10000]).unwrap();
    let used = fs.stats().used;
    assert!(used >= 10000);
    fs.open(f.ino).unwrap();
    fs.unlink(ROOT, b"f").unwrap();
    assert_eq!(fs.lookup(ROOT, b"f").err(), Some(Errno::ENOENT));
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 0);
    assert_eq!(read_all(&fs, f.ino), vec![7u8; 10000]);
    fs.write(f.ino, 10000, b"more").unwrap();
    assert_eq!(fs.stats().used, used, "offset 10000 is inside the third block, already allocated");
    fs.check().unwrap();
    fs.release(f.ino);
    assert_eq!(fs.getattr(f.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.read(f.ino, 0, &mut [0; 4]).err(), Some(Errno::ENOENT));
    assert_eq!(fs.open(f.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.stats().used, 0);
    fs.release(f.ino); // stale release is harmless
    fs.check().unwrap();
}

#[test]
fn inode_numbers_are_not_reused() {
    let fs = fs();
    let a = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap();
    fs.unlink(ROOT, b"a").unwrap();
    let b = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap();
    assert!(b.ino > a.ino);
    assert_eq!(fs.getattr(a.ino).err(), Some(Errno::ENOENT));
}

#[test]
fn rmdir_semantics() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    fs.create(d.ino, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.rmdir(ROOT, b"d").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(d.ino, b"f").err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.rmdir(ROOT, b"nope").err(), Some(Errno::ENOENT));
    assert_eq!(fs.rmdir(d.ino, b".").err(), Some(Errno::EINVAL));
    assert_eq!(fs.rmdir(d.ino, b"..").err(), Some(Errno::ENOTEMPTY));
    fs.unlink(d.ino, b"f").unwrap();
    fs.open(d.ino).unwrap();
    fs.rmdir(ROOT, b"d").unwrap();
    assert_eq!(fs.getattr(ROOT).unwrap().nlink, 2);
    // Removed but still open: empty listing, no creation inside.
    assert_eq!(fs.getattr(d.ino).unwrap().nlink, 0);
    assert!(names(&fs, d.ino).is_empty());
    assert_eq!(fs.create(d.ino, b"x", 0o644, 0, 0).err(), Some(Errno::ENOENT));
    fs.check().unwrap();
    fs.release(d.ino);
    assert_eq!(fs.getattr(d.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.readdir(d.ino, 0, &mut |_| true).err(), Some(Errno::ENOENT));
    fs.check().unwrap();
}

#[test]
fn rename_within_directory() {
    let fs = fs();
    let f = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap();
    let ctime = fs.getattr(f.ino).unwrap().ctime;
    fs.rename(ROOT, b"a", ROOT, b"b").unwrap();
    assert_eq!(fs.lookup(ROOT, b"a").err(), Some(Errno::ENOENT));
    assert_eq!(fs.lookup(ROOT, b"b").unwrap().ino, f.ino);
    assert!(fs.getattr(f.ino).unwrap().ctime > ctime);
    // onto itself: no-op
    fs.rename(ROOT, b"b", ROOT, b"b").unwrap();
    assert_eq!(fs.lookup(ROOT, b"b").unwrap().ino, f.ino);
    assert_eq!(fs.rename(ROOT, b"nope", ROOT, b"x").err(), Some(Errno::ENOENT));
    assert_eq!(fs.rename(ROOT, b".", ROOT, b"x").err(), Some(Errno::EBUSY));
    assert_eq!(fs.rename(ROOT, b"b", ROOT, b"..").err(), Some(Errno::EBUSY));
    fs.check().unwrap();
}

#[test]
fn rename_replaces_file_atomically_and_frees_old() {
    let fs = fs();
    let old = fs.create(ROOT, b"target", 0o644, 0, 0).unwrap();
    fs.write(old.ino, 0, &[1u8; 8192]).unwrap();
    let new = fs.create(ROOT, b"tmp", 0o644, 0, 0).unwrap();
    fs.write(new.ino, 0, b"new").unwrap();
    fs.rename(ROOT, b"tmp", ROOT, b"target").unwrap();
    assert_eq!(fs.lookup(ROOT, b"target").unwrap().ino, new.ino);
    assert_eq!(fs.getattr(old.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.stats().used, 512, "3 bytes take one sector, the old 8 KiB are free");
    assert_eq!(names(&fs, ROOT).len(), 3);
    fs.check().unwrap();
}

#[test]
fn rename_hard_links_of_same_file_is_noop() {
    let fs = fs();
    let f = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap();
    fs.link(f.ino, ROOT, b"b").unwrap();
    fs.rename(ROOT, b"a", ROOT, b"b").unwrap();
    assert_eq!(fs.lookup(ROOT, b"a").unwrap().ino, f.ino);
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 2);
    fs.check().unwrap();
}

#[test]
fn rename_across_directories() {
    let fs = fs();
    let a = fs.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(ROOT, b"b", 0o755, 0, 0).unwrap();
    let sub = fs.mkdir(a.ino, b"sub", 0o755, 0, 0).unwrap();
    let f = fs.create(a.ino, b"f", 0o644, 0, 0).unwrap();
    fs.rename(a.ino, b"f", b.ino, b"g").unwrap();
    assert_eq!(fs.lookup(b.ino, b"g").unwrap().ino, f.ino);
    fs.rename(a.ino, b"sub", b.ino, b"sub2").unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    assert_eq!(fs.lookup(sub.ino, b"..").unwrap().ino, b.ino);
    let mut dotdot = 0;
    fs.readdir(sub.ino, 0, &mut |e| {
        if e.name == b".." {
            dotdot = e.ino;
        }
        true
    })
    .unwrap();
    assert_eq!(dotdot, b.ino);
    fs.check().unwrap();
}

#[test]
fn rename_directory_errors() {
    let fs = fs();
    let a = fs.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let sub = fs.mkdir(a.ino, b"sub", 0o755, 0, 0).unwrap();
    let deep = fs.mkdir(sub.ino, b"deep", 0o755, 0, 0).unwrap();
    fs.create(ROOT, b"file", 0o644, 0, 0).unwrap();
    fs.mkdir(ROOT, b"full", 0o755, 0, 0).unwrap();
    let full = fs.lookup(ROOT, b"full").unwrap();
    fs.create(full.ino, b"x", 0o644, 0, 0).unwrap();
    // Into its own subtree.
    assert_eq!(fs.rename(ROOT, b"a", deep.ino, b"a").err(), Some(Errno::EINVAL));
    assert_eq!(fs.rename(ROOT, b"a", a.ino, b"self").err(), Some(Errno::EINVAL));
    // Type mismatches.
    assert_eq!(fs.rename(ROOT, b"a", ROOT, b"file").err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.rename(ROOT, b"file", ROOT, b"a").err(), Some(Errno::EISDIR));
    // Onto a non-empty directory, also its own parent.
    assert_eq!(fs.rename(ROOT, b"a", ROOT, b"full").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(fs.rename(a.ino, b"sub", ROOT, b"a").err(), Some(Errno::ENOTEMPTY));
    assert_eq!(fs.rename(ROOT, b"file", sub.ino, b"x").ok(), Some(()));
    assert_eq!(fs.rename(ROOT, b"missing", sub.ino, b"x").err(), Some(Errno::ENOENT));
    let f = fs.lookup(sub.ino, b"x").unwrap();
    assert_eq!(fs.rename(f.ino, b"x", ROOT, b"y").err(), Some(Errno::ENOTDIR));
    fs.check().unwrap();
}

#[test]
fn rename_replaces_empty_directory() {
    let fs = fs();
    let a = fs.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(ROOT, b"b", 0o755, 0, 0).unwrap();
    let src = fs.mkdir(a.ino, b"src", 0o755, 0, 0).unwrap();
    let empty = fs.mkdir(b.ino, b"empty", 0o755, 0, 0).unwrap();
    fs.rename(a.ino, b"src", b.ino, b"empty").unwrap();
    assert_eq!(fs.lookup(b.ino, b"empty").unwrap().ino, src.ino);
    assert_eq!(fs.getattr(empty.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    // Same directory replacement of an empty dir.
    fs.mkdir(b.ino, b"other", 0o755, 0, 0).unwrap();
    fs.rename(b.ino, b"other", b.ino, b"empty").unwrap();
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    fs.check().unwrap();
}

#[test]
fn readdir_lists_everything_with_resumable_cookies() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    for i in 0..300 {
        fs.create(d.ino, format!("f{i}").as_bytes(), 0o644, 0, 0).unwrap();
    }
    let all = names(&fs, d.ino);
    assert_eq!(all.len(), 302);
    assert_eq!(&all[..2], &[b".".to_vec(), b"..".to_vec()]);
    // Resume one entry at a time.
    let mut cookie = 0;
    let mut seen = Vec::new();
    loop {
        let mut got = None;
        fs.readdir(d.ino, cookie, &mut |e| {
            got = Some(e);
            false
        })
        .unwrap();
        match got {
            Some(e) => {
                cookie = e.cookie;
                seen.push(e.name);
            }
            None => break,
        }
    }
    assert_eq!(seen, all);
    let mut dotdot = 0;
    fs.readdir(d.ino, 1, &mut |e| {
        dotdot = e.ino;
        false
    })
    .unwrap();
    assert_eq!(dotdot, ROOT);
    assert_eq!(fs.readdir(fs.lookup(d.ino, b"f0").unwrap().ino, 0, &mut |_| true).err(), Some(Errno::ENOTDIR));
}

#[test]
fn readdir_callback_may_reenter_the_filesystem() {
    let fs = fs();
    for i in 0..100 {
        fs.create(ROOT, format!("f{i}").as_bytes(), 0o644, 0, 0).unwrap();
    }
    let mut n = 0;
    fs.readdir(ROOT, 0, &mut |e| {
        if e.name.starts_with(b"f") {
            fs.unlink(ROOT, &e.name).unwrap();
            n += 1;
        }
        true
    })
    .unwrap();
    assert_eq!(n, 100);
    assert_eq!(names(&fs, ROOT).len(), 2);
    fs.check().unwrap();
}

#[test]
fn write_read_holes_and_zero_copy() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(f.ino, 0, b"hello").unwrap(), 5);
    assert_eq!(fs.write(f.ino, 100_000, b"world").unwrap(), 5);
    let a = fs.getattr(f.ino).unwrap();
    assert_eq!(a.size, 100_005);
    // "hello": one sector; "world" ends 1701 bytes into its block: 4 sectors.
    assert_eq!(a.blocks, 1 + 4, "the hole takes no space");
    let data = read_all(&fs, f.ino);
    assert_eq!(&data[..5], b"hello");
    assert!(data[5..100_000].iter().all(|&b| b == 0));
    assert_eq!(&data[100_000..], b"world");
    // Reads past EOF are short or empty.
    let mut buf = [9u8; 10];
    assert_eq!(fs.read(f.ino, 100_003, &mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"ld");
    assert_eq!(fs.read(f.ino, 200_000, &mut buf).unwrap(), 0);
    assert_eq!(fs.read(f.ino, u64::MAX, &mut buf).unwrap(), 0);
    // Zero-copy read delivers the same bytes in order.
    let mut joined = Vec::new();
    let n = fs.read_with(f.ino, 0, 200_000, &mut |s| joined.extend_from_slice(s)).unwrap();
    assert_eq!(n, 100_005);
    assert_eq!(joined, data);
    // Overwrite across a block boundary.
    let edge = BLOCK_SIZE as u64 - 2;
    fs.write(f.ino, edge, b"ABCD").unwrap();
    let mut four = [0u8; 4];
    fs.read(f.ino, edge, &mut four).unwrap();
    assert_eq!(&four, b"ABCD");
    fs.check().unwrap();
}

#[test]
fn write_errors() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    assert_eq!(fs.write(d.ino, 0, b"x").err(), Some(Errno::EISDIR));
    assert_eq!(fs.read(d.ino, 0, &mut [0; 1]).err(), Some(Errno::EISDIR));
    assert_eq!(fs.append(d.ino, b"x").err(), Some(Errno::EISDIR));
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(f.ino, u64::MAX - 1, b"xx").err(), Some(Errno::EFBIG));
    assert_eq!(fs.write(f.ino, i64::MAX as u64, b"x").err(), Some(Errno::EFBIG));
    assert_eq!(fs.write(777, 0, b"x").err(), Some(Errno::ENOENT));
    assert_eq!(fs.getattr(f.ino).unwrap().size, 0);
    fs.check().unwrap();
}

#[test]
fn write_updates_mtime_ctime_and_read_updates_atime() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, b"x").unwrap();
    let w = fs.getattr(f.ino).unwrap();
    assert!(w.mtime > f.mtime && w.ctime > f.ctime);
    fs.write(f.ino, 0, b"").unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().mtime, w.mtime, "empty write changes nothing");
    fs.read(f.ino, 0, &mut [0; 1]).unwrap();
    let r = fs.getattr(f.ino).unwrap();
    assert!(r.atime > w.mtime, "relatime: atime moves past mtime");
    assert_eq!(r.mtime, w.mtime);
}

#[test]
fn append_is_at_end() {
    let fs = fs();
    let f = fs.create(ROOT, b"log", 0o644, 0, 0).unwrap();
    assert_eq!(fs.append(f.ino, b"one,").unwrap(), 0);
    assert_eq!(fs.append(f.ino, b"two").unwrap(), 4);
    assert_eq!(read_all(&fs, f.ino), b"one,two");
}

#[test]
fn truncate_both_ways() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, &[0xAB; 10_000]).unwrap();
    let a = fs.setattr(f.ino, &SetAttr { size: Some(5000), ..Default::default() }).unwrap();
    assert_eq!(a.size, 5000);
    // A whole block, and the 904 bytes of the second in 2 sectors.
    assert_eq!(a.blocks, 8 + 2);
    assert!(a.mtime > f.mtime && a.ctime > f.ctime);
    // Extending exposes zeros, not the old bytes.
    fs.setattr(f.ino, &SetAttr { size: Some(12_000), ..Default::default() }).unwrap();
    let data = read_all(&fs, f.ino);
    assert_eq!(data.len(), 12_000);
    assert!(data[..5000].iter().all(|&b| b == 0xAB));
    assert!(data[5000..].iter().all(|&b| b == 0));
    // Writing past EOF after shrinking also shows zeros in between.
    fs.setattr(f.ino, &SetAttr { size: Some(10), ..Default::default() }).unwrap();
    fs.write(f.ino, 20, b"z").unwrap();
    assert_eq!(read_all(&fs, f.ino), [&[0xAB; 10][..], &[0; 10], b"z"].concat());
    fs.setattr(f.ino, &SetAttr { size: Some(0), ..Default::default() }).unwrap();
    assert_eq!(fs.stats().used, 0);
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    assert_eq!(fs.setattr(d.ino, &SetAttr { size: Some(0), ..Default::default() }).err(), Some(Errno::EISDIR));
    let l = fs.symlink(ROOT, b"l", b"f", 0, 0).unwrap();
    assert_eq!(fs.setattr(l.ino, &SetAttr { size: Some(0), ..Default::default() }).err(), Some(Errno::EINVAL));
    assert_eq!(fs.setattr(f.ino, &SetAttr { size: Some(u64::MAX), ..Default::default() }).err(), Some(Errno::EFBIG));
    fs.check().unwrap();
}

#[test]
fn setattr_mode_owner_times() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o4755, 0, 0).unwrap();
    let a = fs.setattr(f.ino, &SetAttr { mode: Some(0o640), ..Default::default() }).unwrap();
    assert_eq!(a.mode, S_IFREG | 0o640);
    assert!(a.ctime > f.ctime);
    fs.setattr(f.ino, &SetAttr { mode: Some(0o6755), ..Default::default() }).unwrap();
    let a = fs.setattr(f.ino, &SetAttr { uid: Some(7), gid: Some(8), ..Default::default() }).unwrap();
    assert_eq!((a.uid, a.gid), (7, 8));
    assert_eq!(a.mode, S_IFREG | 0o755, "chown clears setuid and (group-exec) setgid");
    let t = Timespec { sec: 42, nsec: 7 };
    let a = fs.setattr(f.ino, &SetAttr { atime: Some(t), mtime: Some(t), ..Default::default() }).unwrap();
    assert_eq!((a.atime, a.mtime), (t, t));
    assert!(a.ctime.sec > 42);
    let same = fs.setattr(f.ino, &SetAttr::default()).unwrap();
    assert_eq!(same.ctime, a.ctime, "an empty setattr changes nothing");
    assert_eq!(fs.setattr(4242, &SetAttr::default()).err(), Some(Errno::ENOENT));
}

#[test]
fn open_release_pins() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.open(f.ino).unwrap();
    fs.open(f.ino).unwrap();
    fs.unlink(ROOT, b"f").unwrap();
    fs.release(f.ino);
    assert!(fs.getattr(f.ino).is_ok());
    fs.release(f.ino);
    assert_eq!(fs.getattr(f.ino).err(), Some(Errno::ENOENT));
    assert_eq!(fs.open(999).err(), Some(Errno::ENOENT));
    fs.check().unwrap();
}

#[test]
fn statfs_and_stats() {
    let fs = fs_with(MIB, 8 * MIB);
    let s = fs.statfs();
    assert_eq!(s.block_size, BLOCK_SIZE as u32);
    assert_eq!(s.blocks, (8 * MIB / BLOCK_SIZE) as u64);
    assert_eq!(s.blocks_free, s.blocks);
    assert_eq!(s.name_max, 255);
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, &vec![1u8; 3 * BLOCK_SIZE]).unwrap();
    assert_eq!(fs.statfs().blocks_free, s.blocks - 3);
    let st = fs.stats();
    assert_eq!((st.used, st.high_water, st.max, st.inodes), (3 * BLOCK_SIZE as u64, 3 * BLOCK_SIZE as u64, 8 * MIB as u64, 2));
    fs.unlink(ROOT, b"f").unwrap();
    let st = fs.stats();
    assert_eq!((st.used, st.high_water, st.inodes), (0, 3 * BLOCK_SIZE as u64, 1));
}

#[test]
fn errno_names() {
    for (e, n) in [
        (Errno::EPERM, "EPERM"),
        (Errno::ENOENT, "ENOENT"),
        (Errno::EIO, "EIO"),
        (Errno::EBADF, "EBADF"),
        (Errno::EACCES, "EACCES"),
        (Errno::EEXIST, "EEXIST"),
        (Errno::EXDEV, "EXDEV"),
        (Errno::ENOTDIR, "ENOTDIR"),
        (Errno::EISDIR, "EISDIR"),
        (Errno::EINVAL, "EINVAL"),
        (Errno::EFBIG, "EFBIG"),
        (Errno::ENOSPC, "ENOSPC"),
        (Errno::EMLINK, "EMLINK"),
        (Errno::ERANGE, "ERANGE"),
        (Errno::ENAMETOOLONG, "ENAMETOOLONG"),
        (Errno::ENOTEMPTY, "ENOTEMPTY"),
        (Errno::ELOOP, "ELOOP"),
        (Errno::ENOSYS, "ENOSYS"),
        (Errno::ESTALE, "ESTALE"),
    ] {
        assert_eq!(e.name(), n);
    }
    assert_eq!(Errno::EXDEV.0, 18);
    assert_eq!(Errno::ESTALE.0, 116);
}

// ---- path level ----

fn tree(fs: &FileSystem) {
    let a = fs.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = fs.mkdir(a.ino, b"b", 0o755, 0, 0).unwrap();
    let f = fs.create(b.ino, b"f.txt", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, b"content").unwrap();
    fs.symlink(ROOT, b"abs", b"/a/b", 0, 0).unwrap();
    fs.symlink(a.ino, b"rel", b"b/f.txt", 0, 0).unwrap();
    fs.symlink(ROOT, b"dangling", b"/nowhere/x", 0, 0).unwrap();
    fs.symlink(ROOT, b"loop1", b"loop2", 0, 0).unwrap();
    fs.symlink(ROOT, b"loop2", b"loop1", 0, 0).unwrap();
    fs.symlink(ROOT, b"rootlink", b"/", 0, 0).unwrap();
}

#[test]
fn resolve_paths() {
    let fs = fs();
    tree(&fs);
    let a = fs.resolve(ROOT, b"/a", true).unwrap();
    let f = fs.resolve(ROOT, b"/a/b/f.txt", true).unwrap();
    assert_eq!(fs.resolve(a.ino, b"b/f.txt", true).unwrap().ino, f.ino);
    assert_eq!(fs.resolve(a.ino, b"./b/../b//f.txt", true).unwrap().ino, f.ino);
    assert_eq!(fs.resolve(ROOT, b"/", true).unwrap().ino, ROOT);
    assert_eq!(fs.resolve(ROOT, b"/..", true).unwrap().ino, ROOT);
    assert_eq!(fs.resolve(ROOT, b"/a/b/", true).unwrap().kind, FileKind::Dir);
    assert_eq!(fs.resolve(ROOT, b"/abs/f.txt", true).unwrap().ino, f.ino);
    assert_eq!(fs.resolve(ROOT, b"/a/rel", true).unwrap().ino, f.ino);
    assert_eq!(fs.resolve(ROOT, b"/a/rel", false).unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.resolve(ROOT, b"/abs", false).unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.resolve(ROOT, b"/abs/", false).unwrap().kind, FileKind::Dir, "trailing slash follows");
    assert_eq!(fs.resolve(ROOT, b"/abs/..", true).unwrap().ino, a.ino, ".. is physical");
    assert_eq!(fs.resolve(ROOT, b"/rootlink/a", true).unwrap().ino, a.ino);
    assert_eq!(fs.resolve(ROOT, b"/rootlink", true).unwrap().ino, ROOT);
}

#[test]
fn resolve_errors() {
    let fs = fs();
    tree(&fs);
    assert_eq!(fs.resolve(ROOT, b"", true).err(), Some(Errno::ENOENT));
    assert_eq!(fs.resolve(ROOT, b"/nope", true).err(), Some(Errno::ENOENT));
    assert_eq!(fs.resolve(ROOT, b"/a/b/f.txt/x", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve(ROOT, b"/a/b/f.txt/", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve(ROOT, b"/a/b/f.txt/.", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve(ROOT, b"/dangling", true).err(), Some(Errno::ENOENT));
    assert_eq!(fs.resolve(ROOT, b"/dangling", false).unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.resolve(ROOT, b"/loop1", true).err(), Some(Errno::ELOOP));
    assert_eq!(fs.resolve(ROOT, b"/loop1/x", false).err(), Some(Errno::ELOOP));
    assert_eq!(fs.resolve(ROOT, b"/loop1", false).unwrap().kind, FileKind::Symlink);
    let long_name = [b"/".as_slice(), &[b'x'; 256]].concat();
    assert_eq!(fs.resolve(ROOT, &long_name, true).err(), Some(Errno::ENAMETOOLONG));
    let long_path = b"a/".repeat(2048);
    assert_eq!(fs.resolve(ROOT, &long_path, true).err(), Some(Errno::ENAMETOOLONG));
    let f = fs.resolve(ROOT, b"/a/b/f.txt", true).unwrap();
    assert_eq!(fs.resolve(f.ino, b"x", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve(ROOT, b"/a\0b", true).err(), Some(Errno::EINVAL));
}

#[test]
fn symlink_chain_of_40_resolves_41_loops() {
    let fs = fs();
    fs.create(ROOT, b"l0", 0o644, 0, 0).unwrap();
    for i in 1..=41 {
        fs.symlink(ROOT, format!("l{i}").as_bytes(), format!("l{}", i - 1).as_bytes(), 0, 0).unwrap();
    }
    assert_eq!(fs.resolve(ROOT, b"l40", true).unwrap().kind, FileKind::File);
    assert_eq!(fs.resolve(ROOT, b"l41", true).err(), Some(Errno::ELOOP));
}

#[test]
fn resolve_parent_splits() {
    let fs = fs();
    tree(&fs);
    let b = fs.resolve(ROOT, b"/a/b", true).unwrap();
    assert_eq!(fs.resolve_parent(ROOT, b"/a/b/new").unwrap(), (b.ino, b"new".to_vec()));
    assert_eq!(fs.resolve_parent(ROOT, b"/abs/new/").unwrap(), (b.ino, b"new".to_vec()));
    assert_eq!(fs.resolve_parent(b.ino, b"x").unwrap(), (b.ino, b"x".to_vec()));
    assert_eq!(fs.resolve_parent(ROOT, b"/top").unwrap(), (ROOT, b"top".to_vec()));
    assert_eq!(fs.resolve_parent(ROOT, b"/").unwrap(), (ROOT, b".".to_vec()));
    assert_eq!(fs.resolve_parent(ROOT, b"/nope/x").err(), Some(Errno::ENOENT));
    assert_eq!(fs.resolve_parent(ROOT, b"/a/b/f.txt/x").err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve_parent(ROOT, &vec![b'y'; 256]).err(), Some(Errno::ENAMETOOLONG));
}

#[test]
fn open_path_flags() {
    let fs = fs();
    tree(&fs);
    // O_CREAT creates and pins.
    let n = fs.open_path(ROOT, b"/a/new", O_CREAT | O_WRONLY, 0o640).unwrap();
    assert_eq!(n.mode, S_IFREG | 0o640);
    fs.unlink(fs.resolve(ROOT, b"/a", true).unwrap().ino, b"new").unwrap();
    assert!(fs.getattr(n.ino).is_ok(), "pinned by open_path");
    fs.release(n.ino);
    assert_eq!(fs.getattr(n.ino).err(), Some(Errno::ENOENT));
    // O_EXCL
    let f = fs.open_path(ROOT, b"/a/b/f.txt", O_CREAT | O_RDWR, 0o600).unwrap();
    assert_eq!(f.size, 7, "existing file untouched");
    fs.release(f.ino);
    assert_eq!(fs.open_path(ROOT, b"/a/b/f.txt", O_CREAT | O_EXCL, 0o600).err(), Some(Errno::EEXIST));
    assert_eq!(fs.open_path(ROOT, b"/a/rel", O_CREAT | O_EXCL, 0o600).err(), Some(Errno::EEXIST));
    // O_TRUNC
    let t = fs.open_path(ROOT, b"/a/rel", O_WRONLY | O_TRUNC, 0).unwrap();
    assert_eq!(t.size, 0);
    assert_eq!(t.kind, FileKind::File);
    fs.release(t.ino);
    // Directories
    let d = fs.open_path(ROOT, b"/a", O_RDONLY | O_DIRECTORY, 0).unwrap();
    assert_eq!(d.kind, FileKind::Dir);
    fs.release(d.ino);
    assert_eq!(fs.open_path(ROOT, b"/a", O_WRONLY, 0).err(), Some(Errno::EISDIR));
    assert_eq!(fs.open_path(ROOT, b"/a", O_CREAT, 0o644).err(), Some(Errno::EISDIR));
    assert_eq!(fs.open_path(ROOT, b"/a/", O_CREAT, 0o644).err(), Some(Errno::EISDIR));
    assert_eq!(fs.open_path(ROOT, b"/a/b/f.txt", O_DIRECTORY, 0).err(), Some(Errno::ENOTDIR));
    // O_NOFOLLOW
    assert_eq!(fs.open_path(ROOT, b"/a/rel", O_NOFOLLOW, 0).err(), Some(Errno::ELOOP));
    assert_eq!(fs.open_path(ROOT, b"/a/rel", O_CREAT | O_NOFOLLOW, 0o644).err(), Some(Errno::ELOOP));
    let via_dir_link = fs.open_path(ROOT, b"/abs/f.txt", O_NOFOLLOW, 0).unwrap();
    fs.release(via_dir_link.ino);
    // Missing without O_CREAT, missing parent with it.
    assert_eq!(fs.open_path(ROOT, b"/missing", O_RDONLY, 0).err(), Some(Errno::ENOENT));
    assert_eq!(fs.open_path(ROOT, b"/missing/x", O_CREAT, 0o644).err(), Some(Errno::ENOENT));
    assert_eq!(fs.open_path(ROOT, b"/loop1", O_RDONLY, 0).err(), Some(Errno::ELOOP));
    // O_CREAT through a dangling symlink creates its target (Linux does).
    fs.mkdir(ROOT, b"nowhere", 0o755, 0, 0).unwrap();
    let c = fs.open_path(ROOT, b"/dangling", O_CREAT | O_WRONLY, 0o600).unwrap();
    assert_eq!(fs.resolve(ROOT, b"/nowhere/x", false).unwrap().ino, c.ino);
    fs.release(c.ino);
    fs.check().unwrap();
}

#[test]
fn open_path_relative_and_long() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    let f = fs.open_path(d.ino, b"rel.txt", O_CREAT | O_RDWR, 0o644).unwrap();
    fs.release(f.ino);
    assert_eq!(fs.resolve(ROOT, b"d/rel.txt", true).unwrap().ino, f.ino);
    assert_eq!(fs.open_path(ROOT, &vec![b'z'; 256], O_CREAT, 0o644).err(), Some(Errno::ENAMETOOLONG));
    let name = vec![b'z'; 255];
    let g = fs.open_path(ROOT, &name, O_CREAT, 0o644).unwrap();
    fs.release(g.ino);
    // A 4095-byte path is fine, 4096 is not (PATH_MAX counts the NUL).
    let mut path = Vec::new();
    let mut dir = ROOT;
    while path.len() + 201 < 4095 - 10 {
        let comp = vec![b'p'; 200];
        dir = fs.mkdir(dir, &comp, 0o755, 0, 0).unwrap().ino;
        path.extend_from_slice(&comp);
        path.push(b'/');
    }
    let fill = 4095 - path.len();
    let mut ok = path.clone();
    ok.extend(vec![b'q'; fill]);
    assert_eq!(ok.len(), 4095);
    let q = fs.open_path(ROOT, &ok, O_CREAT, 0o644).unwrap();
    fs.release(q.ino);
    let mut too_long = path.clone();
    too_long.extend(vec![b'q'; fill + 1]);
    assert_eq!(fs.open_path(ROOT, &too_long, O_CREAT, 0o644).err(), Some(Errno::ENAMETOOLONG));
    let _ = dir;
    fs.check().unwrap();
}

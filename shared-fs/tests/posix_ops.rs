//! Regression tests for the POSIX additions found through pjdfstest, the
//! differential test and the fsx exerciser (one test per fix).

mod common;

use common::*;
use shared_fs::oflags::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;

#[test]
fn mknod_makes_special_files_that_keep_rdev() {
    let fs = fs();
    let fifo = fs.mknod(ROOT, b"fifo", S_IFIFO | 0o644, 7, 1, 2).unwrap();
    assert_eq!((fifo.kind, fifo.mode, fifo.rdev, fifo.size, fifo.nlink), (FileKind::Fifo, S_IFIFO | 0o644, 0, 0, 1));
    let chr = fs.mknod(ROOT, b"chr", S_IFCHR | 0o600, 0x0103, 0, 0).unwrap();
    assert_eq!((chr.kind, chr.rdev), (FileKind::CharDev, 0x0103));
    let blk = fs.mknod(ROOT, b"blk", S_IFBLK | 0o600, 0x0801, 0, 0).unwrap();
    assert_eq!((blk.kind, fs.getattr(blk.ino).unwrap().rdev), (FileKind::BlockDev, 0x0801));
    let sock = fs.mknod(ROOT, b"sock", S_IFSOCK | 0o755, 0, 0, 0).unwrap();
    assert_eq!(sock.kind, FileKind::Socket);
    // No type bits means a regular file, as Linux mknod.
    assert_eq!(fs.mknod(ROOT, b"reg", 0o644, 0, 0, 0).unwrap().kind, FileKind::File);
    assert_eq!(fs.mknod(ROOT, b"dir", S_IFDIR | 0o755, 0, 0, 0).err(), Some(Errno::EINVAL));
    assert_eq!(fs.mknod(ROOT, b"fifo", S_IFIFO | 0o644, 0, 0, 0).err(), Some(Errno::EEXIST));
    // Special files have no data and cannot be truncated.
    assert_eq!(fs.read(fifo.ino, 0, &mut [0; 4]), Err(Errno::EINVAL));
    assert_eq!(fs.write(chr.ino, 0, b"x"), Err(Errno::EINVAL));
    let trunc = SetAttr { size: Some(0), ..SetAttr::default() };
    assert_eq!(fs.setattr(fifo.ino, &trunc).err(), Some(Errno::EINVAL));
    // They take part in the namespace like files: link, rename, unlink.
    fs.link(fifo.ino, ROOT, b"fifo2").unwrap();
    assert_eq!(fs.getattr(fifo.ino).unwrap().nlink, 2);
    fs.rename(ROOT, b"fifo2", ROOT, b"chr").unwrap();
    assert!(names(&fs, ROOT).contains(&b"chr".to_vec()));
    assert_eq!(fs.resolve(ROOT, b"/chr", true).unwrap().kind, FileKind::Fifo);
    assert_eq!(fs.resolve(ROOT, b"/sock/x", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.open_path(ROOT, b"/sock", O_RDONLY | O_DIRECTORY, 0).err(), Some(Errno::ENOTDIR));
    fs.unlink(ROOT, b"sock").unwrap();
    fs.check().unwrap();
}

#[test]
fn rename2_noreplace_and_unsupported_flags() {
    let fs = fs();
    let a = fs.create(ROOT, b"a", 0o644, 0, 0).unwrap();
    fs.create(ROOT, b"b", 0o644, 0, 0).unwrap();
    assert_eq!(fs.rename2(ROOT, b"a", ROOT, b"b", RENAME_NOREPLACE), Err(Errno::EEXIST));
    // Even two names of one inode: the new name exists.
    fs.link(a.ino, ROOT, b"a2").unwrap();
    assert_eq!(fs.rename2(ROOT, b"a", ROOT, b"a2", RENAME_NOREPLACE), Err(Errno::EEXIST));
    assert_eq!(fs.rename2(ROOT, b"a", ROOT, b"c", RENAME_EXCHANGE), Err(Errno::EINVAL));
    assert_eq!(fs.rename2(ROOT, b"a", ROOT, b"c", 0x80), Err(Errno::EINVAL));
    fs.rename2(ROOT, b"a", ROOT, b"c", RENAME_NOREPLACE).unwrap();
    assert_eq!(fs.lookup(ROOT, b"c").unwrap().ino, a.ino);
    assert_eq!(fs.lookup(ROOT, b"a").err(), Some(Errno::ENOENT));
    fs.check().unwrap();
}

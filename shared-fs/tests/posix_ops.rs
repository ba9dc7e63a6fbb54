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

/// Found by the differential test: `open("missing/x/", O_CREAT)` said
/// `EISDIR` where Linux reports the missing directory (`ENOENT`) first.
#[test]
fn open_creat_trailing_slash_reports_parent_errors_first() {
    let fs = fs();
    fs.create(ROOT, b"file", 0o644, 0, 0).unwrap();
    assert_eq!(fs.open_path(ROOT, b"missing/x/", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::ENOENT));
    assert_eq!(fs.open_path(ROOT, b"file/x/", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.open_path(ROOT, b"new/", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::EISDIR));
    assert_eq!(fs.open_path(ROOT, b"file/", O_CREAT | O_RDONLY, 0o644).err(), Some(Errno::EISDIR));
    // "./" exists: O_EXCL reports that first (seed 17199).
    assert_eq!(fs.open_path(ROOT, b"./", O_CREAT | O_EXCL | O_RDWR, 0o644).err(), Some(Errno::EEXIST));
    assert_eq!(fs.open_path(ROOT, b"/", O_CREAT | O_EXCL | O_RDWR, 0o644).err(), Some(Errno::EEXIST));
    assert_eq!(fs.open_path(ROOT, b"./", O_CREAT | O_RDWR, 0o644).err(), Some(Errno::EISDIR));
}

/// Found by the differential test: linking a directory onto an existing
/// name is `EEXIST` on Linux (the new name is checked first), not `EPERM`.
#[test]
fn link_directory_onto_existing_name_is_eexist() {
    let fs = fs();
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.link(d.ino, ROOT, b"f").err(), Some(Errno::EEXIST));
    assert_eq!(fs.link(d.ino, ROOT, b"new").err(), Some(Errno::EPERM));
    fs.check().unwrap();
}

/// Found by the differential test: `open(O_CREAT)` through a symlink whose
/// target ends in "/" must first walk the target's directories (here a
/// symlink loop, `ELOOP`) before answering `EISDIR`.
#[test]
fn open_creat_through_slash_symlink_walks_target_first() {
    let fs = fs();
    fs.symlink(ROOT, b"loop", b"loop/x", 0, 0).unwrap();
    fs.symlink(ROOT, b"a", b"loop/c/", 0, 0).unwrap();
    assert_eq!(fs.open_path(ROOT, b"a", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::ELOOP));
    fs.symlink(ROOT, b"b", b"missing/c/", 0, 0).unwrap();
    assert_eq!(fs.open_path(ROOT, b"b", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::ENOENT));
    fs.symlink(ROOT, b"c", b"new/", 0, 0).unwrap();
    assert_eq!(fs.open_path(ROOT, b"c", O_CREAT | O_WRONLY, 0o644).err(), Some(Errno::EISDIR));
}

/// Found by the differential test: renaming a file onto a directory that
/// contains it is `ENOTEMPTY` on Linux, not `EISDIR`.
#[test]
fn rename_file_onto_its_ancestor_is_enotempty() {
    let fs = fs();
    let c = fs.mkdir(ROOT, b"c", 0o755, 0, 0).unwrap();
    let d = fs.mkdir(c.ino, b"d", 0o755, 0, 0).unwrap();
    fs.create(d.ino, b"f", 0o644, 0, 0).unwrap();
    fs.create(ROOT, b"g", 0o644, 0, 0).unwrap();
    assert_eq!(fs.rename(d.ino, b"f", c.ino, b"d"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rename(d.ino, b"f", ROOT, b"c"), Err(Errno::ENOTEMPTY));
    // Not an ancestor: the usual EISDIR.
    assert_eq!(fs.rename(ROOT, b"g", c.ino, b"d"), Err(Errno::EISDIR));
    fs.check().unwrap();
}

/// Found by the differential test: `open(symlink, O_NOFOLLOW|O_DIRECTORY)`
/// is `ENOTDIR` on Linux (the directory check comes first), not `ELOOP`.
#[test]
fn open_nofollow_directory_on_symlink_is_enotdir() {
    let fs = fs();
    fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    fs.symlink(ROOT, b"l", b"d", 0, 0).unwrap();
    assert_eq!(fs.open_path(ROOT, b"l", O_RDONLY | O_NOFOLLOW | O_DIRECTORY, 0).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.open_path(ROOT, b"l", O_RDONLY | O_NOFOLLOW, 0).err(), Some(Errno::ELOOP));
}

/// Found by the differential test: a symlink whose target ends in "/"
/// names a directory; following it to a file is `ENOTDIR`.
#[test]
fn symlink_target_with_trailing_slash_requires_a_directory() {
    let fs = fs();
    fs.create(ROOT, b"file", 0o644, 0, 0).unwrap();
    let d = fs.mkdir(ROOT, b"dir", 0o755, 0, 0).unwrap();
    fs.symlink(ROOT, b"to_file", b"file/", 0, 0).unwrap();
    fs.symlink(ROOT, b"to_dir", b"dir/", 0, 0).unwrap();
    fs.symlink(ROOT, b"to_root", b"/", 0, 0).unwrap();
    assert_eq!(fs.resolve(ROOT, b"to_file", true).err(), Some(Errno::ENOTDIR));
    assert_eq!(fs.resolve(ROOT, b"to_file", false).unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.resolve(ROOT, b"to_dir", true).unwrap().ino, d.ino);
    assert_eq!(fs.resolve(ROOT, b"to_root", true).unwrap().ino, ROOT);
    assert_eq!(fs.open_path(ROOT, b"to_file", O_RDONLY, 0).err(), Some(Errno::ENOTDIR));
}

//! Native FUSE adapter (feature `fuse`): serves a `FileSystem` through the
//! Linux kernel so that ordinary programs and POSIX test suites (pjdfstest)
//! can exercise it.
//!
//! Choices that matter for correctness:
//! * Attribute and entry TTLs are zero. The kernel would otherwise answer
//!   `stat` from its cache and miss ctime/nlink changes made by other
//!   operations (a caching passthrough fails ~30 pjdfstest cases that way).
//! * Mounted with `default_permissions`: the kernel checks access against the
//!   mode/uid/gid we report, since the core knows no caller identity. New
//!   nodes are owned by the caller (`req.uid()/gid()`), with the group and
//!   set-group-ID bit inherited from a set-group-ID directory, as Linux does.
//! * `open`/`opendir`/`create` pin the inode and `release` unpins it, so an
//!   unlinked file stays readable through open descriptors.
//! * File handles are unused (0): every operation names its inode.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::{Attr, Errno, FileKind, FileSystem, Ino, SetAttr, Timespec, S_ISGID};

/// Never let the kernel cache attributes or names (see the module docs).
const TTL: Duration = Duration::ZERO;

pub struct FuseFs {
    fs: FileSystem,
}

impl FuseFs {
    pub fn new(fs: FileSystem) -> FuseFs {
        FuseFs { fs }
    }

    /// Owner of a node created by `req` in `parent`, and the mode bits to
    /// add: a set-group-ID directory passes on its group (and, to new
    /// directories, the bit itself).
    fn owner(&self, req: &Request, parent: Ino, is_dir: bool) -> Result<(u32, u32, u32), Errno> {
        let dir = self.fs.getattr(parent)?;
        if dir.mode & S_ISGID != 0 {
            Ok((req.uid(), dir.gid, if is_dir { S_ISGID } else { 0 }))
        } else {
            Ok((req.uid(), req.gid(), 0))
        }
    }

    fn now(&self) -> Timespec {
        crate::system_clock()
    }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
        FileKind::Socket => FileType::Socket,
    }
}

fn system_time(t: Timespec) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.nsec));
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::from_secs(t.sec as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs()) + nanos
    }
}

fn timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec { sec: d.as_secs() as i64, nsec: d.subsec_nanos() },
        Err(e) => {
            // Before 1970: floor to whole seconds, keep nsec positive.
            let d = e.duration();
            let mut sec = -(d.as_secs() as i64);
            let mut nsec = d.subsec_nanos();
            if nsec > 0 {
                sec -= 1;
                nsec = 1_000_000_000 - nsec;
            }
            Timespec { sec, nsec }
        }
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: system_time(a.atime),
        mtime: system_time(a.mtime),
        ctime: system_time(a.ctime),
        crtime: system_time(a.ctime),
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev as u32,
        blksize: a.blksize,
        flags: 0,
    }
}

fn entry(reply: ReplyEntry, r: Result<Attr, Errno>) {
    match r {
        Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn name(n: &OsStr) -> &[u8] {
    n.as_bytes()
}

impl Filesystem for FuseFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEntry) {
        entry(reply, self.fs.lookup(parent.0, name(n)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // UTIME_OMIT arrives as None, UTIME_NOW as Now.
        let time = |t: Option<TimeOrNow>| {
            t.map(|t| match t {
                TimeOrNow::SpecificTime(t) => timespec(t),
                TimeOrNow::Now => self.now(),
            })
        };
        let set = SetAttr { mode, uid, gid, size, atime: time(atime), mtime: time(mtime) };
        match self.fs.setattr(ino.0, &set) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, n: &OsStr, mode: u32, _umask: u32, rdev: u32, reply: ReplyEntry) {
        // The kernel has already applied the umask (no FUSE_DONT_MASK).
        let r = self
            .owner(req, parent.0, false)
            .and_then(|(uid, gid, _)| self.fs.mknod(parent.0, name(n), mode, u64::from(rdev), uid, gid));
        entry(reply, r);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, n: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let r = self
            .owner(req, parent.0, true)
            .and_then(|(uid, gid, extra)| self.fs.mkdir(parent.0, name(n), (mode & 0o7777) | extra, uid, gid));
        entry(reply, r);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.fs.unlink(parent.0, name(n)));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.fs.rmdir(parent.0, name(n)));
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link: &OsStr, target: &Path, reply: ReplyEntry) {
        let r = self
            .owner(req, parent.0, false)
            .and_then(|(uid, gid, _)| self.fs.symlink(parent.0, name(link), target.as_os_str().as_bytes(), uid, gid));
        entry(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        n: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.fs.rename2(parent.0, name(n), newparent.0, name(newname), flags.bits()));
    }

    fn link(&self, _req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        entry(reply, self.fs.link(ino.0, newparent.0, name(newname)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.open(ino.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut buf = vec![0; size as usize];
        match self.fs.read(ino.0, offset, &mut buf) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // O_APPEND offsets are computed by the kernel (its page cache holds
        // the bytes at that offset), so the offset is used as given.
        match self.fs.write(ino.0, offset, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(ino.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok(); // memory is the storage: nothing to write back
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.fs.getattr(ino.0).and_then(|a| match a.kind {
            FileKind::Dir => self.fs.open(ino.0),
            _ => Err(Errno::ENOTDIR),
        });
        match r {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        // Our cookies are the kernel's offsets: resuming after one never
        // repeats or skips an entry.
        let r = self.fs.readdir(ino.0, offset, &mut |e| !reply.add(INodeNo(e.ino), e.cookie, file_type(e.kind), OsStr::from_bytes(&e.name)));
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.fs.release(ino.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(s.blocks, s.blocks_free, s.blocks_free, s.files, s.files_free, s.block_size, s.name_max, s.block_size);
    }

    fn create(&self, req: &Request, parent: INodeNo, n: &OsStr, mode: u32, _umask: u32, _flags: i32, reply: ReplyCreate) {
        let r = self.owner(req, parent.0, false).and_then(|(uid, gid, _)| {
            let a = self.fs.create(parent.0, name(n), mode & 0o7777, uid, gid)?;
            self.fs.open(a.ino)?;
            Ok(a)
        });
        match r {
            Ok(a) => reply.created(&TTL, &file_attr(&a), Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }
}

/// Mounts `fs` at `mountpoint` and serves it until unmounted
/// (`fusermount3 -u MOUNTPOINT`). Other users may use the mount
/// (`allow_other`), subject to the kernel's permission checks.
pub fn mount(fs: FileSystem, mountpoint: &Path, threads: usize) -> std::io::Result<()> {
    use fuser::{MountOption, SessionACL};
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName("shared-fs".into()),
        MountOption::Subtype("shared-fs".into()),
        MountOption::DefaultPermissions,
        MountOption::AutoUnmount,
    ];
    config.acl = SessionACL::All;
    config.n_threads = Some(threads.max(1));
    fuser::mount(FuseFs::new(fs), mountpoint, &config)
}

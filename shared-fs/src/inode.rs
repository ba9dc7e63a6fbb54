//! Inodes and the table that maps inode numbers to them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::dir::Dir;
use crate::errno::{Errno, Result};
use crate::file::FileData;
use crate::space::BLOCK_SIZE;
use crate::sync::{Mutex, RwLock};
use crate::types::{Attr, FileKind, Ino, Timespec};

/// Size Linux tmpfs reports per directory entry (`BOGO_DIRENT_SIZE`).
const DIRENT_BOGO_SIZE: u64 = 20;

pub(crate) struct Inode {
    pub ino: Ino,
    pub kind: FileKind,
    /// For directories: the directory containing it (answers ".." and the
    /// rename ancestry walk without taking inode locks). Changes only under
    /// the rename mutex with both directories write-locked.
    pub parent: AtomicU64,
    /// Outside `state` so that readers, who hold only the read lock, can
    /// update it.
    pub atime: Mutex<Timespec>,
    pub state: RwLock<State>,
}

pub(crate) struct State {
    /// Full `st_mode`, type bits included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// Outstanding `open`s; an unlinked inode lives until this reaches zero.
    pub opens: u32,
    /// Destroyed: gone from the table and its blocks freed. Whoever still
    /// holds the `Arc` (fetched before destruction) must answer `ENOENT`.
    pub dead: bool,
    pub body: Body,
}

pub(crate) enum Body {
    File(FileData),
    Dir(Dir),
    Symlink(Box<[u8]>),
    /// A fifo, socket or device node: only its `rdev`.
    Special(u64),
}

impl Inode {
    pub(crate) fn new(ino: Ino, parent: Ino, now: Timespec, state: State) -> Inode {
        let kind = match state.body {
            Body::File(_) => FileKind::File,
            Body::Dir(_) => FileKind::Dir,
            Body::Symlink(_) => FileKind::Symlink,
            Body::Special(_) => FileKind::from_mode(state.mode).unwrap_or(FileKind::Fifo),
        };
        Inode { ino, kind, parent: AtomicU64::new(parent), atime: Mutex::new(now), state: RwLock::new(state) }
    }

    pub(crate) fn parent(&self) -> Ino {
        self.parent.load(Ordering::Acquire)
    }

    pub(crate) fn set_parent(&self, parent: Ino) {
        self.parent.store(parent, Ordering::Release);
    }

    pub(crate) fn attr(&self, st: &State) -> Attr {
        let (size, blocks, rdev) = match &st.body {
            Body::File(f) => (f.size, f.sectors(), 0),
            Body::Dir(d) => ((d.len() as u64 + 2) * DIRENT_BOGO_SIZE, 0, 0),
            Body::Symlink(target) => (target.len() as u64, 0, 0),
            Body::Special(rdev) => (0, 0, *rdev),
        };
        Attr {
            ino: self.ino,
            kind: self.kind,
            mode: st.mode,
            nlink: st.nlink,
            uid: st.uid,
            gid: st.gid,
            size,
            blocks,
            blksize: BLOCK_SIZE as u32,
            rdev,
            atime: *self.atime.lock(),
            mtime: st.mtime,
            ctime: st.ctime,
        }
    }

    /// Read access time update with Linux "relatime" rules: only if atime is
    /// not newer than mtime/ctime or is a day old. Keeps hot read paths from
    /// writing a shared cache line on every read.
    pub(crate) fn touch_atime(&self, st: &State, now: Timespec) {
        let mut atime = self.atime.lock();
        if *atime <= st.mtime || *atime <= st.ctime || now.sec.saturating_sub(atime.sec) >= 24 * 3600 {
            *atime = now;
        }
    }

    pub(crate) fn set_atime(&self, t: Timespec) {
        *self.atime.lock() = t;
    }
}

impl State {
    pub(crate) fn new(mode: u32, uid: u32, gid: u32, nlink: u32, now: Timespec, body: Body) -> State {
        State { mode, uid, gid, nlink, mtime: now, ctime: now, opens: 0, dead: false, body }
    }

    /// A live directory that still has a name (creating in a removed one is `ENOENT`).
    pub(crate) fn linked_dir(&mut self) -> Result<&mut Dir> {
        if self.dead || self.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        match &mut self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn dir(&self) -> Result<&Dir> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub(crate) fn touch_modified(&mut self, now: Timespec) {
        self.mtime = now;
        self.ctime = now;
    }
}

type Shard = RwLock<BTreeMap<Ino, Arc<Inode>>>;

/// Number of shards; inode lookups on different shards never contend.
const SHARDS: usize = 64;

/// Maps live inode numbers to inodes. Sharded so it is never a global lock;
/// shard locks are leaves in the lock order (nothing is locked under them).
pub(crate) struct InodeTable {
    shards: Box<[Shard]>,
    next_ino: AtomicU64,
    live: AtomicU64,
}

impl InodeTable {
    pub(crate) fn new(first_ino: Ino) -> InodeTable {
        InodeTable {
            shards: (0..SHARDS).map(|_| RwLock::new(BTreeMap::new())).collect(),
            next_ino: AtomicU64::new(first_ino),
            live: AtomicU64::new(0),
        }
    }

    fn shard(&self, ino: Ino) -> &Shard {
        &self.shards[(ino % SHARDS as u64) as usize]
    }

    /// A fresh, never used inode number.
    pub(crate) fn next_ino(&self) -> Ino {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// Numbers handed out from now on are above `ino` (a restored inode).
    pub(crate) fn reserve_past(&self, ino: Ino) {
        self.next_ino.fetch_max(ino + 1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, ino: Ino) -> Result<Arc<Inode>> {
        self.shard(ino).read().get(&ino).cloned().ok_or(Errno::ENOENT)
    }

    pub(crate) fn insert(&self, inode: Arc<Inode>) {
        if self.shard(inode.ino).write().insert(inode.ino, inode).is_none() {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn remove(&self, ino: Ino) {
        if self.shard(ino).write().remove(&ino).is_some() {
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Vec<Arc<Inode>> {
        self.shards.iter().flat_map(|s| s.read().values().cloned().collect::<Vec<_>>()).collect()
    }
}

//! Advisory locks: POSIX byte-range locks (`fcntl` F_GETLK/F_SETLK/F_SETLKW)
//! and whole-file `flock`, as Linux does them, with owner ids.
//!
//! * Byte-range locks belong to an owner (a worker = a POSIX process).
//!   Locks conflict only between different owners and only if one is a
//!   write lock. An owner's own locks never overlap: a new request replaces
//!   the part of its locks it covers (so upgrade and downgrade happen in
//!   place, and unlocking the middle of a lock splits it), and merges with
//!   overlapping or adjacent locks of the same type. Closing any descriptor
//!   of a file drops the owner's range locks on it (`close_release`).
//! * `flock` locks belong to an open file description (`description` id),
//!   are independent of range locks (as on Linux), and conflict between
//!   different descriptions even of one owner. Converting between shared
//!   and exclusive drops the old lock first (not atomic, as on Linux).
//! * Blocked requests (`setlkw`, blocking `flock`) sleep on a condition
//!   variable. They are queued in arrival order; whenever locks are
//!   released, the releaser walks the queue in order and grants every
//!   waiter that no longer conflicts, installing its lock on its behalf, so
//!   waiters are served first come, first served. A waiter that still
//!   conflicts does not hold up later compatible ones (no head-of-line
//!   blocking, which would hide wait-for edges from deadlock detection),
//!   and a new request that conflicts with no held lock is granted at once
//!   even if an earlier waiter wants the range (as Linux does): so under an
//!   endless stream of overlapping readers a writer can wait long.
//! * `EDEADLK`: before sleeping, a range request follows "owner X waits for
//!   owner Y" edges (a queued range request waits for the owners of every
//!   held lock it conflicts with) and refuses to sleep if they lead back to
//!   the requester, cycles of any length included.
//! * A timed-out wait returns `ETIMEDOUT`; a wait interrupted because the
//!   host asked to kill the owner (`request_kill`) or because the owner's
//!   locks were released under it returns `EINTR`, which is what a real
//!   `F_SETLKW` returns when a signal arrives.
//!
//! All lock state sits in one table behind one (owner-aware) mutex: lock
//! calls are rare next to reads and writes, and deadlock detection needs
//! to see every file at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::sync::{self, Condvar, Mutex};
use crate::types::*;

/// Exclusive end of a lock "to EOF": one past Linux's `OFFSET_MAX`.
const INF: u64 = 1 << 63;

/// Without a clock (wasm32 before `set_lock_clock`), a timed wait sleeps in
/// slices of this and counts each slice as fully elapsed.
const NO_CLOCK_SLICE: Duration = Duration::from_millis(20);
/// A waiter rechecks at least this often whether its owner is being killed:
/// the host marks that with a plain atomic store (it cannot wake us).
const KILL_POLL: Duration = Duration::from_millis(50);

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct RangeLock {
    owner: Owner,
    start: u64,
    /// Exclusive; `INF` = to end of file.
    end: u64,
    write: bool,
}

#[derive(Copy, Clone, Debug)]
struct FlockHold {
    desc: u64,
    owner: Owner,
    exclusive: bool,
}

#[derive(Default)]
struct FileLocks {
    /// Linux order: each owner's locks are contiguous and sorted by start;
    /// owners in the order they first took a lock. `getlk` reports the first
    /// conflict in this order, like Linux.
    ranges: Vec<RangeLock>,
    flocks: Vec<FlockHold>,
}

#[derive(Copy, Clone, Debug)]
enum Request {
    Range { start: u64, end: u64, write: bool },
    Flock { desc: u64, exclusive: bool },
}

struct Waiter {
    id: u64,
    ino: Ino,
    owner: Owner,
    req: Request,
    granted: bool,
}

struct Table {
    files: BTreeMap<Ino, FileLocks>,
    queue: VecDeque<Waiter>,
    next_waiter: u64,
    clock: Option<fn() -> Duration>,
}

pub(crate) struct LockManager {
    table: Mutex<Table>,
    cv: Condvar,
}

#[cfg(not(target_arch = "wasm32"))]
fn default_clock() -> Option<fn() -> Duration> {
    fn since_start() -> Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
    Some(since_start)
}

#[cfg(target_arch = "wasm32")]
fn default_clock() -> Option<fn() -> Duration> {
    None // std::time::Instant panics on wasm32-unknown-unknown
}

impl LockManager {
    pub(crate) fn new() -> LockManager {
        LockManager {
            table: Mutex::new(Table { files: BTreeMap::new(), queue: VecDeque::new(), next_waiter: 1, clock: default_clock() }),
            cv: Condvar::new(),
        }
    }

    /// Wakes blocked waiters so they re-check (e.g. after a kill request).
    pub(crate) fn wake_all(&self) {
        self.cv.notify_all();
    }

    /// Drops every range lock, flock and queued request of `owner`.
    pub(crate) fn release_owner(&self, owner: Owner) -> usize {
        let mut t = self.table.lock();
        let mut n = 0;
        for fl in t.files.values_mut() {
            let before = fl.ranges.len() + fl.flocks.len();
            fl.ranges.retain(|l| l.owner != owner);
            fl.flocks.retain(|f| f.owner != owner);
            n += before - fl.ranges.len() - fl.flocks.len();
        }
        t.queue.retain(|w| w.owner != owner);
        t.files.retain(|_, fl| !fl.ranges.is_empty() || !fl.flocks.is_empty());
        grant_waiters(&mut t);
        drop(t);
        self.cv.notify_all();
        n
    }
}

fn bounds(range: LockRange) -> Result<(u64, u64)> {
    if range.start >= INF {
        return Err(Errno::EINVAL);
    }
    if range.len == 0 {
        return Ok((range.start, INF));
    }
    match range.start.checked_add(range.len) {
        Some(end) if end <= INF => Ok((range.start, end)),
        _ => Err(Errno::EOVERFLOW), // as Linux for l_start + l_len - 1 > OFFSET_MAX
    }
}

fn to_range(start: u64, end: u64) -> LockRange {
    LockRange { start, len: if end == INF { 0 } else { end - start } }
}

fn range_conflicts(l: &RangeLock, owner: Owner, start: u64, end: u64, write: bool) -> bool {
    l.owner != owner && l.start < end && start < l.end && (l.write || write)
}

fn flock_conflicts(f: &FlockHold, desc: u64, exclusive: bool) -> bool {
    f.desc != desc && (f.exclusive || exclusive)
}

fn blockers(fl: Option<&FileLocks>, owner: Owner, req: Request) -> Vec<Owner> {
    let Some(fl) = fl else { return Vec::new() };
    match req {
        Request::Range { start, end, write } => {
            fl.ranges.iter().filter(|l| range_conflicts(l, owner, start, end, write)).map(|l| l.owner).collect()
        }
        Request::Flock { desc, exclusive } => {
            fl.flocks.iter().filter(|f| flock_conflicts(f, desc, exclusive)).map(|f| f.owner).collect()
        }
    }
}

/// Sets (`kind = Some(write)`) or clears (`None`) `[start, end)` for `owner`.
fn apply_range(fl: &mut FileLocks, owner: Owner, start: u64, end: u64, kind: Option<bool>) {
    let pos = fl.ranges.iter().position(|l| l.owner == owner);
    let mine: Vec<RangeLock> = fl.ranges.iter().filter(|l| l.owner == owner).copied().collect();
    fl.ranges.retain(|l| l.owner != owner);
    let (mut ns, mut ne) = (start, end);
    let mut out = Vec::with_capacity(mine.len() + 2);
    for l in mine {
        match kind {
            // Same type, overlapping or adjacent: absorb it.
            Some(w) if l.write == w && l.end >= start && l.start <= end => {
                ns = ns.min(l.start);
                ne = ne.max(l.end);
            }
            // Covered part is replaced; what sticks out on either side stays.
            _ if l.start < end && start < l.end => {
                if l.start < start {
                    out.push(RangeLock { end: start, ..l });
                }
                if l.end > end {
                    out.push(RangeLock { start: end, ..l });
                }
            }
            _ => out.push(l),
        }
    }
    if let Some(write) = kind {
        out.push(RangeLock { owner, start: ns, end: ne, write });
    }
    out.sort_by_key(|l| l.start);
    let at = pos.unwrap_or(fl.ranges.len()).min(fl.ranges.len());
    fl.ranges.splice(at..at, out);
}

fn apply_request(t: &mut Table, ino: Ino, owner: Owner, req: Request) {
    let fl = t.files.entry(ino).or_default();
    match req {
        Request::Range { start, end, write } => apply_range(fl, owner, start, end, Some(write)),
        Request::Flock { desc, exclusive } => {
            fl.flocks.retain(|f| f.desc != desc);
            fl.flocks.push(FlockHold { desc, owner, exclusive });
        }
    }
}

/// Grants, in arrival order, every queued request that no longer conflicts.
fn grant_waiters(t: &mut Table) -> bool {
    let mut any = false;
    for i in 0..t.queue.len() {
        let w = &t.queue[i];
        if w.granted || !blockers(t.files.get(&w.ino), w.owner, w.req).is_empty() {
            continue;
        }
        let (ino, owner, req) = (w.ino, w.owner, w.req);
        apply_request(t, ino, owner, req);
        t.queue[i].granted = true;
        any = true;
    }
    any
}

/// Would `owner` waiting for `blocked_by` close a cycle of waiting owners?
fn would_deadlock(t: &Table, owner: Owner, blocked_by: Vec<Owner>) -> bool {
    let mut todo = blocked_by;
    let mut seen = BTreeSet::new();
    while let Some(o) = todo.pop() {
        if o == owner {
            return true;
        }
        if !seen.insert(o) {
            continue;
        }
        for w in t.queue.iter().filter(|w| w.owner == o && !w.granted) {
            if let Request::Range { .. } = w.req {
                todo.extend(blockers(t.files.get(&w.ino), w.owner, w.req));
            }
        }
    }
    false
}

fn kill_requested(owner: Owner) -> bool {
    let s = sync::record(owner).safe.load(std::sync::atomic::Ordering::Acquire);
    s == sync::KILL_PENDING || s == sync::KILLED
}

impl FileSystem {
    /// `F_GETLK`: the first lock of another owner that would block `kind`
    /// on `range` (in Linux's list order), or `None` if it would be granted.
    pub fn getlk(&self, ino: Ino, owner: Owner, range: LockRange, kind: LockType) -> Result<Option<Conflict>> {
        self.inode(ino)?;
        let (start, end) = bounds(range)?;
        let write = match kind {
            LockType::Read => false,
            LockType::Write => true,
            LockType::Unlock => return Err(Errno::EINVAL),
        };
        let t = self.locks.table.lock();
        let hit = t.files.get(&ino).and_then(|fl| fl.ranges.iter().find(|l| range_conflicts(l, owner, start, end, write)));
        Ok(hit.map(|l| Conflict {
            range: to_range(l.start, l.end),
            kind: if l.write { LockType::Write } else { LockType::Read },
            owner: l.owner,
        }))
    }

    /// `F_SETLK`: sets or clears a byte-range lock without waiting; `EAGAIN`
    /// if another owner holds a conflicting lock.
    pub fn setlk(&self, ino: Ino, owner: Owner, range: LockRange, kind: LockType) -> Result<()> {
        self.setlk_inner(ino, owner, range, kind, false, None)
    }

    /// `F_SETLKW`: like `setlk` but sleeps until the lock can be granted.
    /// `EDEADLK` if waiting would deadlock, `ETIMEDOUT` after `timeout`,
    /// `EINTR` if the owner is being killed or its locks were released.
    pub fn setlkw(&self, ino: Ino, owner: Owner, range: LockRange, kind: LockType, timeout: Option<Duration>) -> Result<()> {
        self.setlk_inner(ino, owner, range, kind, true, timeout)
    }

    fn setlk_inner(&self, ino: Ino, owner: Owner, range: LockRange, kind: LockType, wait: bool, timeout: Option<Duration>) -> Result<()> {
        self.inode(ino)?;
        let (start, end) = bounds(range)?;
        let write = match kind {
            LockType::Read => false,
            LockType::Write => true,
            LockType::Unlock => {
                let mut t = self.locks.table.lock();
                if let Some(fl) = t.files.get_mut(&ino) {
                    apply_range(fl, owner, start, end, None);
                }
                self.after_release(t);
                return Ok(());
            }
        };
        let req = Request::Range { start, end, write };
        let mut t = self.locks.table.lock();
        let blocked_by = blockers(t.files.get(&ino), owner, req);
        if blocked_by.is_empty() {
            apply_request(&mut t, ino, owner, req);
            // A downgrade may unblock readers.
            self.after_release(t);
            return Ok(());
        }
        if !wait {
            return Err(Errno::EAGAIN);
        }
        if would_deadlock(&t, owner, blocked_by) {
            return Err(Errno::EDEADLK);
        }
        self.wait_for_grant(t, ino, owner, req, timeout)
    }

    /// Drops `owner`'s byte-range locks on `ino`: call it when `owner`
    /// closes ANY descriptor of the file (POSIX), not only the last one,
    /// and before the matching `release` (locks are keyed by inode number,
    /// which is never reused, so a forgotten call leaks only table space).
    pub fn close_release(&self, ino: Ino, owner: Owner) {
        let mut t = self.locks.table.lock();
        if let Some(fl) = t.files.get_mut(&ino) {
            fl.ranges.retain(|l| l.owner != owner);
        }
        self.after_release(t);
    }

    /// `flock(2)` on the open file description `description` (an id the
    /// caller keeps unique per open file description). `EWOULDBLOCK` when
    /// `nonblocking` and held by another description. Unlock when the
    /// description's last descriptor closes.
    pub fn flock(&self, ino: Ino, description: u64, owner: Owner, op: FlockOp, nonblocking: bool) -> Result<()> {
        self.flock_timeout(ino, description, owner, op, nonblocking, None)
    }

    /// Blocking `flock` with a timeout (`ETIMEDOUT`).
    pub fn flock_timeout(&self, ino: Ino, description: u64, owner: Owner, op: FlockOp, nonblocking: bool, timeout: Option<Duration>) -> Result<()> {
        self.inode(ino)?;
        let exclusive = match op {
            FlockOp::Shared => false,
            FlockOp::Exclusive => true,
            FlockOp::Unlock => {
                let mut t = self.locks.table.lock();
                if let Some(fl) = t.files.get_mut(&ino) {
                    fl.flocks.retain(|f| f.desc != description);
                }
                self.after_release(t);
                return Ok(());
            }
        };
        let mut t = self.locks.table.lock();
        let fl = t.files.entry(ino).or_default();
        let mut converted = false;
        if let Some(i) = fl.flocks.iter().position(|f| f.desc == description) {
            if fl.flocks[i].exclusive == exclusive {
                return Ok(());
            }
            fl.flocks.remove(i); // Linux converts by unlocking first
            converted = true;
        }
        let req = Request::Flock { desc: description, exclusive };
        if blockers(t.files.get(&ino), owner, req).is_empty() {
            apply_request(&mut t, ino, owner, req);
            self.after_release(t);
            return Ok(());
        }
        if converted && grant_waiters(&mut t) {
            self.locks.cv.notify_all();
        }
        if nonblocking {
            return Err(Errno::EWOULDBLOCK);
        }
        self.wait_for_grant(t, ino, owner, req, timeout)
    }

    /// Sets the monotonic clock used for lock timeouts (wasm32 has none by
    /// default: pass e.g. one built on `performance.now()`).
    pub fn set_lock_clock(&self, clock: fn() -> Duration) {
        self.locks.table.lock().clock = Some(clock);
    }

    fn after_release(&self, mut t: sync::MutexGuard<'_, Table>) {
        t.files.retain(|_, fl| !fl.ranges.is_empty() || !fl.flocks.is_empty());
        if !t.queue.is_empty() && grant_waiters(&mut t) {
            drop(t);
            self.locks.cv.notify_all();
        }
    }

    fn wait_for_grant(&self, mut t: sync::MutexGuard<'_, Table>, ino: Ino, owner: Owner, req: Request, timeout: Option<Duration>) -> Result<()> {
        let id = t.next_waiter;
        t.next_waiter += 1;
        t.queue.push_back(Waiter { id, ino, owner, req, granted: false });
        let clock = t.clock;
        let deadline = match (timeout, clock) {
            (Some(d), Some(c)) => Some(c().saturating_add(d)),
            _ => None,
        };
        let mut budget = timeout; // used only without a clock
        loop {
            let Some(i) = t.queue.iter().position(|w| w.id == id) else {
                return Err(Errno::EINTR); // release_all(owner) dropped the request
            };
            if t.queue[i].granted {
                t.queue.remove(i);
                return Ok(());
            }
            let slice = match (timeout, clock, deadline) {
                (None, ..) => None,
                (Some(_), Some(c), Some(dl)) => {
                    let now = c();
                    if now >= dl {
                        Some(Duration::ZERO)
                    } else {
                        Some(dl - now)
                    }
                }
                _ => {
                    let left = budget.unwrap_or_default();
                    let s = left.min(NO_CLOCK_SLICE);
                    budget = Some(left - s);
                    Some(s)
                }
            };
            let slice = Some(slice.map_or(KILL_POLL, |s| s.min(KILL_POLL)));
            if kill_requested(owner) || slice == Some(Duration::ZERO) {
                t.queue.remove(i);
                let err = if kill_requested(owner) { Errno::EINTR } else { Errno::ETIMEDOUT };
                // Our request may have been the one holding others back.
                self.after_release(t);
                return Err(err);
            }
            t = self.locks.cv.wait(t, slice);
        }
    }

    /// Every held lock, for a status panel. Paths are found by a bounded
    /// search from the root, outside the lock table's mutex.
    pub fn lock_table(&self) -> Vec<LockInfo> {
        let mut out = Vec::new();
        {
            let t = self.locks.table.lock();
            for (&ino, fl) in &t.files {
                let waiting = |pred: &dyn Fn(&Request, Owner) -> bool| {
                    t.queue.iter().filter(|w| w.ino == ino && !w.granted && pred(&w.req, w.owner)).count()
                };
                for l in &fl.ranges {
                    let waiters = waiting(&|r, o| match *r {
                        Request::Range { start, end, write } => range_conflicts(l, o, start, end, write),
                        _ => false,
                    });
                    let r = to_range(l.start, l.end);
                    out.push(LockInfo {
                        ino,
                        path: None,
                        start: r.start,
                        len: r.len,
                        kind: if l.write { HeldKind::Write } else { HeldKind::Read },
                        owner: l.owner,
                        description: None,
                        waiters,
                    });
                }
                for f in &fl.flocks {
                    let waiters = waiting(&|r, _| match *r {
                        Request::Flock { desc, exclusive } => flock_conflicts(f, desc, exclusive),
                        _ => false,
                    });
                    out.push(LockInfo {
                        ino,
                        path: None,
                        start: 0,
                        len: 0,
                        kind: if f.exclusive { HeldKind::FlockExclusive } else { HeldKind::FlockShared },
                        owner: f.owner,
                        description: Some(f.desc),
                        waiters,
                    });
                }
            }
        }
        let mut paths: BTreeMap<Ino, Option<Vec<u8>>> = BTreeMap::new();
        for info in &mut out {
            info.path = paths.entry(info.ino).or_insert_with(|| self.path_of(info.ino)).clone();
        }
        out
    }

    /// Some path naming `ino` (breadth-first from the root, bounded).
    pub(crate) fn path_of(&self, ino: Ino) -> Option<Vec<u8>> {
        const LIMIT: usize = 100_000;
        if ino == Self::ROOT {
            return Some(b"/".to_vec());
        }
        let mut todo = VecDeque::from([(Self::ROOT, Vec::new())]);
        let mut seen = 0;
        while let Some((dir, path)) = todo.pop_front() {
            let mut found = None;
            let _ = self.readdir(dir, 2, &mut |e| {
                seen += 1;
                let mut p: Vec<u8> = path.clone();
                p.push(b'/');
                p.extend_from_slice(&e.name);
                if e.ino == ino {
                    found = Some(p);
                    return false;
                }
                if e.kind == FileKind::Dir {
                    todo.push_back((e.ino, p));
                }
                seen < LIMIT
            });
            if found.is_some() || seen >= LIMIT {
                return found;
            }
        }
        None
    }
}

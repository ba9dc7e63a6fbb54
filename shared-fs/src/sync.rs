//! The only place that names concrete lock types.
//!
//! Every internal lock is an owner-aware lock word (`RawLock`): a worker that
//! dies while holding one must not leave it held forever, so
//!
//! * a write holder records its owner id in the lock itself, and
//! * every holder (reader or writer) whose thread has a current owner
//!   (`set_current_owner`, one worker = one thread) lists the lock in its
//!   owner's record (`OwnerRecord::held`), a few plain stores on a cache line
//!   only that thread writes.
//!
//! `force_release(owner)` walks that list and unlocks what a dead owner held;
//! `RwLock::steal_write` lets the repair of a dead owner's half-done operation
//! take over its write locks without anyone else seeing the half-done state.
//!
//! Waiting sleeps on a `std` Condvar (futex-based on wasm32+atomics, so it
//! works in workers) in a small global table of buckets hashed by lock
//! address; those bucket mutexes are held only inside this module for a few
//! instructions, never across filesystem code, so a worker stopped at a safe
//! point (or at a kill point) never holds one.
//!
//! Poisoning does not exist here: a panic is a bug we do not want to turn
//! into a second one.

use core::cell::{Cell, UnsafeCell};
use core::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::PoisonError;
use std::time::Duration;

use crate::types::Owner;

/// Lock waits observed, process-wide (one filesystem per wasm module in practice).
static CONTENTION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn contention() -> u64 {
    CONTENTION.load(Ordering::Relaxed)
}

fn note_wait() {
    CONTENTION.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------- owners

/// Locks one thread may hold at once and still have tracked. The deepest
/// operation (rename) holds the rename mutex, four inode locks and a leaf lock.
const HELD_SLOTS: usize = 32;

/// Safe-point states of an owner (see `owner.rs`).
pub const OUTSIDE: u32 = 0;
pub const INSIDE: u32 = 1;
pub const KILL_PENDING: u32 = 2;
pub const KILLED: u32 = 3;

/// Everything shared-fs knows about one owner (worker). Records are created on
/// first use and never freed (there are as many as worker ids ever used).
pub(crate) struct OwnerRecord {
    pub(crate) id: Owner,
    /// Safe-point state word: `OUTSIDE`, `INSIDE`, `KILL_PENDING`, `KILLED`.
    pub(crate) safe: AtomicU32,
    /// Address of each lock held (bit 0 set for write/exclusive), 0 = free slot.
    held: [AtomicUsize; HELD_SLOTS],
}

static REGISTRY: std::sync::Mutex<Vec<&'static OwnerRecord>> = std::sync::Mutex::new(Vec::new());

thread_local! {
    static CURRENT: Cell<Option<&'static OwnerRecord>> = const { Cell::new(None) };
}

/// The record of `owner`, created on first use.
pub(crate) fn record(owner: Owner) -> &'static OwnerRecord {
    let mut reg = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(r) = reg.iter().find(|r| r.id == owner) {
        return r;
    }
    let r: &'static OwnerRecord = Box::leak(Box::new(OwnerRecord {
        id: owner,
        safe: AtomicU32::new(OUTSIDE),
        held: [const { AtomicUsize::new(0) }; HELD_SLOTS],
    }));
    reg.push(r);
    r
}

/// The current thread's owner record, if `set_current_owner` was called.
pub(crate) fn current() -> Option<&'static OwnerRecord> {
    CURRENT.with(|c| c.get())
}

/// Makes `owner` the owner of every lock this thread takes from now on.
/// Call it while holding no shared-fs lock (a worker calls it once at start).
pub fn set_current_owner(owner: Owner) {
    let r = record(owner);
    CURRENT.with(|c| c.set(Some(r)));
}

/// Forgets the current thread's owner (its locks are then not tracked).
pub fn clear_current_owner() {
    CURRENT.with(|c| c.set(None));
}

pub fn current_owner() -> Option<Owner> {
    current().map(|r| r.id)
}

impl OwnerRecord {
    fn track(&self, tag: usize) {
        for slot in &self.held {
            if slot.load(Ordering::Relaxed) == 0 {
                slot.store(tag, Ordering::Release);
                return;
            }
        }
        // More than HELD_SLOTS locks at once: left untracked (never happens).
    }

    fn untrack(&self, tag: usize) -> bool {
        for slot in &self.held {
            if slot.load(Ordering::Relaxed) == tag {
                slot.store(0, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// Number of internal locks this owner holds (tracked ones).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn held_count(&self) -> usize {
        self.held.iter().filter(|s| s.load(Ordering::Acquire) != 0).count()
    }
}

/// Unlocks every internal lock `owner` still holds; returns how many.
///
/// # Safety
/// `owner` must never run again (terminated, or parked forever by a kill
/// point): its guards are abandoned, not dropped. The locks themselves are
/// still allocated, since the dead owner's stack still owns the `Arc`s that
/// keep them alive (a terminated worker's memory is never reclaimed).
pub(crate) unsafe fn force_release(owner: Owner) -> usize {
    let rec = record(owner);
    let mut n = 0;
    for slot in &rec.held {
        let tag = slot.swap(0, Ordering::AcqRel);
        if tag != 0 {
            let raw = &*((tag & !1) as *const RawLock);
            if tag & 1 == 1 {
                raw.unlock_write();
            } else {
                raw.unlock_read();
            }
            n += 1;
        }
    }
    n
}

fn owner_word(rec: Option<&OwnerRecord>) -> u64 {
    // 0 = nobody known; otherwise 1<<32 | owner, so owner 0 is representable.
    rec.map_or(0, |r| (1 << 32) | r.id as u64)
}

// ---------------------------------------------------------------- parking

struct Bucket {
    m: std::sync::Mutex<()>,
    cv: std::sync::Condvar,
}

const BUCKETS: usize = 64;
static PARKING: [Bucket; BUCKETS] =
    [const { Bucket { m: std::sync::Mutex::new(()), cv: std::sync::Condvar::new() } }; BUCKETS];

fn bucket(addr: usize) -> &'static Bucket {
    &PARKING[(addr >> 4) % BUCKETS]
}

// ---------------------------------------------------------------- RawLock

const WRITER: u32 = 1 << 31;
/// Someone sleeps (or is about to) on this lock's bucket.
const PARKED: u32 = 1 << 30;
/// A writer sleeps: new readers wait too, so writers are not starved.
const WRITER_PARKED: u32 = 1 << 29;
const READERS: u32 = WRITER_PARKED - 1;

/// A reader-writer lock word that knows who writes.
pub(crate) struct RawLock {
    state: AtomicU32,
    /// `owner_word` of the write holder (0 if none or unknown).
    writer: AtomicU64,
}

impl RawLock {
    const fn new() -> RawLock {
        RawLock { state: AtomicU32::new(0), writer: AtomicU64::new(0) }
    }

    fn addr(&self) -> usize {
        self as *const RawLock as usize
    }

    fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | WRITER_PARKED) != 0 || s & READERS == READERS {
                return false;
            }
            match self.state.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    fn try_write(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | READERS) != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(s, s | WRITER, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    fn read(&self) {
        if !self.try_read() {
            note_wait();
            self.park_until(RawLock::try_read, 0);
        }
        if let Some(rec) = current() {
            rec.track(self.addr());
        }
    }

    fn write(&self) {
        if !self.try_write() {
            note_wait();
            self.park_until(RawLock::try_write, WRITER_PARKED);
        }
        self.claim_write(current());
    }

    fn claim_write(&self, rec: Option<&OwnerRecord>) {
        self.writer.store(owner_word(rec), Ordering::Relaxed);
        if let Some(rec) = rec {
            rec.track(self.addr() | 1);
        }
    }

    /// Sleeps until `try_lock` succeeds. The PARKED bit is set under the
    /// bucket mutex before the last check, and unlockers that see it notify
    /// under the same mutex, so no wake-up is lost.
    fn park_until(&self, try_lock: fn(&RawLock) -> bool, extra: u32) {
        let b = bucket(self.addr());
        loop {
            if try_lock(self) {
                return;
            }
            let g = b.m.lock().unwrap_or_else(PoisonError::into_inner);
            self.state.fetch_or(PARKED | extra, Ordering::SeqCst);
            if try_lock(self) {
                return;
            }
            drop(b.cv.wait(g).unwrap_or_else(PoisonError::into_inner));
        }
    }

    fn unlock_read(&self) {
        let old = self.state.fetch_sub(1, Ordering::Release);
        if old & PARKED != 0 {
            self.wake();
        }
    }

    fn unlock_write(&self) {
        self.writer.store(0, Ordering::Relaxed);
        let old = self.state.fetch_and(!WRITER, Ordering::Release);
        if old & PARKED != 0 {
            self.wake();
        }
    }

    fn wake(&self) {
        let b = bucket(self.addr());
        let _g = b.m.lock().unwrap_or_else(PoisonError::into_inner);
        // Sleepers that still cannot get the lock set the bits again.
        self.state.fetch_and(!(PARKED | WRITER_PARKED), Ordering::SeqCst);
        b.cv.notify_all();
    }

    fn release_read(&self) {
        if let Some(rec) = current() {
            rec.untrack(self.addr());
        }
        self.unlock_read();
    }

    fn release_write(&self) {
        if let Some(rec) = current() {
            rec.untrack(self.addr() | 1);
        }
        self.unlock_write();
    }

    /// Owner id of the write holder, if a tracked owner holds it for writing.
    pub(crate) fn write_owner(&self) -> Option<Owner> {
        let w = self.writer.load(Ordering::Relaxed);
        (w != 0 && self.state.load(Ordering::Relaxed) & WRITER != 0).then_some(w as u32)
    }
}

// ---------------------------------------------------------------- Mutex

pub(crate) struct Mutex<T> {
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serializes all access to `data`.
unsafe impl<T: Send> Send for Mutex<T> {}
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex { raw: RawLock::new(), data: UnsafeCell::new(value) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.write();
        MutexGuard { lock: self, _not_send: core::marker::PhantomData }
    }
}

pub(crate) struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    /// Guards stay on the thread whose owner record lists the lock.
    _not_send: core::marker::PhantomData<*const ()>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.release_write();
    }
}

// ---------------------------------------------------------------- RwLock

pub(crate) struct RwLock<T> {
    raw: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T`, a writer has it alone.
unsafe impl<T: Send> Send for RwLock<T> {}
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        RwLock { raw: RawLock::new(), data: UnsafeCell::new(value) }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.raw.read();
        RwLockReadGuard { lock: self, _not_send: core::marker::PhantomData }
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.raw.write();
        RwLockWriteGuard { lock: self, _not_send: core::marker::PhantomData }
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn write_owner(&self) -> Option<Owner> {
        self.raw.write_owner()
    }

    /// If the dead owner `dead` holds this lock for writing, transfers it to
    /// the calling thread (no one else can see the state in between).
    ///
    /// # Safety
    /// `dead` must never run again (see `force_release`).
    pub(crate) unsafe fn steal_write(&self, dead: Owner) -> Option<RwLockWriteGuard<'_, T>> {
        if self.raw.write_owner() != Some(dead) {
            return None;
        }
        record(dead).untrack(self.raw.addr() | 1);
        self.raw.claim_write(current());
        Some(RwLockWriteGuard { lock: self, _not_send: core::marker::PhantomData })
    }
}

pub(crate) struct RwLockReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    _not_send: core::marker::PhantomData<*const ()>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds a read lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.release_read();
    }
}

pub(crate) struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    _not_send: core::marker::PhantomData<*const ()>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the write lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the write lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.release_write();
    }
}

// ---------------------------------------------------------------- Condvar

/// A condition variable for `Mutex`: a generation counter under a private
/// std mutex. A waiter reads the generation while still holding the `Mutex`,
/// so a notify made after it released the `Mutex` always changes what it waits on.
pub(crate) struct Condvar {
    generation: std::sync::Mutex<u64>,
    cv: std::sync::Condvar,
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl Condvar {
    pub(crate) const fn new() -> Condvar {
        Condvar { generation: std::sync::Mutex::new(0), cv: std::sync::Condvar::new() }
    }

    /// Releases `guard`, sleeps until notified (or `timeout` passes, or
    /// spuriously), and locks again. Callers re-check their condition.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>, timeout: Option<Duration>) -> MutexGuard<'a, T> {
        let mutex = guard.lock;
        let mut gen = self.generation.lock().unwrap_or_else(PoisonError::into_inner);
        let start = *gen;
        drop(guard);
        match timeout {
            None => {
                while *gen == start {
                    gen = self.cv.wait(gen).unwrap_or_else(PoisonError::into_inner);
                }
            }
            // One bounded sleep (no Instant here: it does not exist on
            // wasm32-unknown-unknown); the caller keeps the deadline.
            Some(d) if *gen == start => {
                gen = self.cv.wait_timeout(gen, d).unwrap_or_else(PoisonError::into_inner).0;
            }
            Some(_) => {}
        }
        drop(gen);
        mutex.lock()
    }

    pub(crate) fn notify_all(&self) {
        *self.generation.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn rwlock_excludes_and_shares() {
        let l = Arc::new(RwLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *l.write() += 1;
                        let _r = l.read();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*l.read(), 80_000);
        let a = l.read();
        let b = l.read();
        assert_eq!(*a + *b, 160_000);
    }

    #[test]
    fn write_owner_is_recorded_and_force_release_frees() {
        let l: &'static RwLock<u32> = Box::leak(Box::new(RwLock::new(0)));
        let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
        let r: &'static RwLock<u32> = Box::leak(Box::new(RwLock::new(0)));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            set_current_owner(7001);
            let g = l.write();
            let h = m.lock();
            let i = r.read();
            tx.send(()).unwrap();
            // Dies holding all three.
            core::mem::forget((g, h, i));
        });
        rx.recv().unwrap();
        assert_eq!(l.write_owner(), Some(7001));
        assert_eq!(record(7001).held_count(), 3);
        assert_eq!(unsafe { force_release(7001) }, 3);
        *l.write() += 1;
        *m.lock() += 1;
        *r.write() += 1;
        assert_eq!(record(7001).held_count(), 0);
    }
}

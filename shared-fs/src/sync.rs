//! The only place that names concrete lock types.
//!
//! Every lock in the filesystem goes through these wrappers so that a later
//! change can make each lock word carry an owner id (to recover the locks of a
//! worker that died) without touching the rest of the crate. They also count
//! contention (a lock that was not free on the first try) for `Stats`, and
//! ignore poisoning: a panic is a bug we do not want to turn into a second one.

use std::sync::{PoisonError, TryLockError};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) use std::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

/// Lock waits observed, process-wide (one filesystem per wasm module in practice).
static CONTENTION: AtomicU64 = AtomicU64::new(0);

pub(crate) fn contention() -> u64 {
    CONTENTION.load(Ordering::Relaxed)
}

fn note_wait() {
    CONTENTION.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        match self.0.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                note_wait();
                self.0.lock().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        RwLock(std::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        match self.0.try_read() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                note_wait();
                self.0.read().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        match self.0.try_write() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                note_wait();
                self.0.write().unwrap_or_else(PoisonError::into_inner)
            }
        }
    }
}

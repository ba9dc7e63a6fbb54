//! Owners (workers), the safe-point handshake, and recovery from a dead owner.
//!
//! # Contract with the host (process manager)
//!
//! A worker calls `set_current_owner(id)` once, then brackets every call
//! into module code that may touch shared-fs with `fs.enter(id)` ... drop
//! of the returned `SafePoint`. To stop a worker the host (which never
//! blocks: it may be the main thread) calls `fs.request_kill(id)`:
//!
//! * `Killed`: the worker is outside and can no longer enter; terminate it.
//! * `KillPending`: it is inside. Its blocking lock waits return `EINTR`
//!   at once; when it leaves, the state becomes `Killed` (poll
//!   `safe_point_state`), then terminate it.
//!
//! After `Worker.terminate()`, some worker (not the main thread: this may
//! wait for locks) calls `unsafe { fs.release_all(id) }`: it frees the dead owner's
//! byte-range locks, flocks and queued requests, waking waiters; completes
//! or undoes the operation it was in (see `journal.rs`), in case it was
//! terminated inside after all (a hard timeout); force-releases the
//! internal locks it held; and resets the id to `Outside` for reuse.

use std::sync::atomic::Ordering;

use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::sync::{self, OwnerRecord, INSIDE, KILLED, KILL_PENDING, OUTSIDE};
use crate::types::{Owner, SafePointState};

/// Proof of being inside shared-fs code; leaving happens on drop.
pub struct SafePoint {
    rec: &'static OwnerRecord,
}

impl Drop for SafePoint {
    fn drop(&mut self) {
        if self.rec.safe.compare_exchange(INSIDE, OUTSIDE, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // A kill was requested while inside: now outside, and stays out.
            self.rec.safe.store(KILLED, Ordering::Release);
        }
    }
}

impl SafePoint {
    pub fn owner(&self) -> Owner {
        self.rec.id
    }
}

/// What `release_all` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Byte-range locks, flocks and queued requests dropped.
    pub locks: usize,
    /// Internal (inode, allocator, ...) locks force-released.
    pub internal: usize,
    /// The operation found in flight and repaired: (name, last step done).
    pub repaired: Option<(&'static str, usize)>,
}

fn state_of(word: u32) -> SafePointState {
    match word {
        OUTSIDE => SafePointState::Outside,
        INSIDE => SafePointState::Inside,
        KILL_PENDING => SafePointState::KillPending,
        _ => SafePointState::Killed,
    }
}

/// The host's side of the handshake, on a safe-point word it reaches through
/// `load` and `compare_exchange` (`Err` holds the value found): an owner
/// outside is stopped for good (`Killed`: terminate it); one inside is asked
/// to stop (`KillPending`: ask again once it has left). `request_kill` uses
/// it, and so does a host that reaches the word from another wasm module
/// (a page's main thread, with `Atomics`).
pub fn request_stop(load: impl Fn() -> u32, compare_exchange: impl Fn(u32, u32) -> core::result::Result<u32, u32>) -> SafePointState {
    loop {
        let s = load();
        let next = match s {
            OUTSIDE => KILLED,
            INSIDE => KILL_PENDING,
            _ => return state_of(s),
        };
        if compare_exchange(s, next).is_ok() {
            return state_of(next);
        }
    }
}

impl FileSystem {
    /// Enters shared-fs code as `owner` (also makes it the thread's current
    /// owner). `EINTR` if a kill was requested; `EBUSY` if already inside.
    pub fn enter(&self, owner: Owner) -> Result<SafePoint> {
        sync::set_current_owner(owner);
        let rec = sync::record(owner);
        match rec.safe.compare_exchange(OUTSIDE, INSIDE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(SafePoint { rec }),
            Err(INSIDE) => Err(Errno::EBUSY),
            Err(_) => Err(Errno::EINTR),
        }
    }

    /// Host side: asks `owner` to stop; never blocks. See the module docs.
    pub fn request_kill(&self, owner: Owner) -> SafePointState {
        let word = &sync::record(owner).safe;
        let state = request_stop(
            || word.load(Ordering::Acquire),
            |from, to| word.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire),
        );
        if state == SafePointState::KillPending {
            self.locks.wake_all(); // blocked lock waits give up with EINTR
        }
        state
    }

    /// The owner's safe-point word itself, for a host that cannot call into
    /// this module (a page's main thread runs another wasm module): it does
    /// the same transitions with `Atomics.compareExchange` on this address.
    /// Values: `SAFE_POINT_OUTSIDE`, `_INSIDE`, `_KILL_PENDING`, `_KILLED`.
    pub fn safe_point_word(&self, owner: Owner) -> &'static std::sync::atomic::AtomicU32 {
        &sync::record(owner).safe
    }

    pub fn safe_point_state(&self, owner: Owner) -> SafePointState {
        state_of(sync::record(owner).safe.load(Ordering::Acquire))
    }

    /// Frees everything the dead `owner` held and repairs the operation it
    /// was in. May wait for locks, so not on the browser's main thread.
    ///
    /// # Safety
    /// `owner` never runs again: its thread was terminated (or parked
    /// forever), or never ran. Its abandoned lock guards are released here,
    /// so a live owner would later unlock locks it no longer holds.
    pub unsafe fn release_all(&self, owner: Owner) -> Released {
        // SAFETY: the caller guarantees `owner` is dead.
        let repaired = unsafe { self.repair(owner) };
        let internal = unsafe { sync::force_release(owner) };
        let locks = self.locks.release_owner(owner);
        sync::record(owner).safe.store(OUTSIDE, Ordering::Release);
        Released { locks, internal, repaired }
    }
}

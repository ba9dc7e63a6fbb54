//! What a worker's death can leave behind in the shared memory, and (only
//! with the `fault-injection` feature, a test build) the faults that prove
//! it is survived.
//!
//! # The shared heap's allocator lock
//!
//! Every worker runs this module over the same memory, so they share one
//! Rust heap: std's dlmalloc on wasm32 with atomics
//! (`library/std/src/sys/alloc/wasm.rs`), guarded by one global `AtomicI32`
//! taken with a swap and released by a guard's `Drop`. It records no owner
//! and its waiters spin forever. A trap skips that `Drop`, so a worker that
//! traps inside the allocator leaves it locked, and every other worker's next
//! allocation spins at full CPU inside module code: the host can never bring
//! it to a safe point, and the replacement's `attach` spins too. The whole
//! site hangs. Rust code can trap there: dlmalloc's `free` and `realloc`
//! check the chunk against the layout with a release-mode `assert!`
//! (`validate_size`), which fails on a dealloc with a wrong layout or a
//! corrupted chunk header; stack exhaustion or an out-of-bounds access inside
//! dlmalloc trap as well. (A panic elsewhere does not hold it: std's panic
//! path on wasm32-unknown-unknown allocates nothing before it aborts.)
//!
//! The heap cannot be repaired (dlmalloc may be half-way through changing
//! its bins) and std's lock word is private, so this module cannot make that
//! safe; it makes it visible. `Tagged` wraps std's allocator in a lock of
//! its own whose word holds the holder's worker index + 1
//! (`allocator_lock_address`). std's lock is then only ever taken under this
//! one, so a worker that died not holding this lock did not hold std's. The
//! worker's JS reads the word after a trap, without calling into this module
//! again, and tells the host, which stops the site with a clear error for
//! every request instead of hanging (host/src/pool.rs `fail_site`).

use wasm_bindgen::prelude::*;

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
mod heap {
    use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::alloc::{GlobalAlloc, Layout, System};

    /// 0: free; otherwise `protocol::heap_lock::held_by` the holder (`UNKNOWN` before
    /// the worker knows its index).
    pub(super) static HOLDER: AtomicU32 = AtomicU32::new(0);
    const UNKNOWN: u32 = u32::MAX;
    /// Bytes the heap's callers hold now, and the most they ever held
    /// (`client.stats()`); changed only under `HOLDER`.
    pub(super) static IN_USE: AtomicUsize = AtomicUsize::new(0);
    pub(super) static PEAK: AtomicUsize = AtomicUsize::new(0);

    fn count(added: usize, removed: usize) {
        let now = IN_USE.load(Ordering::Relaxed) + added - removed;
        IN_USE.store(now, Ordering::Relaxed);
        if now > PEAK.load(Ordering::Relaxed) {
            PEAK.store(now, Ordering::Relaxed);
        }
    }

    fn me() -> u32 {
        // A `const` thread-local without `Drop`: a plain TLS slot, so reading
        // it never allocates.
        match crate::worker_index() {
            u32::MAX => UNKNOWN,
            index => protocol::heap_lock::held_by(index),
        }
    }

    pub(super) struct Held;

    impl Held {
        pub(super) fn take() -> Held {
            let me = me();
            loop {
                if HOLDER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    return Held;
                }
                // As std's own lock does; it is held for one dlmalloc call.
                while HOLDER.load(Ordering::Relaxed) != 0 {
                    core::hint::spin_loop();
                }
            }
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            HOLDER.store(0, Ordering::Release);
        }
    }

    /// std's allocator under an owner-tagged lock (see the module docs).
    pub struct Tagged;

    // SAFETY: every method forwards to std's `System` with the caller's
    // own arguments, so `GlobalAlloc`'s contract passes through unchanged;
    // the lock around it only orders callers and counts bytes.
    unsafe impl GlobalAlloc for Tagged {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _held = Held::take();
            let p = System.alloc(layout);
            if !p.is_null() {
                count(layout.size(), 0);
            }
            p
        }

        #[inline]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let _held = Held::take();
            let p = System.alloc_zeroed(layout);
            if !p.is_null() {
                count(layout.size(), 0);
            }
            p
        }

        #[inline]
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let _held = Held::take();
            System.dealloc(ptr, layout);
            count(0, layout.size());
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _held = Held::take();
            let p = System.realloc(ptr, layout, new_size);
            if !p.is_null() {
                count(new_size, layout.size());
            }
            p
        }
    }

    #[global_allocator]
    static HEAP: Tagged = Tagged;
}

/// `(bytes held now, most ever held)` in the shared Rust heap; zeros where
/// there is no shared heap.
pub(crate) fn heap_usage() -> (u64, u64) {
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    {
        use core::sync::atomic::Ordering::Relaxed;
        let _held = heap::Held::take();
        return (heap::IN_USE.load(Relaxed) as u64, heap::PEAK.load(Relaxed) as u64);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
    (0, 0)
}

/// Byte address of the allocator lock's word (see the module docs): 0 when
/// free, else the holder's worker index + 1. 0 where there is no shared heap.
#[wasm_bindgen]
pub fn allocator_lock_address() -> u32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
    return heap::HOLDER.as_ptr() as usize as u32;
    #[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
    0
}

/// Test builds only: the next time this worker finishes step `step` of the
/// shared-fs operation `op` (shared-fs `Op::steps`), it panics there, which
/// is a trap, holding that operation's inode locks.
#[cfg(feature = "fault-injection")]
#[wasm_bindgen]
pub fn fault_panic_at(op: &str, step: usize) -> Result<(), JsValue> {
    if shared_fs::kill_points::steps(op).get(step).is_none() {
        return Err(JsValue::from_str(&format!("no step {step} in {op}")));
    }
    shared_fs::kill_points::arm_with(crate::worker_index(), op, step, shared_fs::kill_points::Action::Panic);
    Ok(())
}

/// Test builds only: traps now, inside std's allocator with its lock held
/// (a dealloc with the wrong size fails dlmalloc's `validate_size` assert).
#[cfg(feature = "fault-injection")]
#[wasm_bindgen]
pub fn fault_trap_in_allocator() {
    let block = Box::into_raw(Box::new([0u8; 64]));
    let wrong = std::alloc::Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: none; this is the fault. The assert fires before dlmalloc
    // touches anything.
    unsafe { std::alloc::dealloc(block.cast(), wrong) };
}

/// Test builds only: shared-fs's structural check (`FileSystem::check`),
/// "ok" or what is wrong.
#[cfg(feature = "fault-injection")]
#[wasm_bindgen]
pub fn fault_check_fs() -> Result<String, JsValue> {
    Ok(crate::fs()?.check().err().unwrap_or_else(|| "ok".into()))
}

/// A helper worker armed to die (test builds only): it traps the next time
/// it reaches its fault point. In a static, so in the shared memory: a PHP
/// worker arms it for another worker (`fault_helper`).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum HelperFault {
    /// The storage worker, after writing its next batch and before
    /// flushing it or marking the changes saved.
    StorageMidBatch = 1,
    /// The file server, as its next job starts.
    FileServer = 2,
}

#[cfg(feature = "fault-injection")]
static HELPER_FAULT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Test builds only: arms `which` ("storage" or "files") to die at its
/// fault point (`HelperFault`).
#[cfg(feature = "fault-injection")]
#[wasm_bindgen]
pub fn fault_helper(which: &str) -> Result<(), JsValue> {
    let fault = match which {
        "storage" => HelperFault::StorageMidBatch,
        "files" => HelperFault::FileServer,
        other => return Err(JsValue::from_str(&format!("no helper fault {other:?}"))),
    };
    HELPER_FAULT.store(fault as u32, core::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// At `point`: traps if a test armed it (never in the default build).
pub(crate) fn helper_fault_point(point: HelperFault) {
    #[cfg(feature = "fault-injection")]
    {
        use core::sync::atomic::Ordering::SeqCst;
        if HELPER_FAULT.compare_exchange(point as u32, 0, SeqCst, SeqCst).is_ok() {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
        }
    }
    let _ = point;
}

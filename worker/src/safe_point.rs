//! The safe-point handshake that lets the host terminate a worker without
//! harming the others. Everything in the module's memory is shared (the
//! Rust heap and its allocator lock included), so a worker may only be
//! terminated while it is outside module code.
//!
//! Each worker owns one word in shared memory:
//! `OUTSIDE` → (the worker, on entry) `INSIDE` → (on exit) `OUTSIDE`;
//! `OUTSIDE` → (the host, with a compare-exchange on the same word) `STOPPED`.
//! Once `STOPPED`, the worker can never enter again: its next entry sleeps
//! until the host terminates it. If the host finds `INSIDE`, it retries a
//! moment later. The JS glue wraps every call into the module with
//! `enter`/`leave` done by `Atomics` on this word (so the wrapper itself runs
//! no module code).

use std::sync::atomic::AtomicI32;

pub const OUTSIDE: i32 = 0;
pub const INSIDE: i32 = 1;
pub const STOPPED: i32 = 2;

const MAX_WORKERS: usize = 256;

/// One word per worker index; statics are shared by every worker.
static WORDS: [AtomicI32; MAX_WORKERS] = [const { AtomicI32::new(OUTSIDE) }; MAX_WORKERS];

/// Byte address of worker `index`'s word in the shared memory, for the host
/// and the JS wrapper (an `Int32Array` index is this divided by 4).
pub fn word_address(index: u32) -> Option<usize> {
    WORDS.get(index as usize).map(|w| w as *const AtomicI32 as usize)
}

/// A respawned worker reuses its index: its word starts outside again.
pub fn reset(index: u32) {
    if let Some(w) = WORDS.get(index as usize) {
        w.store(OUTSIDE, std::sync::atomic::Ordering::SeqCst);
    }
}

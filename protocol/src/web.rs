//! What the three browser crates (host, worker, service worker) need alike
//! from JavaScript: the clock every context shares, and what a thrown value
//! says.

use alloc::format;
use alloc::string::String;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// The context's `performance`: the page's, a worker's or the service worker's.
    type Performance;
    #[wasm_bindgen(thread_local_v2, js_name = performance)]
    static PERFORMANCE: Performance;
    #[wasm_bindgen(method)]
    fn now(this: &Performance) -> f64;
    #[wasm_bindgen(method, getter, js_name = timeOrigin)]
    fn time_origin(this: &Performance) -> f64;
}

/// Milliseconds since the epoch, to a fraction of a millisecond, on the
/// clock every context shares (`performance.timeOrigin + performance.now()`
/// in the page, the workers and the service worker), so `trace` hops
/// stamped in different contexts line up.
pub fn now_ms() -> f64 {
    PERFORMANCE.with(|performance| performance.time_origin() + performance.now())
}

/// What a thrown value says, for a person: an `Error`'s message, a string
/// as is, anything else as the console would show it.
pub fn message_of(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

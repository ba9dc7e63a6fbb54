//! What the three browser crates (host, worker, service worker) need alike
//! from JavaScript: the clock every context shares, and what a thrown value
//! says.

use alloc::format;
use alloc::string::String;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds since the epoch, to a fraction of a millisecond, on the
/// clock every context shares (`performance.timeOrigin + performance.now()`
/// in the page, the workers and the service worker), so `trace` hops
/// stamped in different contexts line up.
pub fn now_ms() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).unwrap_or(JsValue::UNDEFINED);
    let origin = js_sys::Reflect::get(&performance, &"timeOrigin".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    origin + performance_now()
}

/// What a thrown value says, for a person: an `Error`'s message, a string
/// as is, anything else as the console would show it.
pub fn message_of(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

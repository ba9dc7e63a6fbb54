//! The clock every context shares (`performance.timeOrigin +
//! performance.now()` in the page, the workers and the service worker), so
//! `trace` hops stamped in different contexts line up.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds since the epoch, to a fraction of a millisecond.
pub fn now_ms() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).unwrap_or(JsValue::UNDEFINED);
    let origin = js_sys::Reflect::get(&performance, &"timeOrigin".into()).ok().and_then(|v| v.as_f64()).unwrap_or(0.0);
    origin + performance_now()
}

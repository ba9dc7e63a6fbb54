//! Small JS interop helpers shared by the host modules.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

pub fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a plain object we made cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

pub fn error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

pub use protocol::web::message_of;

/// A promise of the data of the next message on `port`, and its resolve
/// function so the reply can also come from elsewhere.
pub fn next_message(port: &MessagePort) -> (Promise, js_sys::Function) {
    let port = port.clone();
    let mut resolver = None;
    let promise = Promise::new(&mut |resolve, _reject| {
        let on_message = {
            let resolve = resolve.clone();
            Closure::once_into_js(move |event: MessageEvent| {
                let _ = resolve.call1(&JsValue::NULL, &event.data());
            })
        };
        port.set_onmessage(Some(on_message.unchecked_ref()));
        resolver = Some(resolve);
    });
    // The executor runs synchronously inside `Promise::new`.
    (promise, resolver.unwrap_or_else(|| js_sys::Function::new_no_args("")))
}

pub fn optional_u32(options: &JsValue, key: &str) -> Result<Option<u32>, JsValue> {
    use crate::options::{whole_number, Given};
    let value = get(options, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = value.as_string();
    let kind = value.js_typeof().as_string().unwrap_or_default();
    let given = match (value.as_f64(), &text) {
        (Some(n), _) => Given::Number(n),
        (None, Some(text)) => Given::Text(text),
        (None, None) => Given::Other(&kind),
    };
    whole_number(key, given).map(Some).map_err(error)
}

pub fn optional_string(options: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    let value = get(options, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value.as_string().map(Some).ok_or_else(|| error(format!("option `{key}` must be a string")))
}

#[wasm_bindgen]
extern "C" {
    /// The global timer functions, the same on the page and in a worker
    /// (the process manager runs in either).
    #[wasm_bindgen(js_name = setTimeout)]
    fn global_set_timeout(handler: &js_sys::Function, ms: i32) -> i32;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn global_clear_timeout(handle: i32);
}

/// Runs `f` once after `ms`; the handle cancels it (`clear_timeout`).
pub fn set_timeout(f: impl FnOnce() + 'static, ms: i32) -> i32 {
    let callback = Closure::once_into_js(f);
    global_set_timeout(callback.unchecked_ref(), ms)
}

pub fn clear_timeout(handle: i32) {
    global_clear_timeout(handle);
}

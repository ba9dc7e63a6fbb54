//! Where a message PHP posts to JavaScript (`post_message_to_js`) goes. The
//! worker's glue asks `route_php_message` and carries the answer out: a
//! fetch for outgoing HTTP (`net.rs`), a lock for the flock() polyfill
//! (`mount/flock.rs`), a test-only fault, or the page's listeners.

use crate::net::{route_message, MessageRoute};

/// What the flock() polyfill (`mount/flock-polyfill.php`) sends before its
/// fields: `<ino> <resource> <operation> <path>`.
pub const FLOCK_PREFIX: &str = "php-pool-flock?";

/// A fault-injection build's test message: `{"fault-injection": {...}}`
/// (worker-entry.js `injectFault`).
const FAULT_PREFIX: &str = "{\"fault-injection\":";

/// One flock() call: the stream's inode per fstat (-1 if none), its PHP
/// resource id, the operation (LOCK_SH, LOCK_EX, LOCK_UN, | LOCK_NB) and
/// the path it was opened with.
#[derive(Debug, PartialEq)]
pub struct FlockCall {
    pub ino: f64,
    pub resource: f64,
    pub operation: u32,
    pub path: String,
}

#[derive(Debug, PartialEq)]
pub enum PhpMessage {
    Net(MessageRoute),
    Flock(FlockCall),
    /// The malformed polyfill message's answer: flock() then fails.
    FlockRefused,
    /// Only a fault-injection build sorts these out; elsewhere they go to
    /// the page like any message.
    Fault,
    Page,
}

pub fn sort(message: &str, networking: bool, faults: bool) -> PhpMessage {
    if let Some(fields) = message.strip_prefix(FLOCK_PREFIX) {
        return parse_flock(fields).map_or(PhpMessage::FlockRefused, PhpMessage::Flock);
    }
    if faults && message.starts_with(FAULT_PREFIX) {
        return PhpMessage::Fault;
    }
    match route_message(message, networking) {
        MessageRoute::NotOurs => PhpMessage::Page,
        route => PhpMessage::Net(route),
    }
}

fn parse_flock(fields: &str) -> Option<FlockCall> {
    let mut parts = fields.splitn(4, ' ');
    let ino = parts.next()?.parse::<i64>().ok()? as f64;
    let resource = parts.next()?.parse::<i64>().ok()? as f64;
    let operation = parts.next()?.parse::<u32>().ok()?;
    let path = parts.next()?.to_string();
    Some(FlockCall { ino, resource, operation, path })
}

mod bindings {
    use super::*;
    use js_sys::{Array, Object};
    use wasm_bindgen::prelude::*;

    use crate::set;

    /// For the glue's `php.onMessage`: `{net}` (a plan for
    /// worker-entry.js `outgoingHttp`), `{flock: [path, ino, resource,
    /// operation]}`, `{reply}` to answer PHP at once, `{fault}` (fault-
    /// injection builds), or `{page: true}` for the page's listeners.
    #[wasm_bindgen]
    pub fn route_php_message(message: &str) -> JsValue {
        let out = Object::new();
        match sort(message, crate::net::networking(), cfg!(feature = "fault-injection")) {
            PhpMessage::Net(route) => set(&out, "net", &crate::net::plan_js(route)),
            PhpMessage::Flock(FlockCall { ino, resource, operation, path }) => {
                let call = Array::of4(&path.into(), &ino.into(), &resource.into(), &operation.into());
                set(&out, "flock", &call);
            }
            PhpMessage::FlockRefused => set(&out, "reply", &JsValue::from_str("EINVAL")),
            PhpMessage::Fault => set(&out, "fault", &JsValue::TRUE),
            PhpMessage::Page => set(&out, "page", &JsValue::TRUE),
        }
        out.into()
    }

    /// The PHP file the glue preloads (`/internal/shared/preload/`).
    #[wasm_bindgen]
    pub fn flock_preload_php() -> String {
        include_str!("mount/flock-polyfill.php").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flock_polyfills_message_keeps_a_path_with_spaces_whole() {
        let call = FlockCall { ino: 12.0, resource: 7.0, operation: 6, path: "/wordpress/wp content/a b.lock".into() };
        assert_eq!(sort("php-pool-flock?12 7 6 /wordpress/wp content/a b.lock", true, false), PhpMessage::Flock(call));
        let no_inode = sort("php-pool-flock?-1 3 8 php://memory", true, false);
        assert!(matches!(no_inode, PhpMessage::Flock(FlockCall { ino, .. }) if ino == -1.0));
    }

    #[test]
    fn a_malformed_flock_message_is_refused_not_passed_on() {
        for bad in ["php-pool-flock?", "php-pool-flock?x 1 2 /a", "php-pool-flock?1 2 -3 /a", "php-pool-flock?1 2 3"] {
            assert_eq!(sort(bad, true, false), PhpMessage::FlockRefused, "{bad}");
        }
    }

    #[test]
    fn faults_are_sorted_out_only_in_fault_builds() {
        let fault = r#"{"fault-injection":{"check":true}}"#;
        assert_eq!(sort(fault, true, true), PhpMessage::Fault);
        assert_eq!(sort(fault, true, false), PhpMessage::Page);
    }

    #[test]
    fn network_messages_go_to_net_and_the_rest_to_the_page() {
        let off = sort(&format!("{}url=https%3A%2F%2Fexample.org%2F", crate::net::MESSAGE_PREFIX), false, false);
        assert!(matches!(off, PhpMessage::Net(MessageRoute::Answer(_))));
        assert_eq!(sort(r#"{"my-plugin":1}"#, true, true), PhpMessage::Page);
        assert_eq!(sort("php-pool-flock", true, false), PhpMessage::Page, "a prefix needs its '?'");
    }
}

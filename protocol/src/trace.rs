//! Per-hop timestamps of one site request, for the bench
//! (bench/browser.mjs `serviceWorkerOverhead`): a request that carries
//! `HEADER` gets `hop=ms` appended at each hop (ms on the clock every
//! context shares: `performance.timeOrigin + performance.now()`), and the
//! response carries the list back. Untraced requests pay one header scan.

use crate::Headers;
use alloc::format;
use alloc::string::String;

pub const HEADER: &str = "x-php-pool-trace";

/// A same-origin path the service worker answers with a constant at once:
/// the bench's control for what intercepting a fetch costs by itself.
pub const CONTROL_PATH: &str = "/.php-pool/sw-control";

/// The trace in `headers`, if the request is traced.
pub fn find(headers: &Headers) -> Option<&str> {
    headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(HEADER)).map(|(_, value)| value.as_str())
}

/// `trace` with `hop=ms` appended; the caller's own value (anything, e.g.
/// `1`) is dropped at the first hop.
pub fn append(trace: &str, hop: &str, ms: f64) -> String {
    if trace.contains('=') {
        format!("{trace},{hop}={ms:.3}")
    } else {
        format!("{hop}={ms:.3}")
    }
}

/// Appends `hop=ms` to the trace in `headers`; false if it is not traced.
pub fn stamp(headers: &mut Headers, hop: &str, ms: f64) -> bool {
    match headers.iter_mut().find(|(name, _)| name.eq_ignore_ascii_case(HEADER)) {
        Some((_, value)) => {
            *value = append(value, hop, ms);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn stamps_accumulate_in_order_and_replace_the_callers_marker() {
        let mut headers: Headers = vec![("Accept".into(), "*/*".into()), ("X-PHP-Pool-Trace".into(), "1".into())];
        assert!(stamp(&mut headers, "sw", 10.0));
        assert!(stamp(&mut headers, "page", 10.25));
        assert_eq!(find(&headers), Some("sw=10.000,page=10.250"));
        assert_eq!(append(find(&headers).unwrap(), "worker", 11.5), "sw=10.000,page=10.250,worker=11.500");
    }

    #[test]
    fn untraced_requests_are_left_alone() {
        let mut headers: Headers = vec![("accept".into(), "*/*".into())];
        assert!(!stamp(&mut headers, "sw", 1.0));
        assert_eq!(find(&headers), None);
        assert_eq!(headers, vec![("accept".to_string(), "*/*".to_string())]);
    }
}

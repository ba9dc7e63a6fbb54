//! Cross-origin isolation by the service worker: when the server did not
//! send the headers, add them to the documents this origin serves, so that
//! after one reload the page is `crossOriginIsolated`.
//!
//! The host registers `sw.js?coep=credentialless` (Chromium, Firefox) or
//! `?coep=require-corp` (Safari). With `credentialless` the service worker
//! also adds `Document-Isolation-Policy`, which isolates a document on its
//! own where supported (Chromium 137+). An injected response carries
//! `Server-Timing: isolation;desc="service-worker"` so the page can tell who
//! isolated it.

/// The COEP value requested in the service worker's URL query.
pub fn coep_from_query(search: &str) -> &'static str {
    let wants_corp = search
        .trim_start_matches('?')
        .split('&')
        .any(|pair| pair == "coep=require-corp");
    if wants_corp {
        "require-corp"
    } else {
        "credentialless"
    }
}

/// Headers to add to a document response: none if the server's own COEP
/// isolates it in this browser. A browser that asked for `require-corp`
/// (it has no `credentialless`: Safari) ignores any other value, such as
/// the `credentialless` our server and netlify.toml send, so that is
/// replaced rather than kept.
pub fn headers_to_inject(existing_coep: Option<&str>, coep: &'static str) -> Vec<(&'static str, String)> {
    let existing = existing_coep.map(str::trim).filter(|v| !v.is_empty());
    let isolates = match existing {
        None => false,
        Some(value) => coep != "require-corp" || value.eq_ignore_ascii_case("require-corp"),
    };
    if isolates {
        return Vec::new();
    }
    let mut headers = vec![
        ("cross-origin-opener-policy", "same-origin".to_string()),
        ("cross-origin-embedder-policy", coep.to_string()),
        ("server-timing", "isolation;desc=\"service-worker\"".to_string()),
    ];
    if coep == "credentialless" {
        headers.push(("document-isolation-policy", "isolate-and-credentialless".to_string()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_selects_the_embedder_policy() {
        assert_eq!(coep_from_query("?coep=require-corp"), "require-corp");
        assert_eq!(coep_from_query("?x=1&coep=require-corp"), "require-corp");
        assert_eq!(coep_from_query(""), "credentialless");
        assert_eq!(coep_from_query("?coep=bogus"), "credentialless");
    }

    #[test]
    fn server_headers_win_and_missing_ones_are_added() {
        assert!(headers_to_inject(Some("credentialless"), "credentialless").is_empty());
        let added = headers_to_inject(None, "credentialless");
        assert!(added.contains(&("cross-origin-embedder-policy", "credentialless".to_string())));
        assert!(added.iter().any(|(n, _)| *n == "document-isolation-policy"));
        let safari = headers_to_inject(Some(""), "require-corp");
        assert!(safari.contains(&("cross-origin-embedder-policy", "require-corp".to_string())));
        assert!(!safari.iter().any(|(n, _)| *n == "document-isolation-policy"));
    }

    #[test]
    fn a_browser_without_credentialless_gets_require_corp_whatever_the_server_sent() {
        for server in ["credentialless", "unsafe-none", " credentialless "] {
            let added = headers_to_inject(Some(server), "require-corp");
            assert!(added.contains(&("cross-origin-embedder-policy", "require-corp".to_string())), "{server}");
            assert!(added.contains(&("cross-origin-opener-policy", "same-origin".to_string())), "{server}");
        }
        assert!(headers_to_inject(Some("require-corp"), "require-corp").is_empty());
        // A browser that has credentialless keeps what the server sent.
        assert!(headers_to_inject(Some("require-corp"), "credentialless").is_empty());
    }
}

//! Which URL paths name static files: the rule that sends a request to the
//! file server instead of a PHP worker (host) and that tells a missing
//! static file from a pretty permalink (worker routing). One copy for both.

/// A path whose extension names a static file type (not PHP, not a
/// directory): no front controller answers for it.
pub fn is_static_asset(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((_, ext)) => !ext.eq_ignore_ascii_case("php") && content_type(path) != "application/octet-stream",
        None => false,
    }
}

/// The part of a request's path (`/wp-includes/x.js?ver=1`) that the
/// service worker may append to the URL of WordPress's static root when the
/// site's filesystem lacks the file, still percent-encoded, without its
/// leading `/`; `None` when it could name a file outside that root: a `.` or
/// `..` segment once decoded (`%2e%2e`, `..%2f`, any case: the server decodes
/// what the browser's URL parser left alone), a `\` (some servers take it
/// for `/`) or a NUL.
pub fn fallback_path(path_and_query: &str) -> Option<&str> {
    let path = path_and_query.split(['?', '#']).next().unwrap_or("").trim_start_matches('/');
    let decoded = crate::percent::decode_lenient(path);
    let unsafe_name = decoded.split(|&b| b == b'/').any(|segment| segment == b"." || segment == b"..");
    if unsafe_name || decoded.iter().any(|&b| b == b'\\' || b == 0) {
        return None;
    }
    Some(path)
}

/// The Content-Type a static file is served with, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    const TYPES: [(&str, &str); 23] = [
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("css", "text/css; charset=utf-8"),
        ("js", "text/javascript; charset=utf-8"),
        ("mjs", "text/javascript; charset=utf-8"),
        ("json", "application/json"),
        ("txt", "text/plain; charset=utf-8"),
        ("xml", "application/xml"),
        ("svg", "image/svg+xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("ico", "image/x-icon"),
        ("woff", "font/woff"),
        ("woff2", "font/woff2"),
        ("ttf", "font/ttf"),
        ("wasm", "application/wasm"),
        ("pdf", "application/pdf"),
        ("zip", "application/zip"),
        ("mp4", "video/mp4"),
        ("mp3", "audio/mpeg"),
    ];
    TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|(_, t)| *t)
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_decide_and_php_never_is_static() {
        assert!(is_static_asset("/wp-includes/js/jquery/jquery.min.js"));
        assert!(is_static_asset("/a/B.PNG"));
        assert!(!is_static_asset("/wp-login.php"));
        assert!(!is_static_asset("/2024/01/hello/"));
        assert!(!is_static_asset("/wp-json/wp/v2/posts"));
        assert!(!is_static_asset("/file.unknownext"));
        assert_eq!(content_type("/x.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("/x"), "application/octet-stream");
    }

    #[test]
    fn the_fallback_never_leaves_the_static_root() {
        assert_eq!(fallback_path("/wp-includes/js/a.min.js?ver=6.5"), Some("wp-includes/js/a.min.js"));
        assert_eq!(fallback_path("/wp-includes/css/dist/a%20b.css"), Some("wp-includes/css/dist/a%20b.css"));
        assert_eq!(fallback_path("/wp-includes/.hidden/..x/x../.../a.js"), Some("wp-includes/.hidden/..x/x../.../a.js"));
        assert_eq!(fallback_path("/a//b.js"), Some("a//b.js"));
        for escape in [
            "/wp-includes/../../index.html",
            "/wp-includes/%2e%2e/%2e%2e/index.html",
            "/wp-includes/%2E%2E/index.html",
            "/wp-includes/.%2e/index.html",
            "/wp-includes/%2e./index.html",
            "/wp-includes/..%2f..%2findex.html",
            "/wp-includes/..%2F..%2Findex.html",
            "/wp-includes/%2e%2e%2f%2e%2e%2findex.html",
            "/wp-includes/%2E%2E%2Findex.html",
            "/wp-includes/..%5c..%5cindex.html",
            "/wp-includes/..\\index.html",
            "/wp-includes/a%00.js",
            "/..",
            "/wp-includes/./a.js",
            "/wp-includes/%2e/a.js",
        ] {
            assert_eq!(fallback_path(escape), None, "{escape}");
        }
        // The query is not part of the path.
        assert_eq!(fallback_path("/a.js?x=../../b"), Some("a.js"));
    }
}

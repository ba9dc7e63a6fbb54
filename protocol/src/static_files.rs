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
}

//! Site scopes: every site lives under `/scope:<id>/` of its origin, so
//! several sites share one origin and one service worker. The format is
//! built and read only here.

use alloc::format;
use alloc::string::{String, ToString};

/// The scope's root URL: `https://host` + `/scope:<id>/`.
pub fn url(origin: &str, id: &str) -> String {
    format!("{}/scope:{id}/", origin.trim_end_matches('/'))
}

/// `"/scope:abc/wp-admin/?x"` -> `Some(("abc", "/wp-admin/?x"))`; the rest
/// always starts with `/`. Ids are letters, digits, `-`, `_` and `.`.
pub fn split(path_and_query: &str) -> Option<(&str, String)> {
    let rest = path_and_query.strip_prefix("/scope:")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (id, tail) = rest.split_at(end);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
        return None;
    }
    let rest = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
    Some((id, rest))
}

/// The path of a scope URL without its trailing slash, as PHP's
/// `REQUEST_URI` and `SCRIPT_NAME` start: `"http://h:1/scope:x/"` ->
/// `"/scope:x"`; a URL without a path gives `""`.
pub fn path_prefix(scope_url: &str) -> &str {
    let after_scheme = scope_url.split_once("://").map(|(_, rest)| rest).unwrap_or(scope_url);
    let path = after_scheme.find('/').map(|i| &after_scheme[i..]).unwrap_or("/");
    path.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_and_read_back() {
        let url = url("http://127.0.0.1:8080", "abc");
        assert_eq!(url, "http://127.0.0.1:8080/scope:abc/");
        assert_eq!(path_prefix(&url), "/scope:abc");
        assert_eq!(split(&format!("{}/wp-admin/?x=1", path_prefix(&url))), Some(("abc", "/wp-admin/?x=1".to_string())));
        assert_eq!(path_prefix("https://example.com/"), "");
    }

    #[test]
    fn splits_scope_and_rest() {
        assert_eq!(split("/scope:abc/wp-admin/?x=1"), Some(("abc", "/wp-admin/?x=1".to_string())));
        assert_eq!(split("/scope:abc"), Some(("abc", "/".to_string())));
        assert_eq!(split("/scope:abc?x"), Some(("abc", "/?x".to_string())));
        assert_eq!(split("/index.html"), None);
        assert_eq!(split("/scope:/x"), None);
        assert_eq!(split("/scope:a%2F/x"), None);
    }
}

//! Site scopes: every site lives under `/scope:<id>/`, so several sites can
//! share one origin and one service worker.

/// `"/scope:abc/wp-admin/?x"` -> `Some(("abc", "/wp-admin/?x"))`; the rest always starts with `/`.
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

#[cfg(test)]
mod tests {
    use super::split;

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

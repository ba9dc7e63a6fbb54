//! Which file answers an HTTP path: a PHP script, a static file, or nothing.
//! Pure logic over shared-fs, so it is tested natively.

use protocol::static_files::{content_type, is_static_asset};
use shared_fs::{FileKind, FileSystem};

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Run this script (absolute path on the shared FS); `script_name` is its URL path.
    Php { script_path: String, script_name: String },
    Static { path: String, content_type: &'static str },
    /// A static file (by its extension) that the shared filesystem does not
    /// hold: the service worker may find it among the site's static assets
    /// (WordPress builds ship theirs outside the archive).
    StaticMiss,
    NotFound,
}

/// Splits `/a/b.php?x=1` into the decoded, normalized path and the query.
/// `..` never climbs above the site root.
pub fn split_url_path(path_and_query: &str) -> (String, &str) {
    let (path, query) = match path_and_query.find('?') {
        Some(i) => (&path_and_query[..i], &path_and_query[i + 1..]),
        None => (path_and_query, ""),
    };
    let decoded = String::from_utf8_lossy(&protocol::percent::decode_lenient(path)).into_owned();
    let mut parts: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&parts.join("/"));
    if decoded.ends_with('/') && !parts.is_empty() {
        normalized.push('/');
    }
    (normalized, query)
}

fn kind(fs: &FileSystem, path: &str) -> Option<FileKind> {
    fs.resolve(FileSystem::ROOT, path.as_bytes(), true).ok().map(|a| a.kind)
}

fn join(root: &str, path: &str) -> String {
    format!("{}{}", root.trim_end_matches('/'), path)
}

pub fn route(fs: &FileSystem, document_root: &str, url_path: &str) -> Route {
    let file = join(document_root, url_path);
    match kind(fs, &file) {
        Some(FileKind::Dir) => {
            for index in ["index.php", "index.html"] {
                let candidate = format!("{}/{}", file.trim_end_matches('/'), index);
                if kind(fs, &candidate) == Some(FileKind::File) {
                    let url = format!("{}/{}", url_path.trim_end_matches('/'), index);
                    return for_file(candidate, url);
                }
            }
        }
        Some(FileKind::File) => return for_file(file, url_path.to_string()),
        _ if is_static_asset(url_path) => return Route::StaticMiss,
        _ => {}
    }
    // Pretty permalinks: unknown paths go to the front controller.
    let front = join(document_root, "/index.php");
    if kind(fs, &front) == Some(FileKind::File) {
        return Route::Php { script_path: front, script_name: "/index.php".into() };
    }
    Route::NotFound
}

fn for_file(path: String, url: String) -> Route {
    if path.ends_with(".php") {
        Route::Php { script_path: path, script_name: url }
    } else {
        let content_type = content_type(&path);
        Route::Static { path, content_type }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_fs::{Config, Timespec};

    fn fs_with(files: &[&str]) -> FileSystem {
        let fs = FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 16 << 20, clock: || Timespec::default() })
            .unwrap();
        crate::mkdir_all(&fs, "/www/sub").unwrap();
        for f in files {
            let (dir, name) = fs.resolve_parent(FileSystem::ROOT, f.as_bytes()).unwrap();
            fs.create(dir, &name, 0o644, 0, 0).unwrap();
        }
        fs
    }

    #[test]
    fn normalizes_and_never_climbs_above_root() {
        assert_eq!(split_url_path("/a/../../etc/passwd?x=1"), ("/etc/passwd".to_string(), "x=1"));
        assert_eq!(split_url_path("/a%20b/./c/"), ("/a b/c/".to_string(), ""));
        assert_eq!(split_url_path("/"), ("/".to_string(), ""));
        assert_eq!(split_url_path("/bad%zz%4"), ("/bad%zz%4".to_string(), ""));
    }

    #[test]
    fn routes_php_static_index_and_front_controller() {
        let fs = fs_with(&["/www/a.php", "/www/style.css", "/www/sub/index.html"]);
        assert_eq!(
            route(&fs, "/www", "/a.php"),
            Route::Php { script_path: "/www/a.php".into(), script_name: "/a.php".into() }
        );
        assert_eq!(
            route(&fs, "/www", "/style.css"),
            Route::Static { path: "/www/style.css".into(), content_type: "text/css; charset=utf-8" }
        );
        assert_eq!(
            route(&fs, "/www", "/sub/"),
            Route::Static { path: "/www/sub/index.html".into(), content_type: "text/html; charset=utf-8" }
        );
        assert_eq!(route(&fs, "/www", "/missing"), Route::NotFound);
        assert_eq!(route(&fs, "/www", "/wp-includes/css/missing.css"), Route::StaticMiss);

        let fs = fs_with(&["/www/index.php"]);
        assert_eq!(route(&fs, "/www", "/wp-includes/js/missing.min.js"), Route::StaticMiss);
        assert_eq!(
            route(&fs, "/www", "/2024/01/hello/"),
            Route::Php { script_path: "/www/index.php".into(), script_name: "/index.php".into() }
        );
    }
}

//! Where saved sites live in the origin private file system (OPFS), named
//! once for the page (which lists, renames and deletes sites) and the
//! worker that keeps a site's storage.

use alloc::format;
use alloc::string::String;

/// Directories from the OPFS root to the folder of saved sites; each site
/// is a folder named by its slug.
pub const SITES_PATH: [&str; 2] = ["php-pool", "sites"];

/// A site's two log files (worker/src/storage.rs): the active one holds an
/// image and change batches; compaction writes the other one.
pub const LOG_FILES: [&str; 2] = ["a.log", "b.log"];

/// Web Locks name held by the page that has a saved site open.
pub fn lock_name(slug: &str) -> String {
    format!("php-pool-site:{slug}")
}

/// The longest slug accepted.
pub const SLUG_MAX: usize = 64;

/// A slug is a folder name and part of a URL: ASCII letters, digits, `-`
/// and `_`, 1 to `SLUG_MAX` characters.
pub fn check_slug(slug: &str) -> Result<(), String> {
    if slug.is_empty() || slug.len() > SLUG_MAX {
        return Err(format!("a site name must have 1 to {SLUG_MAX} characters"));
    }
    if let Some(c) = slug.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(format!("a site name may hold only letters, digits, '-' and '_' (not {c:?})"));
    }
    Ok(())
}

/// Where a page stores the slug of the site it opened last (localStorage).
pub const LAST_SITE_KEY: &str = "php-pool:last-site";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(check_slug("my-site_2").is_ok());
        for bad in ["", "a/b", "..", "a b", "é", &"x".repeat(SLUG_MAX + 1)] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
        assert_eq!(lock_name("a"), "php-pool-site:a");
    }
}

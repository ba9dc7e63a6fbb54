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

/// The lock the storage worker holds while it has the site's files open: a
/// reloaded page's storage worker waits for it, since the previous page's
/// may still be running (Firefox stops a worker's own workers some time
/// after the page is gone), its files open.
pub fn storage_lock_name(slug: &str) -> String {
    format!("php-pool-storage:{slug}")
}

/// How long a storage worker waits for its predecessor to let go of the
/// site's files before it gives up, saying so.
pub const STORAGE_LOCK_WAIT_MS: u32 = 15_000;

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

/// A slug for a site imported from the file `file_name`, none of `taken`:
/// the file's name without `.zip`, each run of other characters as one
/// `-`, then `-2`, `-3`, ... until it is free; `imported` if nothing is left.
pub fn slug_for_import(file_name: &str, taken: &[String]) -> String {
    let stem = file_name.len().checked_sub(4).filter(|&at| file_name.is_char_boundary(at) && file_name[at..].eq_ignore_ascii_case(".zip"));
    let stem = stem.map_or(file_name, |at| &file_name[..at]);
    let mut base = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            base.push(c);
        } else if !base.ends_with('-') {
            base.push('-');
        }
    }
    // Room for a numbered suffix within SLUG_MAX.
    base.truncate(SLUG_MAX - 8);
    if base.is_empty() {
        base.push_str("imported");
    }
    let mut slug = base.clone();
    let mut n = 2;
    while taken.iter().any(|t| *t == slug) {
        slug = format!("{base}-{n}");
        n += 1;
    }
    slug
}

/// Where a page stores the slug of the site it opened last (localStorage).
pub const LAST_SITE_KEY: &str = "php-pool:last-site";

/// How long a page waits for a saved site's lock before it says another
/// tab has the site open: a page that reloads, or a tab just closed, lets
/// go of it a moment after the next page asks (seen in Chromium 156 with
/// the process manager's workers still stopping).
pub const LOCK_WAIT_MS: u32 = 1500;

/// How long the storage worker goes on trying to open a site's file that
/// the browser refused with `error` after `waited_ms`, and how long it
/// waits before the next try; `None`: give up and report `error`. On a
/// reload the old page lets go of the site's lock at once, but its storage
/// worker's sync access handles close a moment later
/// (`NoModificationAllowedError` until then).
pub fn retry_open_after(error: &str, waited_ms: u32) -> Option<u32> {
    const EVERY_MS: u32 = 50;
    const FOR_MS: u32 = 5000;
    (error == "NoModificationAllowedError" && waited_ms < FOR_MS).then_some(EVERY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_files_name_becomes_a_free_valid_slug() {
        let taken = |names: &[&str]| names.iter().map(|n| String::from(*n)).collect::<alloc::vec::Vec<_>>();
        assert_eq!(slug_for_import("My Site (copy).ZIP", &[]), "My-Site-copy-");
        assert_eq!(slug_for_import("blog.zip", &taken(&["blog", "blog-2"])), "blog-3");
        assert_eq!(slug_for_import("Ünïcode.zip", &[]), "-n-code");
        assert_eq!(slug_for_import(".zip", &[]), "imported");
        assert_eq!(slug_for_import("", &taken(&["imported"])), "imported-2");
        assert_eq!(slug_for_import("a.zip.tar", &[]), "a-zip-tar");
        let long = slug_for_import(&"x".repeat(300), &taken(&[&"x".repeat(SLUG_MAX - 8)]));
        assert!(check_slug(&long).is_ok() && long.ends_with("-2"), "{long}");
        for name in ["My Site (copy).ZIP", "Ünïcode.zip", "", "日本.zip", "a/b\\c.zip"] {
            assert!(check_slug(&slug_for_import(name, &[])).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_file_still_held_by_the_previous_page_is_retried_for_5_seconds_only() {
        assert_eq!(retry_open_after("NoModificationAllowedError", 0), Some(50));
        assert_eq!(retry_open_after("NoModificationAllowedError", 4950), Some(50));
        assert_eq!(retry_open_after("NoModificationAllowedError", 5000), None);
        assert_eq!(retry_open_after("QuotaExceededError", 0), None);
        assert_eq!(retry_open_after("SecurityError", 0), None);
    }

    #[test]
    fn slugs() {
        assert!(check_slug("my-site_2").is_ok());
        for bad in ["", "a/b", "..", "a b", "é", &"x".repeat(SLUG_MAX + 1)] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
        assert_eq!(lock_name("a"), "php-pool-site:a");
        assert_eq!(storage_lock_name("a"), "php-pool-storage:a");
    }
}

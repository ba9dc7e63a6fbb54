//! The php.ini entries every PHP worker runs with, beside the rules they
//! rest on.

use shared_fs::CACHE_UPDATE_PROTECTION_SECS;

/// `(name, value)` pairs for php-wasm's `setPhpIniEntries`.
///
/// OPcache runs in this worker's memory and is never stale across workers:
/// every include checks the file's mtime on the shared FS, and a file
/// changed within the protection window is not cached, so any later write
/// changes the mtime it was cached under. What a timestamp cannot show moves
/// shared-fs's mtime-reuse epoch, and the job resets OPcache first
/// (`jobs.rs` `cache_prelude`). The realpath cache is flushed whenever a name
/// was removed or replaced (the names epoch), the only way a cached
/// resolution can go stale.
/// Beneath it, OPcache's file cache on the shared filesystem
/// (`compiled_cache`): a script compiled by one worker is loaded by the
/// others, and kept with a saved site.
pub fn entries() -> Vec<(&'static str, String)> {
    entries_for(&crate::php_version(), compiled_cache_dir())
}

thread_local! {
    /// The build id of the php.wasm this worker runs (a hash of its bytes,
    /// written into php-wasm's loader by the build).
    static PHP_BINARY_ID: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The JS glue hands over the loaded php.wasm's build id, before asking for
/// the php.ini entries and the shared paths.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn php_binary_loaded(build_id: &str) {
    PHP_BINARY_ID.with(|id| *id.borrow_mut() = build_id.to_string());
}

/// This build's folder of compiled scripts; none without OPcache or without
/// a build id (then every worker compiles for itself).
pub fn compiled_cache_dir() -> Option<String> {
    if NO_OPCACHE.contains(&crate::php_version().as_str()) {
        return None;
    }
    PHP_BINARY_ID.with(|id| crate::compiled_cache::dir(&id.borrow()))
}

fn entries_for(php_version: &str, compiled_cache: Option<String>) -> Vec<(&'static str, String)> {
    let mut entries = vec![
        ("opcache.enable", "1".into()),
        ("opcache.file_cache_only", "0".into()),
        ("opcache.file_cache", compiled_cache.unwrap_or_default()),
        // An entry cut short or damaged is deleted and compiled again.
        ("opcache.file_cache_consistency_checks", "1".into()),
        ("opcache.validate_timestamps", "1".into()),
        ("opcache.revalidate_freq", "0".into()),
        ("opcache.file_update_protection", CACHE_UPDATE_PROTECTION_SECS.to_string()),
        ("opcache.memory_consumption", "64".into()),
        ("opcache.max_accelerated_files", "4000".into()),
        ("realpath_cache_size", "4096K".into()),
    ];
    // php.wasm's flock() is a no-op stub; mount/flock-polyfill.php replaces it,
    // except on PHP 7.4, which cannot redefine a disabled built-in (the stub
    // stays: flock() succeeds and locks nothing).
    if php_version != "7.4" {
        entries.push(("disable_functions", "flock".into()));
    }
    if NO_OPCACHE.contains(&php_version) {
        entries[0].1 = "0".into();
    }
    entries
}

/// php.wasm 7.4 and 8.0 (php-wasm 3.1.54) cannot allocate OPcache's shared
/// memory ("Unable to allocate shared memory segment", with any memory
/// model), a fatal error on every request: they run without OPcache.
const NO_OPCACHE: &[&str] = &["7.4", "8.0"];

/// The entries as a JS object.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn php_ini_entries() -> js_sys::Object {
    let out = js_sys::Object::new();
    for (name, value) in entries() {
        let _ = js_sys::Reflect::set(&out, &name.into(), &value.into());
    }
    out
}

#[cfg(test)]
mod tests {
    fn value(name: &str) -> String {
        super::entries_for("8.3", None).into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap_or_default()
    }

    #[test]
    fn opcache_validates_every_include_with_the_protection_the_epoch_assumes() {
        assert_eq!(value("opcache.validate_timestamps"), "1");
        assert_eq!(value("opcache.revalidate_freq"), "0");
        assert_eq!(value("opcache.file_update_protection"), "2");
        assert_eq!(value("opcache.file_cache_only"), "0", "in memory");
    }

    #[test]
    fn the_shared_file_cache_is_the_builds_folder_with_its_checks() {
        let entries = super::entries_for("8.3", crate::compiled_cache::dir("php-8.3-jspi-ab12"));
        let get = |name: &str| entries.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("opcache.file_cache"), Some("/internal/opcache/php-8.3-jspi-ab12"));
        assert_eq!(get("opcache.file_cache_consistency_checks"), Some("1"));
        assert_eq!(get("opcache.file_cache_only"), Some("0"), "beneath the in-memory cache");
    }

    #[test]
    fn opcache_is_off_only_where_php_wasm_cannot_run_it() {
        let enabled = |v: &str| super::entries_for(v, None).into_iter().find(|(n, _)| *n == "opcache.enable").unwrap().1;
        for v in ["8.1", "8.2", "8.3", "8.4", "8.5"] {
            assert_eq!(enabled(v), "1", "{v}");
        }
        for v in ["7.4", "8.0"] {
            assert_eq!(enabled(v), "0", "{v}");
        }
    }

    #[test]
    fn flock_is_replaced_from_php_8() {
        let disabled = |v: &str| super::entries_for(v, None).into_iter().any(|(n, v)| n == "disable_functions" && v == "flock");
        assert!(disabled("8.0") && disabled("8.3") && disabled("8.5"));
        assert!(!disabled("7.4"), "7.4 cannot redefine it: the stub stays");
    }
}

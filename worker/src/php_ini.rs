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
pub fn entries() -> Vec<(&'static str, String)> {
    vec![
        ("opcache.enable", "1".into()),
        ("opcache.file_cache_only", "0".into()),
        ("opcache.file_cache", String::new()),
        ("opcache.validate_timestamps", "1".into()),
        ("opcache.revalidate_freq", "0".into()),
        ("opcache.file_update_protection", CACHE_UPDATE_PROTECTION_SECS.to_string()),
        ("opcache.memory_consumption", "64".into()),
        ("opcache.max_accelerated_files", "4000".into()),
        ("realpath_cache_size", "4096K".into()),
        // php.wasm's flock() is a no-op stub; the mount's polyfill replaces it.
        ("disable_functions", "flock".into()),
    ]
}

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
    use super::entries;

    fn value(name: &str) -> String {
        entries().into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap_or_default()
    }

    #[test]
    fn opcache_validates_every_include_with_the_protection_the_epoch_assumes() {
        assert_eq!(value("opcache.validate_timestamps"), "1");
        assert_eq!(value("opcache.revalidate_freq"), "0");
        assert_eq!(value("opcache.file_update_protection"), "2");
        assert_eq!(value("opcache.file_cache_only"), "0", "in memory");
    }
}

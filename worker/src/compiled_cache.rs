//! Compiled PHP shared by every worker: OPcache's file cache lives on the
//! shared filesystem beneath each worker's in-memory cache, so a script one
//! worker compiled is loaded, not compiled again, by the others, by a
//! replaced worker, and by a saved site reopened later.
//!
//! Why it is never stale or foreign:
//! - OPcache checks each entry's recorded mtime against the script's
//!   (`validate_timestamps`), its checksum (`file_cache_consistency_checks`),
//!   and its size, so an entry cut short by a worker that died mid-write, or
//!   damaged, is deleted and the script compiled again.
//! - Entries live under a folder named after the php.wasm binary (its build
//!   id, a hash of its bytes), so another build's entries are never read.
//! - What a timestamp cannot show moves shared-fs's mtime-reuse epoch: the
//!   first worker to see it move clears the cache before its next run, and a
//!   worker that has not yet seen it may not publish an entry (`refuses_create`),
//!   since what it compiled may predate the change.
//! - Only scripts on the shared filesystem are published: a worker's own
//!   files (php-wasm's preloads) may differ under the same path and mtime.

use shared_fs::{Errno, FileSystem, Ino};

/// Where compiled scripts live, on the shared filesystem and (mounted at
/// the same path) in PHP.
pub const ROOT: &str = "/internal/opcache";

/// The folder of one php.wasm build's entries (OPcache's `file_cache`).
/// `build_id` is checked to be a single plain name.
pub fn dir(build_id: &str) -> Option<String> {
    let plain = !build_id.is_empty()
        && build_id.len() <= 128
        && build_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && build_id != "."
        && build_id != "..";
    plain.then(|| format!("{ROOT}/{build_id}"))
}

/// Removes every entry of every build, keeping the builds' folders (each
/// is a mount point in its workers' PHP). Entries another worker is writing
/// at the same moment may survive; they were compiled after the change
/// (a worker that had not seen it cannot create one).
pub fn clear(fs: &FileSystem) {
    let Ok(root) = fs.resolve(FileSystem::ROOT, ROOT.as_bytes(), true) else { return };
    let Ok(builds) = crate::jobs::child_names(fs, root.ino) else { return };
    for build in builds {
        let Ok(folder) = fs.lookup(root.ino, &build) else { continue };
        let Ok(entries) = crate::jobs::child_names(fs, folder.ino) else { continue };
        for name in entries {
            // A concurrent store may refill a folder while it is removed.
            let _ = crate::jobs::remove_tree(fs, folder.ino, &name);
        }
    }
}

/// Whether the file `name` created in `parent` is a cache entry that must
/// not be published:
/// - the creating worker's caches predate the newest change a timestamp
///   cannot show (`caches_current` false), so what it compiled may be of
///   the old bytes; or
/// - its script is not on the shared filesystem (`shared` says which paths
///   are): a file in a worker's own memory (php-wasm's preloads, its
///   prepend script) may differ between workers under the same path and
///   mtime.
pub fn refuses_create(fs: &FileSystem, parent: Ino, name: &[u8], caches_current: bool, shared: &dyn Fn(&str) -> bool) -> bool {
    let Some(script) = entry_script(fs, parent, name) else { return false };
    !caches_current || !shared(&script)
}

/// The script an entry named `name` in `parent` would hold (OPcache's layout
/// `<root>/<build>/<system id><script path>.bin`); `None` outside the cache.
/// Walks up by `..` alone (cheap) and reads names only inside the cache: this
/// runs on every file PHP creates.
fn entry_script(fs: &FileSystem, parent: Ino, name: &[u8]) -> Option<String> {
    let root = fs.resolve(FileSystem::ROOT, ROOT.as_bytes(), true).ok()?;
    // `parent`, its parent, ... up to the cache root (excluded).
    let mut chain = Vec::new();
    let mut dir = parent;
    // Deeper than any cache path (root, build, system id, the script's path).
    while dir != root.ino {
        if dir == FileSystem::ROOT || chain.len() > 256 {
            return None;
        }
        chain.push(dir);
        dir = fs.lookup(dir, b"..").ok()?.ino;
    }
    // The names from the root down: build, system id, the script's folders.
    let mut names = Vec::with_capacity(chain.len() + 1);
    let mut above = root.ino;
    for &dir in chain.iter().rev() {
        names.push(String::from_utf8_lossy(&name_in(fs, above, dir)?).into_owned());
        above = dir;
    }
    names.push(String::from_utf8_lossy(name).into_owned());
    let script = names.get(2..)?.join("/");
    Some(format!("/{}", script.strip_suffix(".bin").unwrap_or(&script)))
}

/// The name `child` has in directory `dir`.
fn name_in(fs: &FileSystem, dir: Ino, child: Ino) -> Option<Vec<u8>> {
    let mut found = None;
    fs.readdir(dir, 0, &mut |entry| {
        if entry.ino == child && entry.name != b"." && entry.name != b".." {
            found = Some(entry.name.to_vec());
            return false;
        }
        true
    })
    .ok()?;
    found
}

/// The errno a refused entry gets: OPcache then keeps the script in memory only.
pub const REFUSED: Errno = Errno::EACCES;

#[cfg(test)]
mod tests {
    use super::*;
    use shared_fs::{Config, Timespec};

    fn fs() -> FileSystem {
        FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 1 << 22, clock: || Timespec { sec: 1_000, nsec: 0 } })
            .unwrap()
    }

    #[test]
    fn a_build_id_names_one_folder_under_the_root() {
        assert_eq!(dir("php-8.3-jspi-0123abcd").as_deref(), Some("/internal/opcache/php-8.3-jspi-0123abcd"));
        for bad in ["", ".", "..", "a/b", "a b", "../x", &"x".repeat(129)] {
            assert_eq!(dir(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_stale_worker_cannot_create_inside_the_cache_but_can_elsewhere() {
        let fs = fs();
        let shared = |script: &str| script.starts_with("/wordpress/");
        crate::files::mkdir_all(&fs, "/internal/opcache/b/0123abcd/wordpress").unwrap();
        crate::files::mkdir_all(&fs, "/wordpress/wp-includes").unwrap();
        let deep = fs.resolve(FileSystem::ROOT, b"/internal/opcache/b/0123abcd/wordpress", true).unwrap().ino;
        let site = fs.resolve(FileSystem::ROOT, b"/wordpress/wp-includes", true).unwrap().ino;
        let internal = fs.resolve(FileSystem::ROOT, b"/internal", true).unwrap().ino;
        assert!(refuses_create(&fs, deep, b"index.php.bin", false, &shared));
        assert!(!refuses_create(&fs, deep, b"index.php.bin", true, &shared), "a current worker publishes");
        assert!(!refuses_create(&fs, site, b"new.php", false, &shared), "the site's own files are not the cache's");
        assert!(!refuses_create(&fs, internal, b"x", false, &shared), "above the root");
    }

    #[test]
    fn only_scripts_on_the_shared_filesystem_are_published() {
        let fs = fs();
        let shared = |script: &str| script.starts_with("/wordpress/") || script.starts_with("/tmp/");
        crate::files::mkdir_all(&fs, "/internal/opcache/b/0123abcd/wordpress/wp-includes").unwrap();
        crate::files::mkdir_all(&fs, "/internal/opcache/b/0123abcd/internal/shared/preload").unwrap();
        let site = fs.resolve(FileSystem::ROOT, b"/internal/opcache/b/0123abcd/wordpress/wp-includes", true).unwrap().ino;
        let private = fs.resolve(FileSystem::ROOT, b"/internal/opcache/b/0123abcd/internal/shared/preload", true).unwrap().ino;
        assert_eq!(entry_script(&fs, site, b"plugin.php.bin").as_deref(), Some("/wordpress/wp-includes/plugin.php"));
        assert!(!refuses_create(&fs, site, b"plugin.php.bin", true, &shared));
        assert_eq!(entry_script(&fs, private, b"net.php.bin").as_deref(), Some("/internal/shared/preload/net.php"));
        assert!(refuses_create(&fs, private, b"net.php.bin", true, &shared), "a worker's own file");
    }

    #[test]
    fn clear_removes_every_builds_entries_and_keeps_their_folders() {
        let fs = fs();
        for path in ["/internal/opcache/a/s/wordpress/index.php.bin", "/internal/opcache/b/s/x.php.bin"] {
            let (parent, _) = path.rsplit_once('/').unwrap();
            crate::files::mkdir_all(&fs, parent).unwrap();
            crate::files::write_file(&fs, path, b"entry", None).unwrap();
        }
        crate::files::write_file(&fs, "/kept.php", b"<?php", None).unwrap();
        clear(&fs);
        for build in ["/internal/opcache/a", "/internal/opcache/b"] {
            let folder = fs.resolve(FileSystem::ROOT, build.as_bytes(), true).expect("the folder stays");
            assert!(crate::jobs::child_names(&fs, folder.ino).unwrap().is_empty(), "{build} is empty");
        }
        assert!(fs.resolve(FileSystem::ROOT, b"/kept.php", true).is_ok());
        assert!(fs.check().is_ok());
    }
}

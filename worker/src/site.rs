//! Installing a site into the shared filesystem, once, by the worker that
//! formats it: nothing to do for a blank site, unpacking for an archive,
//! and for WordPress also wiring the SQLite database integration in.

use crate::archive::{self, ArchiveError};
use crate::files;
use protocol::SiteKind;
use shared_fs::FileSystem;

/// PHP in a browser has no outgoing network: php.wasm's socket layer traps
/// when WordPress tries (update checks, cron spawning), so WordPress gets a
/// clean error instead. Also skips the admin-email check at first login.
const PLAYGROUND_MU_PLUGIN: &str = r#"<?php
add_filter('pre_http_request', function () {
	return new WP_Error('http_request_failed', 'This site runs in a browser: PHP has no outgoing network.');
}, 10, 0);
// A fresh site would otherwise stop the first login to confirm the admin email.
add_filter('admin_email_check_interval', '__return_zero');
"#;

/// Where the SQLite integration goes, relative to the document root.
const SQLITE_PLUGIN_DIR: &str = "wp-content/mu-plugins/sqlite-database-integration";

pub fn install(fs: &FileSystem, kind: &SiteKind, archives: &[Vec<u8>], document_root: &str) -> Result<usize, String> {
    let need = |n: usize| {
        if archives.len() < n {
            Err(format!("{kind:?} needs {n} archive(s), got {}", archives.len()))
        } else {
            Ok(())
        }
    };
    let text = |e: ArchiveError| e.to_string();
    match kind {
        SiteKind::Blank => Ok(0),
        SiteKind::Archive => {
            need(1)?;
            archive::unpack(fs, &archives[0], document_root, "").map_err(text)
        }
        SiteKind::WordPress => {
            need(2)?;
            let mut files = archive::unpack(fs, &archives[0], document_root, "").map_err(text)?;
            let plugin_dir = format!("{document_root}/{SQLITE_PLUGIN_DIR}");
            let prefix = top_folder(&archives[1]).map_err(text)?;
            files += archive::unpack(fs, &archives[1], &plugin_dir, &prefix).map_err(text)?;
            install_db_dropin(fs, document_root, &plugin_dir)?;
            let mu_plugin = format!("{document_root}/wp-content/mu-plugins/0-playground.php");
            files::write_file(fs, &mu_plugin, PLAYGROUND_MU_PLUGIN.as_bytes(), None)
                .map_err(|e| format!("{mu_plugin}: {}", e.name()))?;
            Ok(files + 2)
        }
    }
}

/// The folder every entry of a plugin zip sits in (`name-main/`), if any.
fn top_folder(zip: &[u8]) -> Result<String, ArchiveError> {
    let entries = archive::entries(zip)?;
    let first = entries.first().and_then(|e| e.name.split_once('/')).map(|(top, _)| format!("{top}/"));
    Ok(match first {
        Some(top) if entries.iter().all(|e| e.name.starts_with(&top)) => top,
        _ => String::new(),
    })
}

/// WordPress loads `wp-content/db.php` instead of MySQL: the plugin ships it
/// as `db.copy` with its own location left as placeholders.
fn install_db_dropin(fs: &FileSystem, document_root: &str, plugin_dir: &str) -> Result<(), String> {
    let template_path = format!("{plugin_dir}/db.copy");
    let template = files::read_file(fs, &template_path).map_err(|e| format!("{template_path}: {}", e.name()))?;
    let dropin = String::from_utf8_lossy(&template)
        .replace("{SQLITE_IMPLEMENTATION_FOLDER_PATH}", plugin_dir)
        .replace("{SQLITE_PLUGIN}", "sqlite-database-integration/load.php");
    let path = format!("{document_root}/wp-content/db.php");
    files::write_file(fs, &path, dropin.as_bytes(), None).map_err(|e| format!("{path}: {}", e.name()))
}

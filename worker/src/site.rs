//! Installing a site into the shared filesystem, once, by the worker that
//! formats it: nothing to do for a blank site, unpacking for an archive,
//! and for WordPress also wiring the SQLite database integration in.

use crate::archive::{self, ArchiveError};
use crate::files;
use protocol::SiteKind;
use shared_fs::FileSystem;

/// WordPress's outgoing HTTP goes through the worker's fetch()
/// (`PhpPool\Http`, preloaded: worker/src/net.rs), which also answers with a
/// clean error when networking is off: php.wasm's own sockets trap without a
/// network, so Requests' curl and fsockopen transports are never chosen.
/// Also skips the admin-email check at first login.
const PLAYGROUND_MU_PLUGIN: &str = r#"<?php
namespace PhpPool;

if (\interface_exists(\WpOrg\Requests\Transport::class)) {
	final class RequestsTransport implements \WpOrg\Requests\Transport
	{
		public function request($url, $headers = [], $data = [], $options = [])
		{
			$lines = [];
			foreach ((array) $headers as $name => $value) {
				$lines[] = \is_int($name) ? $value : $name . ': ' . (\is_array($value) ? \implode(', ', $value) : $value);
			}
			$data = \is_array($data) ? \http_build_query($data, '', '&') : (string) $data;
			$in_query = ($options['data_format'] ?? 'body') === 'query';
			$answer = Http::send($options['type'] ?? 'GET', $url, $lines, $in_query ? '' : $data, [
				'query' => $in_query ? $data : null,
				'follow' => $options['follow_redirects'] ?? null,
				'max_redirects' => $options['redirects'] ?? null,
				'timeout' => $options['timeout'] ?? null,
				'blocking' => $options['blocking'] ?? null,
				'max_bytes' => $options['max_bytes'] ?? null,
			]);
			if (isset($answer['error'])) {
				throw new \WpOrg\Requests\Exception($answer['error'], 'php_pool_net');
			}
			if (!($options['blocking'] ?? true)) {
				return '';
			}
			$head = \implode("\r\n", $answer['head']);
			if (empty($options['filename'])) {
				return $head . "\r\n\r\n" . $answer['body'];
			}
			if (\file_put_contents($options['filename'], $answer['body']) === false) {
				throw new \WpOrg\Requests\Exception("cannot write {$options['filename']}", 'php_pool_net');
			}
			return $head;
		}

		public function request_multiple($requests, $options)
		{
			// One after the other: PHP waits for each anyway.
			$responses = [];
			foreach ($requests as $id => $request) {
				try {
					$responses[$id] = $this->request($request['url'], $request['headers'], $request['data'], $request['options']);
					$request['options']['hooks']->dispatch('transport.internal.parse_response', [&$responses[$id], $request]);
				} catch (\WpOrg\Requests\Exception $e) {
					$responses[$id] = $e;
				}
				if (!\is_string($responses[$id])) {
					$request['options']['hooks']->dispatch('multiple.request.complete', [&$responses[$id], $id]);
				}
			}
			return $responses;
		}

		public static function test($capabilities = [])
		{
			return true;
		}
	}

	// WP_Http's requests use this transport instead of curl or fsockopen.
	\add_action('requests-requests.before_request', static function (&$url, &$headers, &$data, &$type, &$options) {
		$options['transport'] = RequestsTransport::class;
	}, 10, 5);
}

// A fresh site would otherwise stop the first login to confirm the admin email.
\add_filter('admin_email_check_interval', '__return_zero');

"#;

/// Where the SQLite integration goes, relative to the document root.
const SQLITE_PLUGIN_DIR: &str = "wp-content/mu-plugins/sqlite-database-integration";

/// Installs a new site of `kind` from `archives`. A new WordPress site,
/// from the zips or from the build's image, gets its
/// own secret keys and salts in `wp-config.php` (`random`: `SALT_BYTES`).
pub fn install(fs: &FileSystem, kind: &SiteKind, archives: &[&dyn archive::ZipBytes], document_root: &str, random: &[u8]) -> Result<usize, String> {
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
            archive::unpack(fs, archives[0], document_root, "").map_err(text)
        }
        // Names from `/`: the document root and the compiled scripts.
        SiteKind::Image => {
            need(1)?;
            let files = archive::unpack(fs, archives[0], "/", "").map_err(text)?;
            // The image's salts are the build's own: each site replaces them all.
            give_fresh_salts(fs, document_root, random, Salts::All)?;
            Ok(files)
        }
        SiteKind::WordPress => {
            need(2)?;
            // wordpress.org's zips keep everything in `wordpress/`; the builds' do not.
            let prefix = top_folder(archives[0]).map_err(text)?;
            let mut files = archive::unpack(fs, archives[0], document_root, &prefix).map_err(text)?;
            files += write_config_if_missing(fs, document_root)?;
            // A zip that chose its own salts keeps them.
            give_fresh_salts(fs, document_root, random, Salts::Placeholders)?;
            let plugin_dir = format!("{document_root}/{SQLITE_PLUGIN_DIR}");
            let prefix = top_folder(archives[1]).map_err(text)?;
            files += archive::unpack(fs, archives[1], &plugin_dir, &prefix).map_err(text)?;
            install_db_dropin(fs, document_root, &plugin_dir)?;
            let mu_plugin = format!("{document_root}/wp-content/mu-plugins/0-playground.php");
            files::write_file(fs, &mu_plugin, PLAYGROUND_MU_PLUGIN.as_bytes(), None)
                .map_err(|e| format!("{mu_plugin}: {}", e.name()))?;
            Ok(files + 2)
        }
    }
}

/// A reopened site's SQLite integration, brought up to `zip`'s (the one new
/// sites get) when it is older: saved sites keep their data and get the
/// newer driver, which converts their database on its first connection
/// (`SQLITE_DRIVER_VERSION` in it). The new copy is unpacked beside the old
/// one and swapped in by renames, so a site cut off at any point reopens
/// with one whole copy and is upgraded again. Returns the versions (from,
/// to) when it upgraded; `None` for a site without our SQLite integration
/// or with one as new.
pub fn upgrade_sqlite_integration(
    fs: &FileSystem,
    zip: &dyn archive::ZipBytes,
    document_root: &str,
) -> Result<Option<(String, String)>, String> {
    let plugin_dir = format!("{document_root}/{SQLITE_PLUGIN_DIR}");
    let (staged, replaced) = (format!("{plugin_dir}.new"), format!("{plugin_dir}.old"));
    finish_swap(fs, &plugin_dir, &staged, &replaced)?;
    let Some(installed) = files::read_file(fs, &format!("{plugin_dir}/load.php")).ok().and_then(|t| plugin_version(&t)) else {
        return Ok(None);
    };
    let prefix = top_folder(zip).map_err(|e| e.to_string())?;
    let shipped = archive::entries(zip)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|e| e.name == format!("{prefix}load.php").as_bytes())
        .ok_or("the SQLite integration zip has no load.php")?
        .contents(zip)
        .map_err(|e| e.to_string())?;
    let shipped = plugin_version(&shipped).ok_or("the SQLite integration zip's load.php names no version")?;
    if version_key(&installed) >= version_key(&shipped) {
        return Ok(None);
    }
    archive::unpack(fs, zip, &staged, &prefix).map_err(|e| e.to_string())?;
    move_path(fs, &plugin_dir, &replaced)?;
    move_path(fs, &staged, &plugin_dir)?;
    install_db_dropin(fs, document_root, &plugin_dir)?;
    remove_path(fs, &replaced)?;
    Ok(Some((installed, shipped)))
}

/// After an upgrade cut short: the staged copy is whole once the old one was
/// moved aside (it is moved only then), so it takes the old one's place;
/// otherwise what was staged is dropped.
fn finish_swap(fs: &FileSystem, plugin_dir: &str, staged: &str, replaced: &str) -> Result<(), String> {
    let exists = |path: &str| fs.resolve(FileSystem::ROOT, path.as_bytes(), false).is_ok();
    if !exists(plugin_dir) && exists(replaced) {
        if exists(staged) {
            move_path(fs, staged, plugin_dir)?;
        } else {
            move_path(fs, replaced, plugin_dir)?;
        }
    }
    for leftover in [staged, replaced] {
        if exists(leftover) {
            remove_path(fs, leftover)?;
        }
    }
    Ok(())
}

fn move_path(fs: &FileSystem, from: &str, to: &str) -> Result<(), String> {
    files::rename_path(fs, from, to).map_err(|e| format!("cannot move {from} to {to}: {}", e.name()))
}

fn remove_path(fs: &FileSystem, path: &str) -> Result<(), String> {
    files::remove_all(fs, path).map_err(|e| format!("cannot remove {path}: {}", e.name()))
}

/// The `Version:` of a WordPress plugin's header.
fn plugin_version(main_file: &[u8]) -> Option<String> {
    // The header is at the top; a cut through a character only spoils it.
    let text = String::from_utf8_lossy(&main_file[..main_file.len().min(8192)]);
    text.lines()
        .filter_map(|line| line.trim_start_matches([' ', '\t', '*', '#', '/']).strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// `2.1.11` < `3.0.2` < `3.0.10`: numbers compared as numbers.
fn version_key(version: &str) -> Vec<u64> {
    version.split(['.', '-']).map(|part| part.parse().unwrap_or(0)).collect()
}

/// The folder every entry of a plugin zip sits in (`name-main/`), if any.
fn top_folder(zip: &dyn archive::ZipBytes) -> Result<String, ArchiveError> {
    let entries = archive::entries(zip)?;
    let first = entries.first().and_then(|e| e.shown().split_once('/').map(|(top, _)| format!("{top}/")));
    Ok(match first {
        Some(top) if entries.iter().all(|e| e.name.starts_with(top.as_bytes())) => top,
        _ => String::new(),
    })
}

/// A wordpress.org zip has no `wp-config.php`: its sample serves, as the
/// database settings go unused (SQLite) and WordPress is installed later
/// (host/src/versions.rs `INSTALL_WORDPRESS_PHP`).
fn write_config_if_missing(fs: &FileSystem, document_root: &str) -> Result<usize, String> {
    let config = format!("{document_root}/wp-config.php");
    if files::read_file(fs, &config).is_ok() {
        return Ok(0);
    }
    let sample = format!("{document_root}/wp-config-sample.php");
    let Ok(text) = files::read_file(fs, &sample) else { return Ok(0) };
    files::write_file(fs, &config, &text, None).map_err(|e| format!("{config}: {}", e.name()))?;
    Ok(1)
}

/// The secret keys and salts `wp-config.php` defines.
const SALT_NAMES: [&str; 8] =
    ["AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"];
const SALT_LENGTH: usize = 64;
/// Random bytes `install` takes: one per character of every salt.
pub const SALT_BYTES: usize = SALT_NAMES.len() * SALT_LENGTH;

/// Without its own salts a site keeps the sample's placeholders, and
/// WordPress reads the salts from the database: the same for every site
/// made from the build's image, and two more queries on each page that
/// makes a nonce.
fn give_fresh_salts(fs: &FileSystem, document_root: &str, random: &[u8], which: Salts) -> Result<(), String> {
    let config = format!("{document_root}/wp-config.php");
    let Ok(text) = files::read_file(fs, &config) else { return Ok(()) };
    let Some(salted) = std::str::from_utf8(&text).ok().and_then(|text| with_fresh_salts(text, random, which)) else { return Ok(()) };
    files::write_file(fs, &config, salted.as_bytes(), None).map_err(|e| format!("{config}: {}", e.name()))
}

/// Which salts `with_fresh_salts` replaces.
#[derive(Clone, Copy, PartialEq)]
enum Salts {
    All,
    /// Only the sample's placeholder (or an empty value).
    Placeholders,
}

const SALT_PLACEHOLDER: &str = "put your unique phrase here";

/// `config` with each salt it defines as a plain quoted string
/// (`define( 'AUTH_KEY', '…' );`, `which` of them) set to 64 characters
/// made from `random`; `None` when it changed none or `random` is short.
fn with_fresh_salts(config: &str, random: &[u8], which: Salts) -> Option<String> {
    // 64 symbols: each byte picks one without bias.
    const SYMBOLS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if random.len() < SALT_BYTES {
        return None;
    }
    let mut out = config.to_string();
    let mut changed = false;
    for (i, name) in SALT_NAMES.iter().enumerate() {
        let Some(value) = salt_value_range(&out, name) else { continue };
        if which == Salts::Placeholders && !matches!(&out[value.clone()], SALT_PLACEHOLDER | "") {
            continue;
        }
        let salt: String = random[i * SALT_LENGTH..(i + 1) * SALT_LENGTH].iter().map(|b| SYMBOLS[usize::from(b % 64)] as char).collect();
        out.replace_range(value, &salt);
        changed = true;
    }
    changed.then_some(out)
}

/// Where the quoted value of `define( 'NAME', '…' )` is, when it is one
/// plain string (no escapes): the first such `define` (the name may come
/// before it in a comment or a `defined()` check).
fn salt_value_range(config: &str, name: &str) -> Option<std::ops::Range<usize>> {
    ['\'', '"'].into_iter().find_map(|quote| {
        let key = format!("{quote}{name}{quote}");
        config.match_indices(&key).find_map(|(at, _)| defined_value(config, at, key.len()))
    })
}

/// The plain string value of the `define(` whose quoted name is at
/// `config[at..at + name_length]`; `None` if it is not one.
fn defined_value(config: &str, at: usize, name_length: usize) -> Option<std::ops::Range<usize>> {
    if in_comment(&config[..at]) {
        return None;
    }
    let before = config[..at].trim_end().strip_suffix('(')?;
    let is_define = before.trim_end().strip_suffix("define").is_some_and(|b| !b.ends_with(|c: char| c.is_alphanumeric() || c == '_'));
    if !is_define {
        return None;
    }
    let rest = config[at + name_length..].trim_start().strip_prefix(',')?.trim_start();
    let value_quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let start = config.len() - rest.len() + 1;
    let length = config[start..].find(value_quote)?;
    let value = &config[start..start + length];
    if value.contains('\\') || value.contains('$') || value.contains('\n') {
        return None;
    }
    Some(start..start + length)
}

/// Whether PHP source ending with `before` is inside a comment (a line's
/// `//` or `#`, or an open `/*`); a `//` in a string on the line counts too,
/// which only leaves that salt as it was.
fn in_comment(before: &str) -> bool {
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let open_block = before.rfind("/*").is_some_and(|open| before.rfind("*/").is_none_or(|close| close < open));
    open_block || line.contains("//") || line.trim_start().starts_with('#')
}

/// Put first in `db.php`: the SQLite integration 3 defaults to WAL, whose
/// index lives in memory each worker maps for itself (php.wasm's mmap is a
/// private copy), so workers would not see each other's commits. The
/// rollback journal is coordinated by file locks, which the shared
/// filesystem gives every worker.
const JOURNAL_MODE: &str = "<?php
// php-pool: every PHP worker opens this database; see worker/src/site.rs.
if (!defined('SQLITE_JOURNAL_MODE')) {
	define('SQLITE_JOURNAL_MODE', 'DELETE');
}
?>";

/// WordPress loads `wp-content/db.php` instead of MySQL: the plugin ships it
/// as `db.copy` with its own location left as placeholders.
fn install_db_dropin(fs: &FileSystem, document_root: &str, plugin_dir: &str) -> Result<(), String> {
    let template_path = format!("{plugin_dir}/db.copy");
    let template = files::read_file(fs, &template_path).map_err(|e| format!("{template_path}: {}", e.name()))?;
    let dropin = String::from_utf8_lossy(&template)
        .replace("{SQLITE_IMPLEMENTATION_FOLDER_PATH}", plugin_dir)
        .replace("{SQLITE_PLUGIN}", "sqlite-database-integration/load.php");
    let dropin = format!("{JOURNAL_MODE}{dropin}");
    let path = format!("{document_root}/wp-content/db.php");
    files::write_file(fs, &path, dropin.as_bytes(), None).map_err(|e| format!("{path}: {}", e.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_fs::{Config, Timespec};

    fn new_fs() -> FileSystem {
        FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 64 << 20, clock: || Timespec { sec: 1_700_000_000, nsec: 0 } })
            .unwrap()
    }

    /// A zip of `files`, packed from a scratch filesystem.
    fn zip(files: &[(&str, &str)]) -> Vec<u8> {
        let fs = new_fs();
        for (path, text) in files {
            let path = format!("/z/{path}");
            crate::mkdir_all(&fs, path.rsplit_once('/').unwrap().0).unwrap();
            files::write_file(&fs, &path, text.as_bytes(), None).unwrap();
        }
        archive::pack(&fs, "/z").unwrap()
    }

    fn text(fs: &FileSystem, path: &str) -> Option<String> {
        files::read_file(fs, path).ok().map(|b| String::from_utf8(b).unwrap())
    }

    fn sqlite_plugin() -> Vec<u8> {
        zip(&[("sqlite-main/db.copy", "<?php // {SQLITE_IMPLEMENTATION_FOLDER_PATH} {SQLITE_PLUGIN}"), ("sqlite-main/load.php", "<?php")])
    }

    #[test]
    fn a_wordpress_org_zip_is_unpacked_from_its_folder_and_gets_a_config() {
        let fs = new_fs();
        let wordpress = zip(&[
            ("wordpress/index.php", "<?php // front"),
            ("wordpress/wp-config-sample.php", "<?php // sample"),
            ("wordpress/wp-content/index.php", "<?php"),
        ]);
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress", &RANDOM).unwrap();
        assert_eq!(text(&fs, "/wordpress/index.php").as_deref(), Some("<?php // front"));
        assert_eq!(text(&fs, "/wordpress/wp-config.php").as_deref(), Some("<?php // sample"));
        assert!(text(&fs, "/wordpress/wordpress/index.php").is_none());
        let dropin = text(&fs, "/wordpress/wp-content/db.php").unwrap();
        assert!(dropin.starts_with(JOURNAL_MODE), "{dropin}");
        assert!(dropin.contains("/wordpress/wp-content/mu-plugins/sqlite-database-integration sqlite-database-integration/load.php"), "{dropin}");
        assert!(text(&fs, "/wordpress/wp-content/mu-plugins/0-playground.php").is_some());
    }

    /// A SQLite integration zip of `version`, its files in `name-main/`.
    fn sqlite_plugin_of(version: &str, marker: &str) -> Vec<u8> {
        let header = format!("<?php\n/**\n * Plugin Name: SQLite Database Integration\n * Version: {version}\n */\n");
        zip(&[
            ("sqlite-main/db.copy", "<?php // dropin {SQLITE_IMPLEMENTATION_FOLDER_PATH}"),
            ("sqlite-main/load.php", &header),
            (&format!("sqlite-main/{marker}.php"), "<?php"),
        ])
    }

    fn wordpress_with_sqlite(version: &str) -> FileSystem {
        let fs = new_fs();
        let wordpress = zip(&[("index.php", "<?php"), ("wp-config.php", "<?php")]);
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin_of(version, "old-only")], "/wordpress", &RANDOM).unwrap();
        fs
    }

    const PLUGIN: &str = "/wordpress/wp-content/mu-plugins/sqlite-database-integration";

    #[test]
    fn an_older_sqlite_integration_is_replaced_whole_and_a_current_one_kept() {
        let fs = wordpress_with_sqlite("2.1.11");
        crate::mkdir_all(&fs, "/wordpress/wp-content/database").unwrap();
        files::write_file(&fs, "/wordpress/wp-content/database/.ht.sqlite", b"data", None).unwrap();
        let upgraded = upgrade_sqlite_integration(&fs, &sqlite_plugin_of("3.0.2", "new-only"), "/wordpress").unwrap();
        assert_eq!(upgraded, Some(("2.1.11".into(), "3.0.2".into())));
        assert!(text(&fs, &format!("{PLUGIN}/new-only.php")).is_some());
        assert!(text(&fs, &format!("{PLUGIN}/old-only.php")).is_none(), "the old copy's files are gone");
        assert!(text(&fs, &format!("{PLUGIN}.new/load.php")).is_none() && text(&fs, &format!("{PLUGIN}.old/load.php")).is_none());
        assert_eq!(text(&fs, "/wordpress/wp-content/db.php").as_deref(), Some(&*format!("{JOURNAL_MODE}<?php // dropin {PLUGIN}")));
        assert_eq!(text(&fs, "/wordpress/wp-content/database/.ht.sqlite").as_deref(), Some("data"));
        // Once current, or newer than what is shipped: nothing to do.
        assert_eq!(upgrade_sqlite_integration(&fs, &sqlite_plugin_of("3.0.2", "again"), "/wordpress").unwrap(), None);
        assert_eq!(upgrade_sqlite_integration(&fs, &sqlite_plugin_of("2.9.99", "older"), "/wordpress").unwrap(), None);
        assert!(text(&fs, &format!("{PLUGIN}/again.php")).is_none() && text(&fs, &format!("{PLUGIN}/older.php")).is_none());
    }

    #[test]
    fn a_site_without_the_sqlite_integration_is_left_alone() {
        let fs = new_fs();
        install(&fs, &SiteKind::Archive, &[&zip(&[("index.php", "<?php")])], "/wordpress", &RANDOM).unwrap();
        assert_eq!(upgrade_sqlite_integration(&fs, &sqlite_plugin_of("3.0.2", "new-only"), "/wordpress").unwrap(), None);
        assert!(text(&fs, &format!("{PLUGIN}/load.php")).is_none());
    }

    #[test]
    fn an_upgrade_cut_short_reopens_with_one_whole_copy() {
        let shipped = sqlite_plugin_of("3.0.2", "new-only");
        // Cut after the old copy was moved aside: the staged copy is whole.
        let fs = wordpress_with_sqlite("2.1.11");
        archive::unpack(&fs, &shipped, &format!("{PLUGIN}.new"), "sqlite-main/").unwrap();
        move_path(&fs, PLUGIN, &format!("{PLUGIN}.old")).unwrap();
        assert_eq!(upgrade_sqlite_integration(&fs, &shipped, "/wordpress").unwrap(), None, "already the new copy");
        assert!(text(&fs, &format!("{PLUGIN}/new-only.php")).is_some());
        assert!(text(&fs, &format!("{PLUGIN}.old/load.php")).is_none());
        // Cut while staging: the staged part is dropped and the upgrade redone.
        let fs = wordpress_with_sqlite("2.1.11");
        crate::mkdir_all(&fs, &format!("{PLUGIN}.new")).unwrap();
        files::write_file(&fs, &format!("{PLUGIN}.new/load.php"), b"<?php // half", None).unwrap();
        assert_eq!(upgrade_sqlite_integration(&fs, &shipped, "/wordpress").unwrap(), Some(("2.1.11".into(), "3.0.2".into())));
        assert!(text(&fs, &format!("{PLUGIN}/new-only.php")).is_some());
        // Cut after the old copy was moved aside with nothing staged (it
        // cannot happen, but the old copy is not lost).
        let fs = wordpress_with_sqlite("2.1.11");
        move_path(&fs, PLUGIN, &format!("{PLUGIN}.old")).unwrap();
        assert_eq!(upgrade_sqlite_integration(&fs, &shipped, "/wordpress").unwrap(), Some(("2.1.11".into(), "3.0.2".into())));
    }

    #[test]
    fn plugin_versions_are_read_from_the_header_and_compared_as_numbers() {
        assert_eq!(plugin_version(b"<?php\n/**\n * Plugin Name: X\n * Version: 2.1.11\n */").as_deref(), Some("2.1.11"));
        assert_eq!(plugin_version(b"<?php // no header"), None);
        assert!(version_key("3.0.10") > version_key("3.0.2"));
        assert!(version_key("2.1.11") < version_key("3.0.2"));
    }

    const RANDOM: [u8; SALT_BYTES] = [7; SALT_BYTES];

    const SAMPLE: &str = "<?php\n/** Authentication unique keys and salts. */\ndefine( 'AUTH_KEY',         'put your unique phrase here' );\ndefine( 'SECURE_AUTH_KEY',  'put your unique phrase here' );\ndefine( 'LOGGED_IN_KEY',    'put your unique phrase here' );\ndefine( 'NONCE_KEY',        'put your unique phrase here' );\ndefine( 'AUTH_SALT',        'put your unique phrase here' );\ndefine( 'SECURE_AUTH_SALT', 'put your unique phrase here' );\ndefine( 'LOGGED_IN_SALT',   'put your unique phrase here' );\ndefine( 'NONCE_SALT',       'put your unique phrase here' );\n$table_prefix = 'wp_';\n";

    fn salts_of(config: &str) -> Vec<String> {
        SALT_NAMES.iter().map(|name| salt_value_range(config, name).map(|r| config[r].to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn a_new_site_gets_its_own_salts_and_keeps_the_rest_of_its_config() {
        let random: Vec<u8> = (0..SALT_BYTES).map(|i| (i * 7 + i / 64) as u8).collect();
        let salted = with_fresh_salts(SAMPLE, &random, Salts::All).unwrap();
        let salts = salts_of(&salted);
        assert!(salts.iter().all(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')), "{salts:?}");
        let distinct: std::collections::HashSet<_> = salts.iter().collect();
        assert_eq!(distinct.len(), 8, "each salt its own");
        assert!(!salted.contains("put your unique phrase here"));
        let placeholders: String = salts.iter().fold(salted.clone(), |text, salt| text.replacen(salt.as_str(), "put your unique phrase here", 1));
        assert_eq!(placeholders, SAMPLE, "nothing else changed");
        assert_ne!(with_fresh_salts(SAMPLE, &[1; SALT_BYTES], Salts::All).unwrap(), salted, "other bytes, other salts");
    }

    #[test]
    fn salts_that_are_not_plain_strings_are_left_alone() {
        let config = "<?php\ndefine('AUTH_KEY', getenv('AUTH_KEY'));\ndefine(\"NONCE_KEY\", \"old\");\n// 'LOGGED_IN_KEY' is set below\ndefine('AUTH_SALT', 'a\\'b');\n";
        let salted = with_fresh_salts(config, &RANDOM, Salts::All).unwrap();
        assert!(salted.contains("define('AUTH_KEY', getenv('AUTH_KEY'));"), "{salted}");
        assert!(salted.contains("define('AUTH_SALT', 'a\\'b');"), "{salted}");
        assert!(!salted.contains("\"old\"") && salted.contains("define(\"NONCE_KEY\", \""), "double quotes too: {salted}");
        assert!(salted.contains("// 'LOGGED_IN_KEY' is set below"));
        assert_eq!(with_fresh_salts("<?php // build", &RANDOM, Salts::All), None);
        assert_eq!(with_fresh_salts(SAMPLE, &RANDOM[..10], Salts::All), None, "too few random bytes");
        // The define after a guard or a comment that names it is the one changed.
        let guarded = "<?php\n// define('AUTH_KEY', 'commented');\n/*\n define('NONCE_KEY', 'in a block');\n*/\nif (!defined('AUTH_KEY')) define('AUTH_KEY', 'real');\ndefine('NONCE_KEY', 'real');\n";
        let salted = with_fresh_salts(guarded, &RANDOM, Salts::All).unwrap();
        assert!(salted.contains("// define('AUTH_KEY', 'commented');") && salted.contains("define('NONCE_KEY', 'in a block');"), "{salted}");
        assert!(!salted.contains("'real'"), "{salted}");
    }

    #[test]
    fn new_sites_are_salted_keeping_a_zips_own_salts_and_an_imported_config() {
        let wordpress = zip(&[("wordpress/index.php", "<?php"), ("wordpress/wp-config-sample.php", SAMPLE)]);
        let fs = new_fs();
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress", &RANDOM).unwrap();
        let from_zips = text(&fs, "/wordpress/wp-config.php").unwrap();
        assert!(salts_of(&from_zips).iter().all(|s| s.len() == 64), "{from_zips}");
        // The image was made by a boot like the one above: its salts are the build's.
        let image = zip(&[("wordpress/wp-config.php", from_zips.as_str())]);
        let fs = new_fs();
        install(&fs, &SiteKind::Image, &[&image], "/wordpress", &[9; SALT_BYTES]).unwrap();
        let from_image = text(&fs, "/wordpress/wp-config.php").unwrap();
        assert!(salts_of(&from_image).iter().zip(salts_of(&from_zips)).all(|(a, b)| a.len() == 64 && *a != b), "{from_image}");
        // A zip's own salts stay; only its placeholders are replaced.
        let own = SAMPLE.replacen("put your unique phrase here", "chosen by the zip", 1);
        let wordpress = zip(&[("index.php", "<?php"), ("wp-config.php", own.as_str())]);
        let fs = new_fs();
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress", &RANDOM).unwrap();
        let kept = salts_of(&text(&fs, "/wordpress/wp-config.php").unwrap());
        assert_eq!(kept[0], "chosen by the zip");
        assert!(kept[1..].iter().all(|s| s.len() == 64), "{kept:?}");
        let fs = new_fs();
        install(&fs, &SiteKind::Archive, &[&zip(&[("wp-config.php", SAMPLE)])], "/wordpress", &RANDOM).unwrap();
        assert_eq!(text(&fs, "/wordpress/wp-config.php").as_deref(), Some(SAMPLE), "an imported site keeps its own");
    }

    #[test]
    fn a_build_zip_keeps_its_own_config() {
        let fs = new_fs();
        let wordpress = zip(&[
            ("index.php", "<?php"),
            ("wp-config.php", "<?php // build"),
            ("wp-config-sample.php", "<?php // sample"),
            ("wp-content/index.php", "<?php"),
        ]);
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress", &RANDOM).unwrap();
        assert_eq!(text(&fs, "/wordpress/wp-config.php").as_deref(), Some("<?php // build"));
        assert_eq!(text(&fs, "/wordpress/index.php").as_deref(), Some("<?php"));
    }
}

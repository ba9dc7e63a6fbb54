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

// Blueprints' runSql needs WP_MySQL_Lexer, which SQLite integrations before 2.2 lack.
\add_action('run_sql_step', static function () {
	if (!\class_exists('WP_MySQL_Lexer')) {
		require_once __DIR__ . '/php-pool/mysql-statement-lexer.php';
	}
});
"#;

/// A stand-in for the SQLite integration's WP_MySQL_Lexer (see the file).
const MYSQL_STATEMENT_LEXER: &str = include_str!("mysql-statement-lexer.php");

/// Where the SQLite integration goes, relative to the document root.
const SQLITE_PLUGIN_DIR: &str = "wp-content/mu-plugins/sqlite-database-integration";

pub fn install(fs: &FileSystem, kind: &SiteKind, archives: &[&dyn archive::ZipBytes], document_root: &str) -> Result<usize, String> {
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
            archive::unpack(fs, archives[0], "/", "").map_err(text)
        }
        SiteKind::WordPress => {
            need(2)?;
            // wordpress.org's zips keep everything in `wordpress/`; the builds' do not.
            let prefix = top_folder(archives[0]).map_err(text)?;
            let mut files = archive::unpack(fs, archives[0], document_root, &prefix).map_err(text)?;
            files += write_config_if_missing(fs, document_root)?;
            let plugin_dir = format!("{document_root}/{SQLITE_PLUGIN_DIR}");
            let prefix = top_folder(archives[1]).map_err(text)?;
            files += archive::unpack(fs, archives[1], &plugin_dir, &prefix).map_err(text)?;
            install_db_dropin(fs, document_root, &plugin_dir)?;
            let mu_plugin = format!("{document_root}/wp-content/mu-plugins/0-playground.php");
            files::write_file(fs, &mu_plugin, PLAYGROUND_MU_PLUGIN.as_bytes(), None)
                .map_err(|e| format!("{mu_plugin}: {}", e.name()))?;
            let lexer = format!("{document_root}/wp-content/mu-plugins/php-pool/mysql-statement-lexer.php");
            files::mkdir_all(fs, &format!("{document_root}/wp-content/mu-plugins/php-pool"))
                .and_then(|()| files::write_file(fs, &lexer, MYSQL_STATEMENT_LEXER.as_bytes(), None))
                .map_err(|e| format!("{lexer}: {}", e.name()))?;
            Ok(files + 3)
        }
    }
}

/// The folder every entry of a plugin zip sits in (`name-main/`), if any.
fn top_folder(zip: &dyn archive::ZipBytes) -> Result<String, ArchiveError> {
    let entries = archive::entries(zip)?;
    let first = entries.first().and_then(|e| e.name.split_once('/')).map(|(top, _)| format!("{top}/"));
    Ok(match first {
        Some(top) if entries.iter().all(|e| e.name.starts_with(&top)) => top,
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
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress").unwrap();
        assert_eq!(text(&fs, "/wordpress/index.php").as_deref(), Some("<?php // front"));
        assert_eq!(text(&fs, "/wordpress/wp-config.php").as_deref(), Some("<?php // sample"));
        assert!(text(&fs, "/wordpress/wordpress/index.php").is_none());
        let dropin = text(&fs, "/wordpress/wp-content/db.php").unwrap();
        assert!(dropin.contains("/wordpress/wp-content/mu-plugins/sqlite-database-integration sqlite-database-integration/load.php"), "{dropin}");
        assert!(text(&fs, "/wordpress/wp-content/mu-plugins/0-playground.php").is_some());
        assert!(text(&fs, "/wordpress/wp-content/mu-plugins/php-pool/mysql-statement-lexer.php").unwrap().contains("class WP_MySQL_Lexer"));
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
        install(&fs, &SiteKind::WordPress, &[&wordpress, &sqlite_plugin()], "/wordpress").unwrap();
        assert_eq!(text(&fs, "/wordpress/wp-config.php").as_deref(), Some("<?php // build"));
        assert_eq!(text(&fs, "/wordpress/index.php").as_deref(), Some("<?php"));
    }
}

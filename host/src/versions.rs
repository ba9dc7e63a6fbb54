//! The PHP and WordPress versions a playground may ask for (`php`, `wp`
//! options, or a Blueprint's `preferredVersions`), and the files each one
//! is: playground/build.mjs lays them out in dist/ under these names.

use protocol::PhpBuild;

/// One `@php-wasm/web-X-Y` package each (package.json), newest first.
pub const PHP_VERSIONS: &[&str] = &["8.5", "8.4", "8.3", "8.2", "8.1", "8.0", "7.4"];
pub const DEFAULT_PHP: &str = "8.3";
/// Playground's `latest`: its newest supported PHP.
const LATEST_PHP: &str = "8.5";

/// The `@wp-playground/wordpress-builds` release the build ships (package.json
/// pins it). Its static files live under a folder of this name, so a URL
/// of one names its content for good and browsers may keep it
/// (playground/serve.mjs, netlify.toml).
pub const WORDPRESS_BUILDS_RELEASE: &str = "0.9.19";

/// A WordPress build of `@wp-playground/wordpress-builds` (`WORDPRESS_BUILDS_RELEASE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WpBuild {
    /// Its files: `wordpress/wp-<key>.zip` and the static files in
    /// `wordpress/<WORDPRESS_BUILDS_RELEASE>/wp-<key>/`.
    pub key: &'static str,
    /// The release it ships (`$wp_version`).
    pub release: &'static str,
}

pub const WP_BUILDS: &[WpBuild] = &[
    WpBuild { key: "6.5", release: "6.5.5" },
    WpBuild { key: "6.4", release: "6.4.5" },
    WpBuild { key: "6.3", release: "6.3.5" },
    WpBuild { key: "6.2", release: "6.2.6" },
    WpBuild { key: "beta", release: "6.6-RC3" },
    WpBuild { key: "nightly", release: "6.7-alpha-58716" },
];
/// Also `latest`: the newest stable build.
pub const DEFAULT_WP: WpBuild = WP_BUILDS[0];

/// What the `wp` option names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordPress {
    Build(WpBuild),
    /// A WordPress zip (wordpress.org's, or one like it), fetched by the page.
    Url(String),
}

/// The prebuilt image of a new site (`SiteKind::Image`), made by the build
/// (`playground/build.mjs`, site images): the default WordPress build after
/// its first page, with the scripts the default PHP compiled for it. Only
/// that pair has one; with another WordPress or PHP, a site is installed
/// from the zips.
pub fn site_image(wordpress: &WordPress, php_version: &str, build: PhpBuild) -> Option<String> {
    match wordpress {
        WordPress::Build(wp) if *wp == DEFAULT_WP && php_version == DEFAULT_PHP => {
            Some(format!("site-images/wp-{}-php-{php_version}-{}.zip", wp.key, build.name()))
        }
        _ => None,
    }
}

impl WpBuild {
    pub fn archive(self) -> String {
        format!("wordpress/wp-{}.zip", self.key)
    }

    pub fn assets(self) -> String {
        format!("wordpress/{WORDPRESS_BUILDS_RELEASE}/wp-{}/", self.key)
    }

    /// The build of the same release line as `$wp_version` (a saved or
    /// imported site's), whose static files fit it.
    pub fn for_installed(wp_version: &str) -> Option<WpBuild> {
        WP_BUILDS.iter().copied().find(|b| same_line(wp_version, line(b.release)))
    }
}

/// `6.5.5` -> `6.5`; `6.6-RC3` -> `6.6`; `6.7-alpha-58716` -> `6.7`.
fn line(release: &str) -> &str {
    let release = release.split('-').next().unwrap_or(release);
    match release.match_indices('.').nth(1) {
        Some((second_dot, _)) => &release[..second_dot],
        None => release,
    }
}

/// `requested` is `line` or one of its releases (`6.5.2`, `6.6-RC1`), not `6.55`.
fn same_line(requested: &str, line: &str) -> bool {
    requested.strip_prefix(line).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-']))
}

fn php_message(requested: &str) -> String {
    format!(
        "PHP {requested} is not available: this runtime provides PHP {} (option `php`, or a Blueprint's preferredVersions.php)",
        PHP_VERSIONS.join(", ")
    )
}

/// The PHP version to boot: the default when none is asked for; `latest`,
/// `8.2` or `8.2.10` name one of `PHP_VERSIONS`; 7.2 and 7.3 get 7.4.
pub fn php(requested: Option<&str>) -> Result<&'static str, String> {
    let Some(requested) = requested.map(str::trim) else { return Ok(DEFAULT_PHP) };
    if requested == "latest" {
        return Ok(LATEST_PHP);
    }
    // As Playground: these are gone, 7.4 runs their code.
    if ["7.2", "7.3"].iter().any(|old| requested == *old || requested.starts_with(&format!("{old}."))) {
        return Ok("7.4");
    }
    PHP_VERSIONS
        .iter()
        .copied()
        .find(|v| requested == *v || requested.strip_prefix(v).is_some_and(|rest| rest.starts_with('.')))
        .ok_or_else(|| php_message(requested))
}

/// The php-wasm files of `version`'s `build`, relative to the worker's
/// folder: php.wasm (compiled by the page) and the loader the worker imports.
pub fn php_files(version: &str, build: PhpBuild) -> (String, String) {
    let stem = format!("php-{version}-{}", build.name());
    (format!("{stem}.wasm"), format!("{stem}.js"))
}

/// A `wp` value that is a zip's address rather than a version.
fn is_url(requested: &str) -> bool {
    ["http://", "https://", "blob:", "/", "./", "../"].iter().any(|p| requested.starts_with(p)) || requested.ends_with(".zip")
}

/// The WordPress to install: the default build when none is asked for;
/// `latest`, a release line (`6.4`, `6.4.1`), `beta` / `6.6`, `nightly` /
/// `trunk` / `6.7`, or the URL of a WordPress zip.
pub fn wordpress(requested: Option<&str>) -> Result<WordPress, String> {
    let Some(requested) = requested.map(str::trim) else { return Ok(WordPress::Build(DEFAULT_WP)) };
    if is_url(requested) {
        return Ok(WordPress::Url(requested.to_string()));
    }
    let named = |key: &str| WP_BUILDS.iter().copied().find(|b| b.key == key);
    let build = match requested {
        "latest" => Some(DEFAULT_WP),
        "trunk" => named("nightly"),
        _ => named(requested).or_else(|| WP_BUILDS.iter().copied().find(|b| same_line(requested, line(b.release)))),
    };
    build.map(WordPress::Build).ok_or_else(|| {
        let listed: Vec<String> = WP_BUILDS
            .iter()
            .map(|b| if b.key.contains('.') { b.key.to_string() } else { format!("{} ({})", b.key, b.release) })
            .collect();
        format!(
            "WordPress {requested} is not available: this runtime provides WordPress {}, or the URL of a WordPress zip (option `wp`, or a Blueprint's preferredVersions.wp)",
            listed.join(", ")
        )
    })
}

/// Installs a WordPress unpacked from a wordpress.org zip, which comes
/// without a database, as the builds come installed: the same title, user
/// and password. Prints `done` last when WordPress is.
pub const INSTALL_WORDPRESS_PHP: &str = r#"<?php
define('WP_INSTALLING', true);
// Pluggable: no mail to send from here.
function wp_new_blog_notification() {}
require_once getcwd() . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
if (!is_blog_installed()) {
    wp_install('My WordPress Website', 'admin', 'admin@localhost.com', true, '', 'password');
}
echo is_blog_installed() ? 'done' : 'not installed';
"#;

/// WordPress's first database connection, after which the SQLite
/// integration has converted a database an older one made. Without cron:
/// its request could not reach the site yet (the service worker takes the
/// site's scope after the boot), and its lock would hold cron off for a
/// minute.
pub const CONNECT_WORDPRESS_PHP: &str = r#"<?php
if (!defined('DISABLE_WP_CRON')) {
    define('DISABLE_WP_CRON', true);
}
require_once getcwd() . '/wp-load.php';
global $wpdb;
echo $wpdb->get_var("SELECT option_value FROM $wpdb->options WHERE option_name = 'siteurl'") === null
    ? 'no site URL: ' . $wpdb->last_error
    : 'done';
"#;

/// `$wp_version` as `wp-includes/version.php` sets it.
pub fn wp_version_in(version_php: &str) -> Option<String> {
    let after = &version_php[version_php.find("$wp_version")? + "$wp_version".len()..];
    let value = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let value = &value[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// The versions the options ask for (`php`, `wp`); a Blueprint's
/// `preferredVersions` fill in what they leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AskedVersions {
    pub php: Option<String>,
    pub wp: Option<String>,
}

impl AskedVersions {
    /// The PHP version and WordPress to boot: what was asked, else what the
    /// Blueprint prefers, else the defaults.
    pub fn resolve(&self, preferred: &AskedVersions) -> Result<(&'static str, WordPress), String> {
        let php_version = php(self.php.as_deref().or(preferred.php.as_deref()))?;
        let wordpress = wordpress(self.wp.as_deref().or(preferred.wp.as_deref()))?;
        Ok((php_version, wordpress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_options_versions_win_over_a_blueprints_preferred_ones() {
        let asked = |php: Option<&str>, wp: Option<&str>| AskedVersions { php: php.map(Into::into), wp: wp.map(Into::into) };
        let preferred = asked(Some("8.1"), Some("6.4"));
        let (php_version, wordpress) = asked(Some("8.2"), None).resolve(&preferred).unwrap();
        assert_eq!(php_version, "8.2", "asked");
        assert_eq!(wordpress, self::wordpress(Some("6.4")).unwrap(), "preferred, as nothing was asked");
        let (php_version, wordpress) = asked(None, None).resolve(&AskedVersions::default()).unwrap();
        assert_eq!((php_version, wordpress), (DEFAULT_PHP, WordPress::Build(DEFAULT_WP)), "the defaults");
        let unknown = asked(None, None).resolve(&asked(Some("5.6"), None)).unwrap_err();
        assert!(unknown.contains("PHP 5.6 is not available"), "{unknown}");
        assert!(asked(Some("8.3"), None).resolve(&asked(Some("5.6"), None)).is_ok(), "a preference never asked for is not checked");
    }

    #[test]
    fn only_the_default_wordpress_on_the_default_php_has_an_image() {
        let default = WordPress::Build(DEFAULT_WP);
        assert_eq!(site_image(&default, "8.3", PhpBuild::Jspi).as_deref(), Some("site-images/wp-6.5-php-8.3-jspi.zip"));
        assert_eq!(site_image(&default, "8.3", PhpBuild::Asyncify).as_deref(), Some("site-images/wp-6.5-php-8.3-asyncify.zip"));
        assert_eq!(site_image(&default, "8.2", PhpBuild::Jspi), None, "compiled for 8.3 only");
        assert_eq!(site_image(&WordPress::Build(WP_BUILDS[1]), "8.3", PhpBuild::Jspi), None);
        assert_eq!(site_image(&WordPress::Url("https://x/wp.zip".into()), "8.3", PhpBuild::Jspi), None);
    }

    #[test]
    fn php_versions_resolve_and_others_are_named() {
        assert_eq!(php(None), Ok("8.3"));
        assert_eq!(php(Some("latest")), Ok("8.5"));
        assert_eq!(php(Some("7.4")), Ok("7.4"));
        assert_eq!(php(Some("8.0.30")), Ok("8.0"));
        assert_eq!(php(Some(" 8.2 ")), Ok("8.2"));
        assert_eq!(php(Some("7.3")), Ok("7.4"));
        assert_eq!(php(Some("7.2.34")), Ok("7.4"));
        assert!(php(Some("8.55")).is_err(), "8.55 is not an 8.5 release");
        let e = php(Some("5.6")).unwrap_err();
        assert!(e.starts_with("PHP 5.6 is not available") && e.contains("8.5, 8.4, 8.3, 8.2, 8.1, 8.0, 7.4") && e.contains("`php`"), "{e}");
    }

    #[test]
    fn wordpress_versions_resolve_and_others_are_named() {
        let build = |key: &str| WordPress::Build(*WP_BUILDS.iter().find(|b| b.key == key).unwrap());
        assert_eq!(wordpress(None), Ok(build("6.5")));
        assert_eq!(wordpress(Some("latest")), Ok(build("6.5")));
        assert_eq!(wordpress(Some("6.2")), Ok(build("6.2")));
        assert_eq!(wordpress(Some("6.4.1")), Ok(build("6.4")));
        assert_eq!(wordpress(Some("beta")), Ok(build("beta")));
        assert_eq!(wordpress(Some("6.6")), Ok(build("beta")));
        assert_eq!(wordpress(Some("6.6-RC3")), Ok(build("beta")));
        assert_eq!(wordpress(Some("nightly")), Ok(build("nightly")));
        assert_eq!(wordpress(Some("trunk")), Ok(build("nightly")));
        assert_eq!(wordpress(Some("6.7")), Ok(build("nightly")));
        for url in ["https://example.org/wordpress-6.1.zip", "/files/wp.zip", "blob:http://h/1-2", "wp.zip"] {
            assert_eq!(wordpress(Some(url)), Ok(WordPress::Url(url.into())));
        }
        assert!(wordpress(Some("6.55")).is_err());
        let e = wordpress(Some("6.1")).unwrap_err();
        assert!(e.starts_with("WordPress 6.1 is not available"), "{e}");
        assert!(e.contains("6.5, 6.4, 6.3, 6.2, beta (6.6-RC3), nightly (6.7-alpha-58716)") && e.contains("URL of a WordPress zip"), "{e}");
    }

    #[test]
    fn files_are_named_by_version_and_build() {
        assert_eq!(php_files("7.4", PhpBuild::Jspi), ("php-7.4-jspi.wasm".into(), "php-7.4-jspi.js".into()));
        assert_eq!(php_files("8.5", PhpBuild::Asyncify).1, "php-8.5-asyncify.js");
        assert_eq!(WP_BUILDS[4].archive(), "wordpress/wp-beta.zip");
        assert_eq!(DEFAULT_WP.assets(), format!("wordpress/{WORDPRESS_BUILDS_RELEASE}/wp-6.5/"));
    }

    #[test]
    fn an_installed_release_finds_the_static_files_of_its_line() {
        let key = |v: &str| WpBuild::for_installed(v).map(|b| b.key);
        assert_eq!(key("6.5.5"), Some("6.5"));
        assert_eq!(key("6.3"), Some("6.3"));
        assert_eq!(key("6.6-RC3"), Some("beta"));
        assert_eq!(key("6.7-alpha-58716"), Some("nightly"));
        assert_eq!(key("6.1.1"), None);
        assert_eq!(key("6.55"), None);
    }

    #[test]
    fn wp_version_is_read_from_version_php() {
        let php = "<?php\n/** The WordPress version string. */\n$wp_version = '6.4.5';\n$wp_db_version = 56657;\n";
        assert_eq!(wp_version_in(php).as_deref(), Some("6.4.5"));
        assert_eq!(wp_version_in("<?php $wp_version=\"6.7-alpha-58716\";").as_deref(), Some("6.7-alpha-58716"));
        assert_eq!(wp_version_in("<?php $wp_db_version = 1;"), None);
    }

    /// A new wordpress-builds release brings new static files, in a
    /// folder of its own: the folder must name the pinned release.
    #[test]
    fn the_static_files_folder_names_the_pinned_release() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../package.json")).unwrap();
        let pinned = manifest.split("\"@wp-playground/wordpress-builds\": \"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(WORDPRESS_BUILDS_RELEASE, pinned);
    }

    /// The deploy lets browsers keep the release's static files, and
    /// serves the default build's to documents the service worker does not
    /// control, from the same folder.
    #[test]
    fn netlify_toml_serves_the_releases_static_files() {
        let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../netlify.toml")).unwrap();
        let cached: Vec<&str> = toml.split("for = \"").skip(1).filter_map(|rest| rest.split('"').next()).filter(|path| path.starts_with("/wordpress/")).collect();
        assert_eq!(cached, [format!("/wordpress/{WORDPRESS_BUILDS_RELEASE}/*")]);
        let targets: Vec<&str> = toml.split("to = \"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
        assert!(!targets.is_empty());
        for target in targets {
            assert!(target.starts_with(&format!("/{}", DEFAULT_WP.assets())), "{target}");
        }
    }

    /// package.json holds one `@php-wasm/web-X-Y` per version, all at the
    /// php-wasm release of `@php-wasm/universal` (build.mjs copies what it lists).
    #[test]
    fn package_json_has_exactly_these_php_versions() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../package.json")).unwrap();
        let release = manifest.split("\"@php-wasm/universal\": \"").nth(1).unwrap().split('"').next().unwrap();
        let mut listed: Vec<String> = manifest
            .split("\"@php-wasm/web-")
            .skip(1)
            .map(|rest| {
                let (name, version) = rest.split_once("\": \"").unwrap();
                assert_eq!(version.split('"').next(), Some(release), "@php-wasm/web-{name}");
                name.replace('-', ".")
            })
            .collect();
        listed.sort();
        let mut expected: Vec<String> = PHP_VERSIONS.iter().map(|v| v.to_string()).collect();
        expected.sort();
        assert_eq!(listed, expected);
    }
}

//! Blueprints: where one comes from (option, URL fragment, `blueprint-url`),
//! the versions it asks for, and what happens around Playground's own engine
//! (`@wp-playground/blueprints`, loaded by the JS entry only when a
//! Blueprint is given), which compiles it and runs its steps against the
//! client.

/// The JSON text of a Blueprint given as text: JSON, or base64 JSON, either
/// possibly percent-encoded (the forms Playground accepts in a URL fragment).
pub fn blueprint_json(source: &str) -> Result<String, String> {
    let text = percent_decode(source.trim().trim_start_matches('#'));
    let text = text.trim();
    if text.starts_with('{') {
        return Ok(text.to_string());
    }
    let decoded = base64_decode(text)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|json| json.trim_start().starts_with('{'));
    decoded.ok_or_else(|| "the Blueprint is neither JSON nor base64-encoded JSON".to_string())
}

/// `%XX` sequences decoded; anything else (a lone `%`) kept.
fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&protocol::percent::decode_lenient(text)).into_owned()
}

/// Standard or URL-safe base64, padding optional, whitespace ignored.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let digits = digits.strip_suffix(b"==").or_else(|| digits.strip_suffix(b"=")).unwrap_or(&digits);
    if digits.is_empty() || digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0);
    for &c in digits {
        bits = (bits << 6) | value(c)? as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// A Blueprint's `landingPage`, checked before the boot: a path inside the
/// site (`/wp-admin/`, `?p=1`). Another origin (`https://…`, `//host`, any
/// scheme) or a `..` segment (also as `%2e%2e`, or behind a `\`, which
/// browsers read as `/`) would take the site's iframe out of the site.
pub fn landing_path(landing: &str) -> Result<&str, String> {
    let refuse = |why: &str| {
        Err(format!("the Blueprint's landingPage \"{landing}\" {why}: it must be a path inside the site, such as \"/wp-admin/\""))
    };
    let path = landing.split(['?', '#']).next().unwrap_or("");
    let scheme = path.split_once(':').map(|(scheme, _)| scheme).filter(|scheme| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    });
    if scheme.is_some() || path.starts_with("//") || path.starts_with("\\") || path.starts_with("/\\") {
        return refuse("is a URL of its own");
    }
    let decoded = percent_decode(path).replace('\\', "/");
    if decoded.split('/').any(|segment| segment == "..") {
        return refuse("climbs out of the site with ..");
    }
    Ok(landing)
}

/// Where the site's iframe opens: `landing` (a path such as `/wp-admin/`,
/// checked by `landing_path`) under the site's URL, which ends with `/`.
pub fn landing_url(absolute_url: &str, landing: Option<&str>) -> String {
    let path = landing.unwrap_or("/").trim_start_matches('/');
    format!("{absolute_url}{path}")
}

/// Why a fetched Blueprint was refused: what came instead of JSON, shown by
/// its start (an HTML page where a Blueprint was expected, say).
pub fn not_json(text: &str) -> String {
    let start: String = text.trim_start().chars().take(40).filter(|c| !c.is_control()).collect();
    if start.is_empty() {
        return "it is empty, not JSON".to_string();
    }
    let more = if text.trim_start().chars().count() > 40 { "…" } else { "" };
    format!("it is not JSON (nor base64-encoded JSON); it starts with \"{start}{more}\"")
}

/// The error of a failed step: its number, its name and the engine's
/// message (which names the URL of a download that failed).
pub fn step_failure(number: Option<u32>, step: Option<&str>, message: &str) -> String {
    match (number, step) {
        (Some(n), Some(step)) => format!("Blueprint step #{n} ({step}) failed: {message}"),
        (Some(n), None) => format!("Blueprint step #{n} failed: {message}"),
        _ => format!("Blueprint failed: {message}"),
    }
}

/// The `login` step only defines PLAYGROUND_AUTO_LOGIN_AS_USER; this
/// mu-plugin (written into every WordPress site at boot) logs the browser in
/// as that user on its first page. A cookie remembers that it did, so
/// logging out sticks.
pub const AUTO_LOGIN_PATH: &str = "wp-content/mu-plugins/0-auto-login.php";
pub const AUTO_LOGIN_MU_PLUGIN: &str = r#"<?php
// Written by the playground at boot (host/src/blueprint.rs).
add_action('init', function () {
	if (!defined('PLAYGROUND_AUTO_LOGIN_AS_USER') || isset($_COOKIE['playground_auto_login_done']) || is_user_logged_in()) {
		return;
	}
	// Pages of the site only: client.run() scripts live outside ABSPATH.
	if (strpos($_SERVER['SCRIPT_FILENAME'] ?? '', ABSPATH) !== 0) {
		return;
	}
	$user = get_user_by('login', PLAYGROUND_AUTO_LOGIN_AS_USER);
	if (!$user) {
		return;
	}
	// The cookies go to the browser with this response; this request
	// needs them too (wp-admin checks $_COOKIE before it runs).
	add_action('set_auth_cookie', function ($cookie, $expire, $expiration, $user_id, $scheme) {
		$_COOKIE['secure_auth' === $scheme ? SECURE_AUTH_COOKIE : AUTH_COOKIE] = $cookie;
	}, 10, 5);
	add_action('set_logged_in_cookie', function ($cookie) {
		$_COOKIE[LOGGED_IN_COOKIE] = $cookie;
	});
	wp_set_auth_cookie($user->ID);
	wp_set_current_user($user->ID);
	setcookie('playground_auto_login_done', '1', 0, COOKIEPATH ?: '/', COOKIE_DOMAIN);
}, 1);
"#;

#[cfg(target_arch = "wasm32")]
pub use wasm::start_playground_with_engine;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use super::*;
    use crate::util::{error, get, message_of, optional_string};
    use crate::versions::AskedVersions;
    use js_sys::{Function, Promise};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    /// `startPlayground` with Blueprints: `load_engine()` resolves to
    /// `{compile, run}` (Playground's `compileBlueprintV1` and
    /// `runBlueprintV1Steps`, a large bundle), called only when the options
    /// give a Blueprint. Compiles the Blueprint first
    /// (so a bad one fails before the boot), boots with its preferred
    /// versions unless `php`/`wp` say otherwise, runs its steps, then opens
    /// the iframe at its `landingPage`.
    #[wasm_bindgen(js_name = startPlaygroundWithEngine, unchecked_return_type = "Promise<PlaygroundClient>")]
    pub async fn start_playground_with_engine(
        #[wasm_bindgen(unchecked_param_type = "StartOptions & { assetBase: string }")] options: JsValue,
        #[wasm_bindgen(unchecked_param_type = "() => Promise<{ compile: Function, run: Function }>")] load_engine: Function,
    ) -> Result<JsValue, JsValue> {
        // Read once, before anything is fetched; the Blueprint adjusts them.
        let mut boot_options = crate::boot::parse_options(&options)?;
        // Opened here, once the steps ran, at the Blueprint's landing page.
        let iframe = boot_options.iframe.take();
        let declaration = declaration(&options).await?;
        let engine = match &declaration {
            Some(_) => {
                let loading: Promise = load_engine.call0(&JsValue::NULL)?.dyn_into()?;
                JsFuture::from(loading).await.map_err(|e| error(format!("the Blueprint engine did not load: {}", message_of(&e))))?
            }
            None => JsValue::UNDEFINED,
        };
        let mut landing = None;
        let mut compiled = JsValue::UNDEFINED;
        if let Some(declaration) = &declaration {
            let preferred = get(declaration, "preferredVersions");
            boot_options.prefer_versions(&AskedVersions { php: get(&preferred, "php").as_string(), wp: get(&preferred, "wp").as_string() })?;
            landing = optional_string(declaration, "landingPage")?;
            if let Some(landing) = &landing {
                landing_path(landing).map_err(error)?;
            }
            let compile: Function = get(&engine, "compile").dyn_into().map_err(|_| error("no Blueprint engine was loaded"))?;
            let compiling: Promise = compile.call1(&JsValue::NULL, declaration)?.dyn_into()?;
            compiled = JsFuture::from(compiling).await.map_err(|e| error(message_of(&e)))?;
        }
        let client = crate::boot::start(boot_options).await?;
        let root = client.document_root();
        if client.is_dir_now(&format!("{root}/wp-content/mu-plugins")).await? {
            client.write_file_if_changed(&format!("{root}/{AUTO_LOGIN_PATH}"), AUTO_LOGIN_MU_PLUGIN.as_bytes()).await?;
        }
        let site_url = client.absolute_url();
        // A saved site reopens with its own files: its Blueprint ran when it was made.
        let restored = client.restored();
        let client = JsValue::from(client);
        if declaration.is_some() && !restored {
            let run: Function = get(&engine, "run").dyn_into().map_err(|_| error("no Blueprint engine was loaded"))?;
            let running: Promise = run.call2(&JsValue::NULL, &compiled, &client)?.dyn_into()?;
            if let Err(e) = JsFuture::from(running).await {
                let step = get(&get(&e, "step"), "step").as_string();
                let number = get(&e, "stepNumber").as_f64().map(|n| n as u32);
                let cause = get(&e, "cause");
                let message = if cause.is_object() { message_of(&cause) } else { message_of(&e) };
                return Err(error(step_failure(number, step.as_deref(), &message)));
            }
        }
        if let Some(iframe) = iframe {
            iframe.set_src(&landing_url(&site_url, landing.as_deref()));
        }
        Ok(client)
    }

    /// The Blueprint the options give, parsed: `blueprintUrl` fetched, or
    /// `blueprint` (an object, or JSON / base64 JSON text).
    async fn declaration(options: &JsValue) -> Result<Option<JsValue>, JsValue> {
        if let Some(url) = optional_string(options, "blueprintUrl")? {
            let window = web_sys::window().ok_or_else(|| error("startPlayground must run on a page"))?;
            let fail = |why: String| error(format!("cannot load the Blueprint at {url}: {why}"));
            let response: web_sys::Response =
                JsFuture::from(window.fetch_with_str(&url)).await.map_err(|e| fail(message_of(&e)))?.unchecked_into();
            if !response.ok() {
                return Err(fail(format!("HTTP {}", response.status())));
            }
            let text = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
            let json = blueprint_json(&text).map_err(|_| fail(not_json(&text)))?;
            return js_sys::JSON::parse(&json).map(Some).map_err(|e| fail(format!("it is not JSON ({})", message_of(&e))));
        }
        let blueprint = get(options, "blueprint");
        if blueprint.is_undefined() || blueprint.is_null() {
            return Ok(None);
        }
        let Some(text) = blueprint.as_string() else { return Ok(Some(blueprint)) };
        let fail = |why: String| error(format!("option `blueprint`: {why}"));
        let json = blueprint_json(&text).map_err(fail)?;
        js_sys::JSON::parse(&json).map(Some).map_err(|e| fail(format!("not valid JSON: {}", message_of(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_base64_and_percent_encoded_forms_give_the_json() {
        let json = r#"{"landingPage":"/wp-admin/","steps":[{"step":"login"}]}"#;
        assert_eq!(blueprint_json(json).unwrap(), json);
        assert_eq!(blueprint_json(&format!("#{json}")).unwrap(), json, "a fragment with its #");
        let encoded = json.replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace('/', "%2F");
        assert_eq!(blueprint_json(&encoded).unwrap(), json);
        // base64 of the JSON: standard, URL-safe, unpadded.
        let b64 = "eyJsYW5kaW5nUGFnZSI6Ii93cC1hZG1pbi8iLCJzdGVwcyI6W3sic3RlcCI6ImxvZ2luIn1dfQ==";
        assert_eq!(blueprint_json(b64).unwrap(), json);
        assert_eq!(blueprint_json(b64.trim_end_matches('=')).unwrap(), json);
        assert_eq!(blueprint_json(&b64.replace('=', "%3D")).unwrap(), json);
        assert_eq!(base64_decode("-_8").unwrap(), vec![0xfb, 0xff], "URL-safe alphabet");
        assert_eq!(base64_decode("+/8=").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn text_that_is_neither_is_refused_and_a_lone_percent_is_kept() {
        assert!(blueprint_json("hello world").is_err());
        assert!(blueprint_json("aGVsbG8=").is_err(), "base64 of text that is not JSON");
        assert!(blueprint_json("").is_err());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn landing_page_is_a_path_under_the_site() {
        let site = "http://127.0.0.1:8080/scope:ab/";
        assert_eq!(landing_url(site, None), site);
        assert_eq!(landing_url(site, Some("/wp-admin/")), "http://127.0.0.1:8080/scope:ab/wp-admin/");
        assert_eq!(landing_url(site, Some("?p=1")), "http://127.0.0.1:8080/scope:ab/?p=1");
    }

    #[test]
    fn a_landing_page_stays_inside_the_site() {
        for ok in ["/wp-admin/", "wp-admin/index.php", "?p=1", "/", "/a:b/", "/x/?redirect=../../y", "/x..y/..z/"] {
            assert_eq!(landing_path(ok), Ok(ok), "{ok}");
        }
        for url in ["https://example.com/", "HTTP://example.com", "//example.com/x", "javascript:alert(1)", "\\\\example.com", "/\\example.com"] {
            let message = landing_path(url).unwrap_err();
            assert!(message.contains("is a URL of its own") && message.contains(url), "{message}");
        }
        for climb in ["../../index.html", "/wp-admin/../../x", "/%2e%2e/x", "/wp-admin/%2E%2E/%2e./x", "..\\x", "/a/..%2f..%2fb", "/.."] {
            let message = landing_path(climb).unwrap_err();
            assert!(message.contains("climbs out of the site") && message.contains(climb), "{message}");
        }
    }

    #[test]
    fn what_is_not_json_is_shown_by_its_start() {
        assert_eq!(not_json("  <!DOCTYPE html><html>"), "it is not JSON (nor base64-encoded JSON); it starts with \"<!DOCTYPE html><html>\"");
        assert!(not_json(&"x".repeat(100)).ends_with("xxx…\""));
        assert_eq!(not_json(" \n"), "it is empty, not JSON");
    }

    #[test]
    fn a_failed_step_is_named() {
        let m = step_failure(Some(2), Some("installPlugin"), "Could not download \"http://x/p.zip\"");
        assert_eq!(m, "Blueprint step #2 (installPlugin) failed: Could not download \"http://x/p.zip\"");
        assert_eq!(step_failure(None, None, "bad"), "Blueprint failed: bad");
    }
}

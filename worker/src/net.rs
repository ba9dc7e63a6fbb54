//! PHP's outgoing HTTP, carried by the worker's `fetch()`.
//!
//! PHP (`net-preload.php`: `PhpPool\Http::send`, the http(s) stream wrapper;
//! the WordPress transport in `site.rs`) sends one request as a
//! `post_message_to_js` message; php-wasm awaits the JS answer, so PHP sees a
//! blocking call. Everything about the exchange is decided here: what a
//! message says, which headers go out, the redirect mode, timeouts, and what
//! PHP gets back (a PHP-serialized array, so PHP only `unserialize`s it).
//! The JS glue only calls `fetch()` with the init built here.

use std::cell::{Cell, RefCell};

/// Every PHP message for this module starts with this; the rest is
/// `name=value` pairs joined by `&`, each value `rawurlencode`d (so the
/// message is NUL-free and the body binary-safe).
pub const MESSAGE_PREFIX: &str = "php-pool-net?";

/// PHP preloaded before every script (see `preload_php`).
const PRELOAD_PHP: &str = include_str!("net-preload.php");

/// The line of `net-preload.php` that says why its stream wrapper cannot
/// wait for fetch() (empty: it can).
const STREAM_REFUSAL_LINE: &str = "const STREAM_REFUSAL = '';";

/// Under asyncify, a PHP stream cannot wait for JS: the stream layer's C
/// frames are not instrumented to unwind, and php.wasm traps. WordPress's
/// HTTP API and `PhpPool\Http::send` wait from PHP code, which can.
/// A single-quoted PHP literal's content: no quote, `\\` for a backslash.
const ASYNCIFY_STREAM_REFUSAL: &str = "this browser runs the asyncify build of PHP, where file_get_contents and \
    fopen of http(s) URLs cannot wait for the network; use wp_remote_get (WordPress) or PhpPool\\\\Http::send instead";

/// The preloaded PHP for a worker whose streams can (JSPI) or cannot wait.
pub fn preload_php(streams_can_wait: bool) -> String {
    if streams_can_wait {
        return PRELOAD_PHP.to_string();
    }
    PRELOAD_PHP.replace(STREAM_REFUSAL_LINE, &format!("const STREAM_REFUSAL = '{ASYNCIFY_STREAM_REFUSAL}';"))
}

/// What PHP gets when networking is off (`networking: false`).
pub const OFF_MESSAGE: &str = "This site runs in a browser with networking off: PHP has no outgoing network.";

/// `follow` sends a `redirect: "follow"` fetch; `manual` one that stops at
/// the first redirect, which a browser shows only as an opaque response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    Follow,
    Manual,
}

impl Redirect {
    pub fn name(self) -> &'static str {
        match self {
            Redirect::Follow => "follow",
            Redirect::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub redirect: Redirect,
    pub timeout_ms: Option<u32>,
    /// False: PHP does not wait (WordPress's cron spawn); the fetch runs on.
    pub blocking: bool,
    pub max_bytes: Option<usize>,
    /// A status of 400 or more is a failure (PHP's http stream wrapper
    /// without `ignore_errors`).
    pub fail_on_status: bool,
}

/// What to do with one PHP message.
#[derive(Debug, PartialEq, Eq)]
pub enum MessageRoute {
    /// Some other message (`php_messages.rs` sorts them).
    NotOurs,
    /// Answer PHP at once with this reply, without the network.
    Answer(Vec<u8>),
    Fetch(Request),
}

pub fn route_message(message: &str, networking: bool) -> MessageRoute {
    let Some(fields) = message.strip_prefix(MESSAGE_PREFIX) else { return MessageRoute::NotOurs };
    if !networking {
        return MessageRoute::Answer(error_reply(OFF_MESSAGE));
    }
    match parse(fields) {
        Ok(request) => MessageRoute::Fetch(request),
        Err(why) => MessageRoute::Answer(error_reply(&why)),
    }
}

/// The Fetch standard's forbidden request headers (a browser sets these
/// itself and drops any a script sets), and `user-agent`: the browser sends
/// its own, and a custom one would need a CORS preflight many servers that
/// allow simple requests do not answer.
const DROPPED_HEADERS: &[&str] = &[
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "connection",
    "content-length",
    "cookie",
    "cookie2",
    "date",
    "dnt",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "referer",
    "set-cookie",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
];

fn dropped(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    DROPPED_HEADERS.contains(&name.as_str()) || name.starts_with("proxy-") || name.starts_with("sec-")
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse(fields: &str) -> Result<Request, String> {
    let mut method = String::from("GET");
    let mut url = String::new();
    let mut query = Vec::new();
    let mut header_lines = Vec::new();
    let mut body = Vec::new();
    let mut mode = String::new();
    let (mut follow, mut max_redirects) = (true, None);
    let (mut timeout_ms, mut blocking, mut max_bytes, mut fail_on_status) = (None, true, None, false);
    for field in fields.split('&').filter(|f| !f.is_empty()) {
        let (name, value) = field.split_once('=').unwrap_or((field, ""));
        let value = protocol::percent::decode_strict(value).ok_or_else(|| format!("malformed request field {name:?}"))?;
        let text = || String::from_utf8_lossy(&value).into_owned();
        let flag = || !matches!(text().trim(), "" | "0");
        match name {
            "method" => method = text().trim().to_ascii_uppercase(),
            "url" => url = text().trim().to_string(),
            "query" => query = value.clone(),
            "header" => header_lines.push(text()),
            "body" => body = value.clone(),
            "follow" => follow = flag(),
            "max_redirects" => max_redirects = text().trim().parse::<i64>().ok(),
            "timeout" => timeout_ms = timeout(&text()),
            "blocking" => blocking = flag(),
            "max_bytes" => max_bytes = text().trim().parse::<usize>().ok().filter(|&n| n > 0),
            "fail_on_status" => fail_on_status = flag(),
            "mode" => mode = text(),
            _ => {}
        }
    }
    if mode.contains(['w', 'a', 'x', 'c', '+']) {
        return Err(format!("HTTP streams are read-only: cannot open {url} with mode {mode:?}"));
    }
    if method.is_empty() {
        method = "GET".into();
    }
    if !is_token(&method) || ["CONNECT", "TRACE", "TRACK"].contains(&method.as_str()) {
        return Err(format!("a browser cannot send a {method:?} request"));
    }
    let url = with_query(&url, &query)?;
    if !body.is_empty() && (method == "GET" || method == "HEAD") {
        return Err(format!("a {method} request cannot carry a body in a browser ({url})"));
    }
    let mut headers = Vec::new();
    for line in header_lines.iter().flat_map(|l| l.split('\n')) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| format!("malformed header line {line:?}"))?;
        let (name, value) = (name.trim(), value.trim());
        if !is_token(name) || value.contains(['\r', '\0']) {
            return Err(format!("malformed header line {line:?}"));
        }
        if !dropped(name) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    // As PHP's http stream wrapper and Requests do (fetch would send text/plain).
    if !body.is_empty() && !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
    }
    let redirect = if follow && max_redirects != Some(0) { Redirect::Follow } else { Redirect::Manual };
    Ok(Request { method, url, headers, body, redirect, timeout_ms, blocking, max_bytes, fail_on_status })
}

/// Seconds (PHP's float) to milliseconds; none for zero, negative or
/// unreadable (no limit, as curl's 0).
fn timeout(seconds: &str) -> Option<u32> {
    let s: f64 = seconds.trim().parse().ok()?;
    (s > 0.0 && s.is_finite()).then(|| (s * 1000.0).ceil().min(i32::MAX as f64) as u32)
}

/// Only absolute http(s) URLs (a relative one would resolve against the
/// worker's script); `query` (Requests' GET data) joins the URL's own.
fn with_query(url: &str, query: &[u8]) -> Result<String, String> {
    let scheme_end = url.find("://").unwrap_or(0);
    let scheme = url[..scheme_end].to_ascii_lowercase();
    let host = url[scheme_end..].trim_start_matches("://").split(['/', '?', '#']).next().unwrap_or("");
    if !(scheme == "http" || scheme == "https") || host.is_empty() {
        return Err(format!("only absolute http:// and https:// URLs can be fetched, not {url:?}"));
    }
    if query.is_empty() {
        return Ok(url.to_string());
    }
    let (base, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let joiner = if base.contains('?') { "&" } else { "?" };
    Ok(format!("{base}{joiner}{}{fragment}", String::from_utf8_lossy(query)))
}

/// What the JS glue saw of a fetch's response.
pub struct Fetched<'a> {
    pub status: u16,
    pub status_text: &'a str,
    /// As the browser lists them (lower-case names).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The final URL, after redirects.
    pub url: &'a str,
    /// `Response.type`: `opaqueredirect` is a redirect not followed.
    pub kind: &'a str,
}

/// Headers that described the bytes on the wire; the browser has already
/// decoded and de-chunked the body, and PHP (Requests) would undo them again.
const WIRE_HEADERS: &[&str] = &["content-encoding", "content-length", "transfer-encoding"];

/// PHP's reply for a response: `['status', 'head' (status line, then
/// "Name: value" lines), 'body', 'url']`, or `['error' => ...]`.
pub fn response_reply(request: &Request, fetched: Fetched) -> Vec<u8> {
    if fetched.kind == "opaqueredirect" {
        return error_reply(&format!(
            "{} redirects, and this request does not follow redirects (a browser does not show where it leads)",
            request.url
        ));
    }
    let reason = if fetched.status_text.is_empty() { reason_phrase(fetched.status) } else { fetched.status_text };
    let status_line = format!("HTTP/1.1 {} {reason}", fetched.status).trim_end().to_string();
    if request.fail_on_status && fetched.status >= 400 {
        return error_reply(&format!("{} answered {status_line}", request.url));
    }
    let mut head = vec![status_line];
    for (name, value) in &fetched.headers {
        if !WIRE_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            head.push(format!("{name}: {value}"));
        }
    }
    let mut body = fetched.body;
    if let Some(max) = request.max_bytes {
        body.truncate(max);
    }
    let url = if fetched.url.is_empty() { request.url.as_str() } else { fetched.url };
    serialize(&Php::Map(vec![
        ("status", Php::Int(fetched.status.into())),
        ("head", Php::List(head.iter().map(|l| Php::Str(l.as_bytes())).collect())),
        ("body", Php::Str(&body)),
        ("url", Php::Str(url.as_bytes())),
    ]))
}

/// PHP's immediate reply to a request it does not wait for.
pub fn detached_reply(request: &Request) -> Vec<u8> {
    serialize(&Php::Map(vec![
        ("status", Php::Int(0)),
        ("head", Php::List(Vec::new())),
        ("body", Php::Str(b"")),
        ("url", Php::Str(request.url.as_bytes())),
    ]))
}

/// PHP's reply when `fetch()` rejected (`error_name` is the JS error's name).
pub fn failure_reply(request: &Request, error_name: &str, error_message: &str) -> Vec<u8> {
    let url = &request.url;
    let message = match error_name {
        // A refused connection, an unknown host and a CORS refusal all look
        // the same to a page.
        "TypeError" => format!(
            "cannot reach {url}: the host is unreachable, or its answer does not allow this page's origin (CORS)"
        ),
        "TimeoutError" => {
            let seconds = request.timeout_ms.unwrap_or(0) as f64 / 1000.0;
            format!("no answer from {url} within {seconds} s")
        }
        "AbortError" => format!("the request to {url} was aborted"),
        _ => format!("the request to {url} failed: {error_name}: {error_message}"),
    };
    error_reply(&message)
}

pub fn error_reply(message: &str) -> Vec<u8> {
    serialize(&Php::Map(vec![("error", Php::Str(message.as_bytes()))]))
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// A value in PHP's `serialize()` format: byte strings carry their length,
/// so any body survives `unserialize()`.
enum Php<'a> {
    Int(i64),
    Str(&'a [u8]),
    List(Vec<Php<'a>>),
    Map(Vec<(&'a str, Php<'a>)>),
}

fn serialize(value: &Php) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(format!("s:{}:\"", s.len()).as_bytes());
        out.extend_from_slice(s);
        out.extend_from_slice(b"\";");
    }
    fn write(out: &mut Vec<u8>, value: &Php) {
        match value {
            Php::Int(n) => out.extend_from_slice(format!("i:{n};").as_bytes()),
            Php::Str(s) => string(out, s),
            Php::List(items) => {
                out.extend_from_slice(format!("a:{}:{{", items.len()).as_bytes());
                for (i, item) in items.iter().enumerate() {
                    out.extend_from_slice(format!("i:{i};").as_bytes());
                    write(out, item);
                }
                out.push(b'}');
            }
            Php::Map(entries) => {
                out.extend_from_slice(format!("a:{}:{{", entries.len()).as_bytes());
                for (key, item) in entries {
                    string(out, key.as_bytes());
                    write(out, item);
                }
                out.push(b'}');
            }
        }
    }
    let mut out = Vec::new();
    write(&mut out, value);
    out
}

thread_local! {
    /// Whether this worker's PHP may reach the network (`WorkerConfig::networking`).
    static NETWORKING: Cell<bool> = const { Cell::new(false) };
    /// The request PHP is waiting on (PHP makes one at a time).
    static PENDING: RefCell<Option<Request>> = const { RefCell::new(None) };
}

pub(crate) fn configure(networking: bool) {
    NETWORKING.with(|n| n.set(networking));
}

pub(crate) fn networking() -> bool {
    NETWORKING.with(Cell::get)
}

pub(crate) use bindings::plan_js;

mod bindings {
    use super::*;
    use js_sys::{Array, Function, Object, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use crate::set;

    /// What the JS glue does with a network message (worker-entry.js
    /// `outgoingHttp`): `{reply}` to answer PHP at once; `{url, init}` to
    /// fetch and hand the outcome to `net_response` / `net_failure`; `{url,
    /// init, reply}` to fetch without waiting and answer PHP with `reply`
    /// at once.
    pub(crate) fn plan_js(route: MessageRoute) -> JsValue {
        let out = Object::new();
        match route {
            MessageRoute::NotOurs => return JsValue::UNDEFINED,
            MessageRoute::Answer(reply) => set(&out, "reply", &Uint8Array::from(&reply[..])),
            MessageRoute::Fetch(request) => {
                let init = match fetch_init(&request) {
                    Ok(init) => init,
                    Err(e) => {
                        set(&out, "reply", &Uint8Array::from(&error_reply(&crate::message_of(&e))[..]));
                        return out.into();
                    }
                };
                set(&out, "url", &JsValue::from_str(&request.url));
                set(&out, "init", &init);
                if request.blocking {
                    PENDING.with(|p| *p.borrow_mut() = Some(request));
                } else {
                    set(&out, "reply", &Uint8Array::from(&detached_reply(&request)[..]));
                }
            }
        }
        out.into()
    }

    /// A `RequestInit`: no browser cookies or referrer (PHP is a server-side
    /// client), no HTTP cache, the body as a copy outside the shared memory
    /// (fetch refuses shared buffers).
    fn fetch_init(request: &Request) -> Result<Object, JsValue> {
        let init = Object::new();
        set(&init, "method", &JsValue::from_str(&request.method));
        let headers = Array::new();
        for (name, value) in &request.headers {
            headers.push(&Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)));
        }
        set(&init, "headers", &headers);
        if !request.body.is_empty() {
            set(&init, "body", &Uint8Array::from(&request.body[..]));
        }
        set(&init, "redirect", &JsValue::from_str(request.redirect.name()));
        set(&init, "credentials", &JsValue::from_str("omit"));
        set(&init, "referrerPolicy", &JsValue::from_str("no-referrer"));
        set(&init, "cache", &JsValue::from_str("no-store"));
        if let Some(ms) = request.timeout_ms {
            let abort_signal = Reflect::get(&js_sys::global(), &JsValue::from_str("AbortSignal"))?;
            let timeout: Function = Reflect::get(&abort_signal, &JsValue::from_str("timeout"))?.dyn_into()?;
            set(&init, "signal", &timeout.call1(&abort_signal, &JsValue::from(ms))?);
        }
        Ok(init)
    }

    fn pending() -> Result<Request, Vec<u8>> {
        PENDING.with(|p| p.borrow_mut().take()).ok_or_else(|| error_reply("no outgoing request was pending"))
    }

    /// PHP's reply for the pending request's response; `headers` is
    /// `[name, value, name, value, …]`.
    #[wasm_bindgen]
    pub fn net_response(status: u16, status_text: &str, headers: Array, body: &[u8], url: &str, kind: &str) -> Vec<u8> {
        let request = match pending() {
            Ok(request) => request,
            Err(reply) => return reply,
        };
        let flat: Vec<String> = headers.iter().map(|v| v.as_string().unwrap_or_default()).collect();
        let headers = flat.chunks(2).map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default())).collect();
        let fetched = Fetched { status, status_text, headers, body: body.to_vec(), url, kind };
        response_reply(&request, fetched)
    }

    /// PHP's reply when the pending request's `fetch()` (or its body) rejected.
    #[wasm_bindgen]
    pub fn net_failure(error_name: &str, error_message: &str) -> Vec<u8> {
        match pending() {
            Ok(request) => failure_reply(&request, error_name, error_message),
            Err(reply) => reply,
        }
    }

    /// The PHP file the glue preloads (`/internal/shared/preload/`).
    #[wasm_bindgen]
    pub fn net_preload_php() -> String {
        preload_php(crate::php_build().as_deref() == Ok(protocol::PhpBuild::Jspi.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &[u8]) -> String {
        s.iter()
            .map(|&b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    }

    fn message(fields: &[(&str, &[u8])]) -> String {
        let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
        format!("{MESSAGE_PREFIX}{}", parts.join("&"))
    }

    fn fetch(fields: &[(&str, &[u8])]) -> Request {
        match route_message(&message(fields), true) {
            MessageRoute::Fetch(request) => request,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    fn answer(fields: &[(&str, &[u8])], networking: bool) -> String {
        match route_message(&message(fields), networking) {
            MessageRoute::Answer(reply) => String::from_utf8(reply).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn the_asyncify_preload_refuses_streams_with_a_php_safe_message() {
        assert!(PRELOAD_PHP.contains(STREAM_REFUSAL_LINE));
        assert_eq!(preload_php(true), PRELOAD_PHP);
        let asyncify = preload_php(false);
        assert!(!asyncify.contains(STREAM_REFUSAL_LINE));
        let line = asyncify.lines().find(|l| l.starts_with("const STREAM_REFUSAL")).unwrap();
        assert!(line.contains("asyncify build"), "{line}");
        // A single-quoted PHP literal: no quote inside, and `\\` for a backslash.
        let literal = line.trim_start_matches("const STREAM_REFUSAL = '").trim_end_matches("';");
        assert!(!literal.contains('\''), "{literal}");
        assert!(literal.contains("PhpPool\\\\Http::send"), "{literal}");
    }

    #[test]
    fn a_body_without_a_content_type_is_form_data() {
        let request = fetch(&[("method", b"POST"), ("url", b"http://h/"), ("body", b"a=1")]);
        assert_eq!(request.headers, vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())]);
        let request = fetch(&[("method", b"POST"), ("url", b"http://h/"), ("body", b"{}"), ("header", b"content-type: application/json")]);
        assert_eq!(request.headers, vec![("content-type".into(), "application/json".into())]);
        assert!(fetch(&[("method", b"POST"), ("url", b"http://h/")]).headers.is_empty());
    }

    #[test]
    fn other_messages_are_not_ours() {
        assert_eq!(route_message("php-pool-flock?1 2 2 /a", true), MessageRoute::NotOurs);
        assert_eq!(route_message("php-pool-net", true), MessageRoute::NotOurs);
    }

    #[test]
    fn a_message_becomes_a_request_with_a_binary_body() {
        let body = b"a\0b\"c&d=e%\xff";
        let request = fetch(&[
            ("method", b"post"),
            ("url", b"https://example.org/x?y=1"),
            ("header", b"Content-Type: application/octet-stream\r\nX-One:  1 "),
            ("header", b"X-Two: 2"),
            ("body", body),
            ("timeout", b"2.5"),
            ("max_bytes", b"10"),
            ("fail_on_status", b"1"),
        ]);
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://example.org/x?y=1");
        assert_eq!(request.body, body);
        assert_eq!(
            request.headers,
            vec![
                ("Content-Type".into(), "application/octet-stream".into()),
                ("X-One".into(), "1".into()),
                ("X-Two".into(), "2".into())
            ]
        );
        assert_eq!(request.timeout_ms, Some(2500));
        assert_eq!(request.max_bytes, Some(10));
        assert!(request.blocking && request.fail_on_status);
        assert_eq!(request.redirect, Redirect::Follow);
    }

    #[test]
    fn networking_off_answers_with_the_clear_error() {
        let reply = answer(&[("url", b"https://example.org/")], false);
        assert!(reply.contains("PHP has no outgoing network"), "{reply}");
        assert!(reply.starts_with("a:1:{s:5:\"error\";"), "{reply}");
    }

    #[test]
    fn headers_the_browser_owns_are_dropped_and_bad_ones_refused() {
        let request = fetch(&[
            ("url", b"http://h/"),
            ("header", b"Host: h\r\nUser-Agent: WordPress\r\nCookie: a=b\r\nSec-Fetch-Mode: x\r\nProxy-Authorization: y"),
            ("header", b"Accept-Encoding: gzip\nConnection: close\nAccept: text/html"),
        ]);
        assert_eq!(request.headers, vec![("Accept".into(), "text/html".into())]);
        for bad in [&b"No colon here"[..], b"Bad Name: x", b"X: a\0b"] {
            let reply = answer(&[("url", b"http://h/"), ("header", bad)], true);
            assert!(reply.contains("malformed header line"), "{reply}");
        }
    }

    #[test]
    fn only_absolute_http_urls_and_query_data_joins_the_url() {
        for bad in [&b"ftp://h/x"[..], b"/relative", b"http:///nohost", b"file:///etc/passwd"] {
            assert!(answer(&[("url", bad)], true).contains("only absolute http"), "{bad:?}");
        }
        assert_eq!(fetch(&[("url", b"HTTPS://h"), ("query", b"a=1&b=2")]).url, "HTTPS://h?a=1&b=2");
        assert_eq!(fetch(&[("url", b"http://h/p?x=0#top"), ("query", b"a=1")]).url, "http://h/p?x=0&a=1#top");
    }

    #[test]
    fn requests_a_browser_cannot_send_are_refused() {
        assert!(answer(&[("url", b"http://h/"), ("body", b"x")], true).contains("GET request cannot carry a body"));
        assert!(answer(&[("method", b"HEAD"), ("url", b"http://h/"), ("body", b"x")], true).contains("HEAD"));
        assert!(answer(&[("method", b"connect"), ("url", b"http://h/")], true).contains("cannot send"));
        assert!(answer(&[("url", b"http://h/"), ("mode", b"wb")], true).contains("read-only"));
        assert_eq!(fetch(&[("url", b"http://h/"), ("mode", b"rb")]).method, "GET");
    }

    #[test]
    fn redirects_are_followed_unless_turned_off() {
        assert_eq!(fetch(&[("url", b"http://h/")]).redirect, Redirect::Follow);
        assert_eq!(fetch(&[("url", b"http://h/"), ("max_redirects", b"5")]).redirect, Redirect::Follow);
        assert_eq!(fetch(&[("url", b"http://h/"), ("follow", b"0")]).redirect, Redirect::Manual);
        assert_eq!(fetch(&[("url", b"http://h/"), ("follow", b"")]).redirect, Redirect::Manual);
        assert_eq!(fetch(&[("url", b"http://h/"), ("max_redirects", b"0")]).redirect, Redirect::Manual);
    }

    #[test]
    fn timeouts_in_seconds_become_milliseconds_and_zero_means_none() {
        assert_eq!(fetch(&[("url", b"http://h/"), ("timeout", b"5")]).timeout_ms, Some(5000));
        assert_eq!(fetch(&[("url", b"http://h/"), ("timeout", b"0.01")]).timeout_ms, Some(10));
        assert_eq!(fetch(&[("url", b"http://h/"), ("timeout", b"0")]).timeout_ms, None);
        assert_eq!(fetch(&[("url", b"http://h/")]).timeout_ms, None);
    }

    #[test]
    fn a_request_php_does_not_wait_for_gets_an_empty_reply() {
        let request = fetch(&[("method", b"POST"), ("url", b"http://h/wp-cron.php"), ("blocking", b"0")]);
        assert!(!request.blocking);
        let reply = String::from_utf8(detached_reply(&request)).unwrap();
        assert_eq!(
            reply,
            r#"a:4:{s:6:"status";i:0;s:4:"head";a:0:{}s:4:"body";s:0:"";s:3:"url";s:20:"http://h/wp-cron.php";}"#
        );
    }

    #[test]
    fn malformed_percent_encoding_is_an_error_not_a_panic() {
        let reply = answer_raw(&format!("{MESSAGE_PREFIX}url=http%3A%2F%2Fh&body=%G1"));
        assert!(reply.contains("malformed request field"), "{reply}");
        let reply = answer_raw(&format!("{MESSAGE_PREFIX}url=%"));
        assert!(reply.contains("malformed"), "{reply}");
    }

    fn answer_raw(message: &str) -> String {
        match route_message(message, true) {
            MessageRoute::Answer(reply) => String::from_utf8(reply).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn request() -> Request {
        fetch(&[("url", b"http://h/a")])
    }

    #[test]
    fn a_response_becomes_a_serialized_head_and_body() {
        let fetched = Fetched {
            status: 201,
            status_text: "",
            headers: vec![
                ("content-type".into(), "text/plain".into()),
                ("content-encoding".into(), "gzip".into()),
                ("content-length".into(), "99".into()),
                ("x-test".into(), "é".into()),
            ],
            body: b"b\"\0".to_vec(),
            url: "http://h/b",
            kind: "cors",
        };
        let reply = response_reply(&request(), fetched);
        let expected = "a:4:{s:6:\"status\";i:201;s:4:\"head\";a:3:{i:0;s:20:\"HTTP/1.1 201 Created\";\
            i:1;s:24:\"content-type: text/plain\";i:2;s:10:\"x-test: \u{e9}\";}\
            s:4:\"body\";s:3:\"b\"\0\";s:3:\"url\";s:10:\"http://h/b\";}";
        assert_eq!(String::from_utf8(reply).unwrap(), expected);
    }

    #[test]
    fn the_browsers_status_text_wins_and_unknown_codes_have_none() {
        let fetched = |status, status_text| Fetched {
            status,
            status_text,
            headers: vec![],
            body: vec![],
            url: "",
            kind: "basic",
        };
        let reply = String::from_utf8(response_reply(&request(), fetched(200, "Fine"))).unwrap();
        assert!(reply.contains("\"HTTP/1.1 200 Fine\""), "{reply}");
        let reply = String::from_utf8(response_reply(&request(), fetched(299, ""))).unwrap();
        assert!(reply.contains("s:12:\"HTTP/1.1 299\""), "{reply}");
        assert!(reply.contains("s:3:\"url\";s:10:\"http://h/a\""), "the request's URL when the browser gives none: {reply}");
    }

    #[test]
    fn max_bytes_truncates_and_fail_on_status_turns_4xx_into_an_error() {
        let limited = fetch(&[("url", b"http://h/a"), ("max_bytes", b"3")]);
        let fetched = |status| Fetched { status, status_text: "", headers: vec![], body: b"abcdef".to_vec(), url: "", kind: "basic" };
        let reply = String::from_utf8(response_reply(&limited, fetched(200))).unwrap();
        assert!(reply.contains("s:4:\"body\";s:3:\"abc\";"), "{reply}");
        let strict = fetch(&[("url", b"http://h/a"), ("fail_on_status", b"1")]);
        let reply = String::from_utf8(response_reply(&strict, fetched(404))).unwrap();
        assert!(reply.contains("http://h/a answered HTTP/1.1 404 Not Found"), "{reply}");
        let reply = String::from_utf8(response_reply(&strict, fetched(399))).unwrap();
        assert!(reply.contains("\"status\";i:399;"), "{reply}");
        let reply = String::from_utf8(response_reply(&request(), fetched(500))).unwrap();
        assert!(reply.contains("\"status\";i:500;"), "without fail_on_status an error status is a response: {reply}");
    }

    #[test]
    fn fetch_failures_become_clear_errors() {
        let timed = fetch(&[("url", b"http://h/a"), ("timeout", b"1.5")]);
        let text = |r: Vec<u8>| String::from_utf8(r).unwrap();
        assert!(text(failure_reply(&timed, "TimeoutError", "signal timed out")).contains("no answer from http://h/a within 1.5 s"));
        assert!(text(failure_reply(&timed, "TypeError", "Failed to fetch")).contains("cannot reach http://h/a"));
        assert!(text(failure_reply(&timed, "RangeError", "odd")).contains("RangeError: odd"));
        let redirected = Fetched { status: 0, status_text: "", headers: vec![], body: vec![], url: "", kind: "opaqueredirect" };
        assert!(text(response_reply(&timed, redirected)).contains("does not follow redirects"));
    }
}

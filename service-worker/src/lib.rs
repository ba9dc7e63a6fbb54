//! The service worker. It owns no PHP and no memory (it cannot see shared
//! memory: it lives in another agent cluster). For a URL under a scope
//! (`/scope:<id>/...`) it asks the page that owns the scope to schedule the
//! request on a PHP worker, handing over a fresh `MessagePort` on which that
//! worker answers directly. Everything else passes through to the network.

pub mod isolation;

use js_sys::{Array, Promise, Uint8Array};
use protocol::{HttpRequest, HttpResponse, JobResult, PageMessage, ScopedRequest};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Client, ClientQueryOptions, ClientType, MessageChannel, MessageEvent, Request, Response, ResponseInit,
    ServiceWorkerGlobalScope,
};

thread_local! {
    /// scope id -> the window client (host page) that serves it.
    static OWNERS: RefCell<HashMap<String, Owner>> = RefCell::new(HashMap::new());
    /// Requests waiting for a reply, by request id: resolves with the reply bytes.
    static PENDING: RefCell<HashMap<u64, js_sys::Function>> = RefCell::new(HashMap::new());
    static NEXT_REQUEST_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// A message from a host page (`[bytes, ...attachments]`, see
/// `protocol::PageMessage`), as a client message (`client_id` set) or on a
/// claim port.
#[wasm_bindgen]
pub fn on_page_message(data: JsValue, client_id: Option<String>) {
    let data = Array::from(&data);
    let bytes = Uint8Array::new(&data.get(0)).to_vec();
    match protocol::decode::<PageMessage>(&bytes) {
        Ok(PageMessage::ClaimScope { scope, assets_url }) => {
            let port = data.get(1).dyn_into::<web_sys::MessagePort>().ok();
            match client_id {
                Some(client_id) => claim_scope(scope, client_id, assets_url, port),
                None => web_sys::console::error_1(&"a scope can only be claimed by a page".into()),
            }
        }
        Ok(PageMessage::Reply { request_id, result }) => host_reply(request_id, &result),
        Ok(PageMessage::Http(_)) => web_sys::console::error_1(&"requests go to pages, not to the service worker".into()),
        Err(e) => web_sys::console::error_1(&e.into()),
    }
}

/// The host answers a request itself when no worker will: queue full,
/// timeout, crash.
fn host_reply(request_id: u64, result: &JobResult) {
    if let Some(resolve) = PENDING.with(|p| p.borrow_mut().remove(&request_id)) {
        let _ = resolve.call1(&JsValue::NULL, &Uint8Array::from(&protocol::encode(result)[..]));
    }
}

fn global() -> ServiceWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

struct Owner {
    client_id: String,
    /// A port to the page's process manager, made at claim time: requests go over it
    /// without looking the page up among the clients each time.
    port: Option<web_sys::MessagePort>,
    /// Where the site's static files that are not in its filesystem live
    /// (WordPress builds ship theirs outside the archive), if anywhere.
    assets_url: Option<String>,
}

/// A host page announces the scope it serves.
fn claim_scope(scope: String, client_id: String, assets_url: Option<String>, port: Option<web_sys::MessagePort>) {
    if let Some(port) = &port {
        // The host answers requests it gives up on over the same port.
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| on_page_message(event.data(), None));
        port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget(); // lives as long as the port
    }
    OWNERS.with(|o| o.borrow_mut().insert(scope, Owner { client_id, port, assets_url }));
}

/// Answers one fetch. The JS glue calls this only for same-origin requests.
#[wasm_bindgen]
pub async fn handle_fetch(request: Request) -> Result<Response, JsValue> {
    let arrived = protocol::web::now_ms();
    let url = web_sys::Url::new(&request.url())?;
    if url.pathname() == protocol::trace::CONTROL_PATH {
        // The bench's control: our Response alone, without the hops.
        // A traced one says when it arrived and left, for the bench's split.
        let mut headers = Vec::new();
        if let Some(trace) = request.headers().get(protocol::trace::HEADER)? {
            headers.push((protocol::trace::HEADER.to_string(), trace));
            protocol::trace::stamp(&mut headers, "sw", arrived);
            protocol::trace::stamp(&mut headers, "sw-out", protocol::web::now_ms());
        }
        return to_response(HttpResponse { status: 200, headers, body: b"ok".to_vec() });
    }
    let path_and_query = format!("{}{}", url.pathname(), url.search());
    match protocol::scope::split(&path_and_query) {
        Some((scope, rest)) => {
            let scope_url = protocol::scope::url(&url.origin(), scope);
            match serve_scoped(&request, scope, &rest, scope_url, arrived).await {
                Ok(response) => Ok(response),
                Err(e) => error_response(502, &format!("The PHP site could not answer: {}", protocol::web::message_of(&e))),
            }
        }
        None => {
            let response: Response = JsFuture::from(global().fetch_with_request(&request)).await?.unchecked_into();
            // Documents and worker scripts each carry their own isolation.
            let needs_isolation = request.mode() == web_sys::RequestMode::Navigate
                || request.destination() == web_sys::RequestDestination::Worker;
            if needs_isolation {
                isolate(response)
            } else {
                Ok(response)
            }
        }
    }
}

/// Adds the isolation headers to a document the server sent without them.
fn isolate(response: Response) -> Result<Response, JsValue> {
    let coep = isolation::coep_from_query(&global().location().search());
    let existing = response.headers().get("cross-origin-embedder-policy")?;
    let added = isolation::headers_to_inject(existing.as_deref(), coep);
    if added.is_empty() {
        return Ok(response);
    }
    with_headers(response, added.iter().map(|(name, value)| (*name, value.as_str())))
}

/// `response` with `set` replacing those of its headers (its status and
/// body as they are).
fn with_headers<'a>(response: Response, set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Response, JsValue> {
    let headers = web_sys::Headers::new_with_headers(&response.headers())?;
    for (name, value) in set {
        headers.set(name, value)?;
    }
    let init = ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
}

async fn serve_scoped(request: &Request, scope: &str, rest: &str, scope_url: String, arrived: f64) -> Result<Response, JsValue> {
    let mut headers = Vec::new();
    let iter = js_sys::try_iter(&request.headers())?.ok_or("headers are not iterable")?;
    for pair in iter {
        let pair: Array = pair?.unchecked_into();
        headers.push((pair.get(0).as_string().unwrap_or_default(), pair.get(1).as_string().unwrap_or_default()));
    }
    let url = web_sys::Url::new(&request.url())?;
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        headers.push(("host".into(), url.host()));
    }
    protocol::trace::stamp(&mut headers, "sw", arrived);
    // Refused before it is read when its length is announced, else once read.
    let announced = request.headers().get("content-length")?.and_then(|n| n.trim().parse::<u64>().ok());
    if let Some(message) = announced.and_then(protocol::request_body_too_large) {
        return error_response(413, &message);
    }
    let body = match request.method().as_str() {
        "GET" | "HEAD" => Vec::new(),
        _ => {
            let bytes = Uint8Array::new(&JsFuture::from(request.array_buffer()?).await?);
            if let Some(message) = protocol::request_body_too_large(bytes.length() as u64) {
                return error_response(413, &message);
            }
            bytes.to_vec()
        }
    };
    let request_id = NEXT_REQUEST_ID.with(|n| n.replace(n.get() + 1));
    let scoped = ScopedRequest {
        request_id,
        scope: scope.to_string(),
        request: HttpRequest {
            method: request.method(),
            path_and_query: rest.to_string(),
            scope_url,
            headers,
            body,
        },
    };
    let port = OWNERS.with(|o| o.borrow().get(scope).and_then(|owner| owner.port.clone()));
    let host = match port {
        Some(port) => HostLink::Port(port),
        // After a restart the service worker has lost its ports: find the page.
        None => match find_host(scope).await? {
            Some(client) => HostLink::Client(client),
            None => {
                return error_response(503, &format!("No page is running the site scope:{scope}. Open the playground again."))
            }
        },
    };
    let channel = MessageChannel::new()?;
    let reply = wait_for_reply(&channel.port1(), request_id);
    let bytes = Uint8Array::from(&protocol::encode(&PageMessage::Http(scoped))[..]);
    let message = Array::of2(&bytes, &channel.port2());
    let transfer = Array::of1(&channel.port2());
    match &host {
        HostLink::Port(port) => port.post_message_with_transferable(&message, &transfer)?,
        HostLink::Client(client) => client.post_message_with_transfer(&message, &transfer)?,
    }
    let bytes = Uint8Array::new(&JsFuture::from(reply).await?).to_vec();
    PENDING.with(|p| p.borrow_mut().remove(&request_id));
    channel.port1().close();
    match protocol::decode::<JobResult>(&bytes).map_err(|e| JsValue::from_str(&e))? {
        JobResult::Http(response) if is_static_miss(&response) => static_asset(scope, rest, response).await,
        JobResult::Http(mut response) => {
            protocol::trace::stamp(&mut response.headers, "sw-out", protocol::web::now_ms());
            to_response(response)
        }
        JobResult::Failed { message, .. } => error_response(500, &message),
        other => error_response(500, &format!("unexpected reply {other:?}")),
    }
}

enum HostLink {
    Port(web_sys::MessagePort),
    Client(Client),
}

fn is_static_miss(response: &HttpResponse) -> bool {
    response.status == 404 && response.headers.iter().any(|(name, _)| name == protocol::STATIC_MISS_HEADER)
}

/// A static file the site's filesystem lacks, from the scope's assets.
async fn static_asset(scope: &str, rest: &str, miss: HttpResponse) -> Result<Response, JsValue> {
    let assets = OWNERS.with(|o| o.borrow().get(scope).and_then(|owner| owner.assets_url.clone()));
    // A path that could climb out of the static root gets the site's 404.
    if let (Some(base), Some(path)) = (assets, protocol::static_files::fallback_path(rest)) {
        let fetched: Response = JsFuture::from(global().fetch_with_str(&format!("{base}{path}"))).await?.unchecked_into();
        if fetched.ok() {
            // The page must come back here each time: the browser may keep
            // the build's file (its folder names the release), but the site
            // may write its own at this path at any time.
            return with_headers(fetched, [("cache-control", "no-cache")]);
        }
    }
    let mut miss = miss;
    miss.headers.retain(|(name, _)| name != protocol::STATIC_MISS_HEADER);
    to_response(miss)
}

/// The page that claimed the scope, or (after a service worker restart lost
/// the claims) the only window client outside any scope.
async fn find_host(scope: &str) -> Result<Option<Client>, JsValue> {
    let clients = global().clients();
    if let Some(id) = OWNERS.with(|o| o.borrow().get(scope).map(|owner| owner.client_id.clone())) {
        let found = JsFuture::from(clients.get(&id)).await?;
        if !found.is_undefined() {
            return Ok(Some(found.unchecked_into()));
        }
    }
    let options = ClientQueryOptions::new();
    options.set_type(ClientType::Window);
    let all: Array = JsFuture::from(clients.match_all_with_options(&options)).await?.unchecked_into();
    let hosts: Vec<Client> = all
        .iter()
        .map(|c| c.unchecked_into::<Client>())
        .filter(|c| web_sys::Url::new(&c.url()).map(|u| protocol::scope::split(&u.pathname()).is_none()).unwrap_or(false))
        .collect();
    Ok(if hosts.len() == 1 { hosts.into_iter().next() } else { None })
}

/// Resolves with the first reply: the worker's on `port`, or the host's
/// through `host_reply`.
fn wait_for_reply(port: &web_sys::MessagePort, request_id: u64) -> Promise {
    let port = port.clone();
    Promise::new(&mut move |resolve, _reject| {
        PENDING.with(|p| p.borrow_mut().insert(request_id, resolve.clone()));
        let on_message = Closure::once_into_js(move |event: MessageEvent| {
            let _ = resolve.call1(&JsValue::NULL, &event.data());
        });
        port.set_onmessage(Some(on_message.unchecked_ref()));
    })
}

const ISOLATION_HEADERS: [(&str, &str); 3] = [
    ("cross-origin-embedder-policy", "credentialless"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

fn to_response(response: HttpResponse) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(response.status);
    let headers = web_sys::Headers::new()?;
    for (name, value) in &response.headers {
        // The iframe must be able to show the site.
        if name.eq_ignore_ascii_case("x-frame-options") {
            continue;
        }
        headers.append(name, value)?;
    }
    // The site is embedded in the isolated playground page, so its documents
    // must be isolated too, or the browser refuses to show them in the iframe.
    for (name, value) in ISOLATION_HEADERS {
        headers.set(name, value)?;
    }
    init.set_headers(&headers);
    let null_body = matches!(response.status, 101 | 103 | 204 | 205 | 304);
    if null_body {
        Response::new_with_opt_u8_array_and_init(None, &init)
    } else {
        Response::new_with_opt_readable_stream_and_init(Some(&body_stream(&response.body)?), &init)
    }
}

/// The body as a stream of one chunk: Chromium hands a bytes body to the
/// page as a blob, which cost a small response 0.2 to 0.5 ms more here
/// (bench/browser.mjs `serviceWorkerOverhead`, its control).
fn body_stream(body: &[u8]) -> Result<web_sys::ReadableStream, JsValue> {
    let chunk = (!body.is_empty()).then(|| Uint8Array::from(body));
    let start = Closure::once_into_js(move |controller: web_sys::ReadableStreamDefaultController| {
        if let Some(chunk) = chunk {
            let _ = controller.enqueue_with_chunk(&chunk);
        }
        let _ = controller.close();
    });
    let source = js_sys::Object::new();
    js_sys::Reflect::set(&source, &"start".into(), &start)?;
    web_sys::ReadableStream::new_with_underlying_source(&source)
}

fn error_response(status: u16, message: &str) -> Result<Response, JsValue> {
    to_response(HttpResponse::plain_text(status, message))
}

//! The client an embedding page gets (and `window.playground` in the
//! playground). Names follow WordPress Playground's client where they overlap.

use crate::isolation::Mode;
use crate::manager_link::{Manager, Reply};
use crate::util::{error, get, optional_string, optional_u32, set};
use js_sys::{Function, Object, Promise, Uint8Array};
use protocol::manager::{JobTarget, WorkerInfo};
use protocol::{HttpRequest, Job, JobResult, PageMessage, RunRequest, RunSource};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{MessageEvent, MessagePort};

#[wasm_bindgen(typescript_custom_section)]
const CLIENT_TYPES: &'static str = r#"
/** `code` or `scriptPath` (an absolute path of a PHP file). */
export interface RunOptions {
    code?: string;
    scriptPath?: string;
    /** Environment variables for `getenv()`. */
    env?: Record<string, string>;
    /** The request body (`php://input`). */
    body?: string | Uint8Array;
    worker?: number;
}
export interface RunResult {
    text: string;
    bytes: Uint8Array;
    errors: string;
    exitCode: number;
    httpStatusCode: number;
    headers: Record<string, string[]>;
    /** `text` parsed as JSON. */
    readonly json: any;
    worker: number;
}
export interface RmDirOptions { recursive?: boolean; }
export interface ListFilesOptions { prependPath?: boolean; }
/** php-wasm's event types; the client emits `request.end` and `request.error`. */
export interface PHPEvent { type: string; error?: Error; }
export interface RequestOptions {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Uint8Array;
    worker?: number;
}
export interface PHPResponse {
    httpStatusCode: number;
    headers: Record<string, string[]>;
    text: string;
    bytes: Uint8Array;
}
export interface WorkerInfo {
    index: number;
    state: 'booting' | 'idle' | 'busy' | 'stopping' | 'gone' | 'failed';
    currentJob: number | null;
    completed: number;
    timedOut: number;
    crashed: number;
    restarts: number;
    /** PHP runtimes this worker swapped for fresh ones (`maxRequests`). */
    recycled: number;
    /** Its PHP runtime's memory (php.wasm's heap) after its last job; 0 before one. */
    phpHeapBytes: number;
}
export interface FilesystemStats {
    capacity: number; used: number; highWater: number; max: number; inodes: number; memoryBytes: number;
    /** Bytes the shared Rust heap holds now, and the most it ever held. */
    heapBytes: number; heapPeak: number;
    /** Times a filesystem operation waited for one of the filesystem's own locks, held by another thread, since the start (fcntl and flock conflicts are not counted). */
    lockWaits: number;
}
export interface Isolation {
    mode: 'server-headers' | 'service-worker-headers' | 'single-worker';
    crossOriginIsolated: boolean;
    reason?: string;
}
export interface ProgressEvent { stage: string; done: number; total: number; }
export interface StartOptions {
    site?: 'wordpress' | 'blank' | Uint8Array | ArrayBuffer | Blob;
    workers?: number;
    iframe?: HTMLIFrameElement;
    maxQueue?: number;
    queueTimeoutMs?: number;
    requestTimeoutMs?: number;
    /** Requests a PHP runtime serves before its worker swaps it for a fresh
     *  one, between requests (default 400; 0: only when its heap passes 1 GiB). */
    maxRequests?: number;
    memoryMaximumMb?: number;
    fsInitialMb?: number;
    /** PHP's outgoing HTTP through the browser's fetch (default true). */
    networking?: boolean | 'yes' | 'no';
    /** php-wasm build; default: JSPI where the browser has it, else asyncify. */
    phpBuild?: 'jspi' | 'asyncify';
    /** Save the site in this browser (OPFS; the default) or not ('temp'). */
    storage?: 'browser' | 'temp';
    /** The saved site to open, or create; default: the one opened last here. */
    siteSlug?: string;
    /** Told when the site stops for good (a worker died inside the shared
     *  heap's allocator); `saved`: reopening it goes on from its saved copy. */
    onSiteStopped?: (event: { reason: string; saved: boolean }) => void;
    /** A Blueprint (v1): an object, or its JSON or base64 JSON text (a URL fragment's forms). */
    blueprint?: object | string;
    /** Where to fetch a Blueprint (v1, JSON); wins over `blueprint`. */
    blueprintUrl?: string;
    /** PHP version: 7.4, 8.0 … 8.5 or `latest` (8.5); default: the Blueprint's `preferredVersions.php`, else 8.3. */
    php?: '7.4' | '8.0' | '8.1' | '8.2' | '8.3' | '8.4' | '8.5' | 'latest' | (string & {});
    /** WordPress of a new site: 6.2 … 6.5, `beta` (6.6-RC3), `nightly` (6.7-alpha), `latest` (6.5), or the
     *  URL of a WordPress zip (fetched by the page: this origin, or CORS); default: the Blueprint's
     *  `preferredVersions.wp`, else 6.5. */
    wp?: string;
    onProgress?: (event: ProgressEvent) => void;
}
"#;

/// The page's claim of its scope with the service worker: the port the
/// scope's requests come over, and where the site's static assets are
/// (said again when the page claims the scope again).
pub struct Claim {
    pub port: MessagePort,
    pub assets_url: Option<String>,
}

/// See `PlaygroundClient::embeddable_methods`.
const EMBEDDABLE_METHODS: [&str; 20] = [
    "run", "request", "defineConstant", "writeFile", "readFileAsText", "readFileAsBuffer", "mkdir", "mkdirTree", "unlink", "mv", "cp",
    "rmdir", "listFiles", "isDir", "fileExists", "chdir", "exportSite", "workers", "stats", "isolation",
];

#[wasm_bindgen(js_name = PlaygroundClient)]
pub struct Client {
    manager: Manager,
    isolation: Mode,
    scope: String,
    absolute_url: String,
    document_root: String,
    php_build: protocol::PhpBuild,
    php_version: &'static str,
    /// The installed WordPress's `$wp_version`; `None` for other sites.
    wp_version: Option<String>,
    /// Where `run` starts PHP (`chdir`); the document root, as in Playground.
    cwd: Rc<RefCell<String>>,
    /// `addEventListener`'s `(type, listener)` pairs.
    listeners: Rc<RefCell<Vec<(String, Function)>>>,
    /// `onMessage` listeners (the manager link's: it answers the workers).
    message_listeners: Rc<RefCell<Vec<Function>>>,
    /// The last `defineConstant` call: each waits for the one before, so
    /// their read-merge-writes of the shared file never interleave.
    constants_chain: RefCell<Promise>,
}

impl Client {
    pub fn new(
        manager: Manager,
        scope: String,
        absolute_url: String,
        document_root: String,
        isolation: Mode,
        php_build: protocol::PhpBuild,
        claim: Option<Claim>,
    ) -> Client {
        let client = Client {
            message_listeners: manager.message_listeners(),
            manager,
            isolation,
            scope,
            absolute_url,
            cwd: Rc::new(RefCell::new(document_root.clone())),
            document_root,
            php_build,
            php_version: crate::versions::DEFAULT_PHP,
            wp_version: None,
            listeners: Default::default(),
            constants_chain: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
        };
        if let Some(claim) = claim {
            client.route_scope_to_manager(claim);
        }
        client
    }

    pub(crate) fn with_versions(mut self, php_version: &'static str, wp_version: Option<String>) -> Client {
        self.php_version = php_version;
        self.wp_version = wp_version;
        self
    }

    /// The service worker's requests for our scope go to the process
    /// manager on `port` (made at claim time) without the page; after a
    /// service worker restart, through the page (`isolation::claims_again`).
    fn route_scope_to_manager(&self, Claim { port, assets_url }: Claim) {
        if let Err(e) = self.manager.serve_scope(&self.scope, &port) {
            web_sys::console::error_2(&"the site's requests cannot reach the process manager".into(), &e);
        }
        let manager = self.manager.clone();
        let scope = self.scope.clone();
        let Some(container) = web_sys::window().map(|w| w.navigator().service_worker()) else { return };
        let mut claimed_again_at = None;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // `[bytes, reply port]` (protocol::PageMessage::Http).
            let data = js_sys::Array::from(&event.data());
            let Ok(reply) = data.get(1).dyn_into::<MessagePort>() else { return };
            let now = js_sys::Date::now();
            if crate::isolation::claims_again(claimed_again_at, now) {
                claimed_again_at = Some(now);
                let service_worker = event.source().and_then(|s| s.dyn_into::<web_sys::ServiceWorker>().ok());
                let claimed = service_worker
                    .ok_or_else(|| error("a request from no service worker"))
                    .and_then(|sw| crate::boot::claim_scope(&sw, &scope, assets_url.as_deref()))
                    .and_then(|port| manager.serve_scope(&scope, &port));
                if let Err(e) = claimed {
                    web_sys::console::warn_2(&"could not claim the site's scope again".into(), &e);
                }
            }
            let forwarded = PageMessage::decode_request(&Uint8Array::new(&data.get(0)).to_vec())
                .and_then(|scoped| manager.forward(scoped, &reply).map_err(|e| crate::util::message_of(&e)));
            if let Err(message) = forwarded {
                let failure = JobResult::Failed { message, errno: None };
                let _ = reply.post_message(&Uint8Array::from(&protocol::encode(&failure)[..]));
            }
        });
        container.add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref()).ok();
        on_message.forget(); // serves for the page's lifetime
    }

    fn path_job(&self, path: String, job: impl FnOnce(String) -> Job) -> Promise {
        match path_arg(&path) {
            Ok(path) => self.submit(JobTarget::Any, job(path)),
            Err(e) => Promise::reject(&e),
        }
    }

    fn submit(&self, target: JobTarget, job: Job) -> Promise {
        let manager = self.manager.clone();
        future_to_promise(async move { Ok(manager.submit(target, job).await?.into()) })
    }

    /// Writes `data` to `path`, creating its parent directories.
    /// Writes `data` at `path` unless the file already holds exactly it: an
    /// unchanged file keeps its compiled script, and a boot that changes
    /// nothing waits for no save before its first reply.
    pub(crate) async fn write_file_if_changed(&self, path: &str, data: &[u8]) -> Result<(), JsValue> {
        if let Ok(Reply(JobResult::File(stored))) = self.manager.submit(JobTarget::Any, Job::ReadFile { path: path.into() }).await {
            if stored == data {
                return Ok(());
            }
        }
        if let Some((parent, _)) = path.rsplit_once('/').filter(|(parent, _)| !parent.is_empty()) {
            self.manager.submit(JobTarget::Any, Job::Mkdir { path: parent.into() }).await?;
        }
        self.manager.submit(JobTarget::Any, Job::WriteFile { path: path.into(), data: data.to_vec() }).await?;
        Ok(())
    }

    pub(crate) async fn is_dir_now(&self, path: &str) -> Result<bool, JsValue> {
        let Reply(result) = self.manager.submit(JobTarget::Any, Job::IsDir { path: path.into() }).await?;
        Ok(matches!(result, JobResult::Bool(true)))
    }
}

/// Calls the listeners of `event.type` and of `*`.
fn dispatch(listeners: &Rc<RefCell<Vec<(String, Function)>>>, event: &Object) {
    let kind = get(event, "type").as_string().unwrap_or_default();
    let chosen: Vec<Function> =
        listeners.borrow().iter().filter(|(t, _)| *t == kind || t == "*").map(|(_, f)| f.clone()).collect();
    for listener in chosen {
        let _ = listener.call1(&JsValue::NULL, event);
    }
}

fn request_event(result: &Result<JsValue, JsValue>) -> Object {
    let event = Object::new();
    match result {
        Ok(_) => set(&event, "type", "request.end"),
        Err(e) => {
            set(&event, "type", "request.error");
            set(&event, "error", e.clone());
            set(&event, "source", "request");
        }
    }
    event
}

/// A response object as php-wasm's `PHPResponse` has it.
fn response_object(status: u16, headers: &[(String, String)], body: &[u8]) -> Object {
    let out = Object::new();
    set(&out, "httpStatusCode", status);
    let by_name = Object::new();
    for (name, value) in headers {
        let key = name.to_ascii_lowercase();
        let list = get(&by_name, &key);
        let list: js_sys::Array = if list.is_undefined() { js_sys::Array::new() } else { list.unchecked_into() };
        list.push(&JsValue::from_str(value));
        set(&by_name, &key, list);
    }
    set(&out, "headers", by_name);
    set(&out, "text", String::from_utf8_lossy(body).into_owned());
    set(&out, "bytes", Uint8Array::from(body));
    out
}

/// `{[name]: string}` as name-value pairs (values converted with String()).
fn string_pairs(value: &JsValue) -> Vec<(String, String)> {
    let Some(object) = value.dyn_ref::<Object>() else { return Vec::new() };
    Object::keys(object)
        .iter()
        .map(|key| {
            let name = key.as_string().unwrap_or_default();
            let value = get(object, &name);
            let value = value.as_string().unwrap_or_else(|| String::from(js_sys::JsString::from(value)));
            (name, value)
        })
        .collect()
}

/// A request's or run's body; one larger than the service worker would
/// pass on is refused with the same reason, before it is copied.
fn body_bytes(body: &JsValue) -> Result<Vec<u8>, JsValue> {
    let fits = |bytes: usize| protocol::request_body_too_large(bytes as u64).map_or(Ok(()), |why| Err(error(why)));
    if body.is_undefined() || body.is_null() {
        Ok(Vec::new())
    } else if let Some(text) = body.as_string() {
        fits(text.len())?;
        Ok(text.into_bytes())
    } else if body.is_instance_of::<Uint8Array>() {
        let bytes = Uint8Array::new(body);
        fits(bytes.length() as usize)?;
        Ok(bytes.to_vec())
    } else {
        Err(error("body must be a string or a Uint8Array (form objects are not supported)"))
    }
}

/// `request()`'s work: the path within the site, headers, body, and the reply.
async fn request(manager: &Manager, base: String, options: JsValue) -> Result<JsValue, JsValue> {
    let url = optional_string(&options, "url")?.ok_or_else(|| error("request() needs `url`"))?;
    let path_and_query = match url.strip_prefix(&base) {
        Some(rest) => format!("/{rest}"),
        None if url.starts_with('/') => url,
        None => return Err(error(format!("url must be a path or start with {base}, got {url:?}"))),
    };
    let mut headers = string_pairs(&get(&options, "headers"));
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        // As a browser would send it, so PHP builds URLs on this site.
        let host = web_sys::Url::new(&base).map(|u| u.host()).unwrap_or_default();
        headers.push(("host".into(), host));
    }
    let request = HttpRequest {
        method: optional_string(&options, "method")?.unwrap_or_else(|| "GET".into()),
        path_and_query,
        scope_url: base,
        headers,
        body: body_bytes(&get(&options, "body"))?,
    };
    let Reply(result) = manager.submit(target(&options)?, Job::Http(request)).await?;
    let JobResult::Http(response) = result else { return Err(error("unexpected reply to request()")) };
    Ok(response_object(response.status, &response.headers, &response.body).into())
}

impl From<Reply> for JsValue {
    fn from(reply: Reply) -> JsValue {
        match reply.0 {
            JobResult::Done => JsValue::UNDEFINED,
            JobResult::File(bytes) => Uint8Array::from(&bytes[..]).into(),
            JobResult::Names(names) => names.into_iter().map(JsValue::from).collect::<js_sys::Array>().into(),
            JobResult::Bool(b) => JsValue::from(b),
            JobResult::Stats(s) => {
                let out = Object::new();
                set(&out, "capacity", s.capacity as f64);
                set(&out, "used", s.used as f64);
                set(&out, "highWater", s.high_water as f64);
                set(&out, "max", s.max as f64);
                set(&out, "inodes", s.inodes as f64);
                set(&out, "memoryBytes", s.memory_bytes as f64);
                set(&out, "heapBytes", s.heap_bytes as f64);
                set(&out, "heapPeak", s.heap_peak as f64);
                set(&out, "lockWaits", s.lock_waits as f64);
                out.into()
            }
            // run() and request() convert their own replies; the boot reads Upgraded.
            JobResult::Run(_) | JobResult::Http(_) | JobResult::Failed { .. } | JobResult::Upgraded { .. } => JsValue::UNDEFINED,
        }
    }
}

fn target(options: &JsValue) -> Result<JobTarget, JsValue> {
    Ok(match optional_u32(options, "worker")? {
        Some(w) => JobTarget::Worker(w),
        None => JobTarget::Any,
    })
}

fn path_arg(path: &str) -> Result<String, JsValue> {
    if !path.starts_with('/') {
        return Err(error(format!("path must be absolute, got {path:?}")));
    }
    Ok(path.to_string())
}

async fn run(manager: &Manager, cwd: String, options: JsValue) -> Result<JsValue, JsValue> {
    let source = match (optional_string(&options, "code")?, optional_string(&options, "scriptPath")?) {
        (Some(code), None) => RunSource::Code(code),
        (None, Some(path)) => RunSource::Script(path_arg(&path)?),
        (Some(_), Some(_)) => return Err(error("run() takes `code` or `scriptPath`, not both")),
        (None, None) => return Err(error("run() needs `code` or `scriptPath`")),
    };
    let env = string_pairs(&get(&options, "env"));
    let run = RunRequest { source, env, body: body_bytes(&get(&options, "body"))?, cwd };
    let Reply(result) = manager.submit(target(&options)?, Job::Run(run)).await?;
    let JobResult::Run(output) = result else { return Err(error("unexpected reply to run()")) };
    let out = response_object(output.status, &output.headers, &output.bytes);
    set(&out, "errors", output.errors.clone());
    set(&out, "exitCode", output.exit_code);
    set(&out, "worker", output.worker);
    // Parsed on use, as php-wasm's `json` getter.
    let descriptor = Object::new();
    set(&descriptor, "get", Function::new_no_args("return JSON.parse(this.text)"));
    Object::define_property(&out, &"json".into(), &descriptor);
    if output.exit_code != 0 {
        let text = String::from_utf8_lossy(&output.bytes);
        let e = js_sys::Error::new(&format!(
            "PHP.run() failed with exit code {}.\n\n=== Stdout ===\n{text}\n\n=== Stderr ===\n{}",
            output.exit_code, output.errors
        ));
        set(e.unchecked_ref(), "response", out);
        return Err(e.into());
    }
    Ok(out.into())
}

#[wasm_bindgen(js_class = PlaygroundClient)]
impl Client {
    /// `run({code | scriptPath, env?, body?, worker?})` → a response like
    /// php-wasm's (`text`, `bytes`, `errors`, `exitCode`, `httpStatusCode`,
    /// `headers`, `json`) plus `worker`. As php-wasm's `run`, rejects when PHP
    /// exits with a non-zero code; the error carries `response`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(&self, #[wasm_bindgen(unchecked_param_type = "RunOptions")] options: JsValue) -> Promise {
        let manager = self.manager.clone();
        let cwd = self.cwd.borrow().clone();
        let listeners = self.listeners.clone();
        future_to_promise(async move {
            let result = run(&manager, cwd, options).await;
            dispatch(&listeners, &request_event(&result));
            result
        })
    }

    /// `request({url, method?, headers?, body?, worker?})` → `{httpStatusCode, headers, bytes, text}`.
    /// `url` is a path within the site (`/a.php?x=1`) or a URL under `absoluteUrl`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PHPResponse>")]
    pub fn request(&self, #[wasm_bindgen(unchecked_param_type = "RequestOptions")] options: JsValue) -> Promise {
        let manager = self.manager.clone();
        let base = self.absolute_url.clone();
        let listeners = self.listeners.clone();
        future_to_promise(async move {
            let result = request(&manager, base, options).await;
            dispatch(&listeners, &request_event(&result));
            result
        })
    }

    /// Writes (creates or replaces) a file on the shared filesystem.
    #[wasm_bindgen(js_name = writeFile, unchecked_return_type = "Promise<void>")]
    pub fn write_file(&self, path: String, #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] data: JsValue) -> Promise {
        let data = match data.as_string() {
            Some(text) => text.into_bytes(),
            None if data.is_instance_of::<Uint8Array>() => Uint8Array::new(&data).to_vec(),
            None => return Promise::reject(&error("writeFile data must be a string or a Uint8Array")),
        };
        match path_arg(&path) {
            Ok(path) => self.submit(JobTarget::Any, Job::WriteFile { path, data }),
            Err(e) => Promise::reject(&e),
        }
    }

    #[wasm_bindgen(js_name = readFileAsBuffer, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn read_file_as_buffer(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::ReadFile { path })
    }

    #[wasm_bindgen(js_name = readFileAsText, unchecked_return_type = "Promise<string>")]
    pub fn read_file_as_text(&self, path: String) -> Promise {
        let manager = self.manager.clone();
        future_to_promise(async move {
            let Reply(result) = manager.submit(JobTarget::Any, Job::ReadFile { path: path_arg(&path)? }).await?;
            let JobResult::File(bytes) = result else { return Err(error("unexpected reply to readFileAsText()")) };
            Ok(JsValue::from_str(&String::from_utf8_lossy(&bytes)))
        })
    }

    /// Creates a directory and any missing parents.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn mkdir(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::Mkdir { path })
    }

    /// The same as `mkdir` (which creates parents too).
    #[wasm_bindgen(js_name = mkdirTree, unchecked_return_type = "Promise<void>")]
    pub fn mkdir_tree(&self, path: String) -> Promise {
        self.mkdir(path)
    }

    /// Renames (moves) a file or directory.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn mv(&self, from: String, to: String) -> Promise {
        match (path_arg(&from), path_arg(&to)) {
            (Ok(from), Ok(to)) => self.submit(JobTarget::Any, Job::Rename { from, to }),
            (Err(e), _) | (_, Err(e)) => Promise::reject(&e),
        }
    }

    /// Copies a file, or a directory with everything in it.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn cp(&self, from: String, to: String) -> Promise {
        match (path_arg(&from), path_arg(&to)) {
            (Ok(from), Ok(to)) => self.submit(JobTarget::Any, Job::Copy { from, to }),
            (Err(e), _) | (_, Err(e)) => Promise::reject(&e),
        }
    }

    /// Removes a directory; with `{recursive: true}` (the default, as in
    /// php-wasm) everything in it too.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn rmdir(&self, path: String, #[wasm_bindgen(unchecked_param_type = "RmDirOptions")] options: JsValue) -> Promise {
        let recursive = get(&options, "recursive").as_bool().unwrap_or(true);
        self.path_job(path, |path| Job::Rmdir { path, recursive })
    }

    #[wasm_bindgen(js_name = isDir, unchecked_return_type = "Promise<boolean>")]
    pub fn is_dir(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::IsDir { path })
    }

    /// Where later `run` calls start PHP (default: the document root).
    pub fn chdir(&self, path: String) -> Result<(), JsValue> {
        *self.cwd.borrow_mut() = path_arg(&path)?;
        Ok(())
    }

    /// Defines a PHP constant for every later run and request on every
    /// worker (a JSON file on the shared filesystem each worker applies).
    #[wasm_bindgen(js_name = defineConstant, unchecked_return_type = "Promise<void>")]
    pub fn define_constant(
        &self,
        name: String,
        #[wasm_bindgen(unchecked_param_type = "string | number | boolean | null")] value: JsValue,
    ) -> Promise {
        let scalar = value.is_null() || value.as_string().is_some() || value.as_f64().is_some() || value.as_bool().is_some();
        if name.is_empty() || !scalar {
            return Promise::reject(&error(format!("defineConstant({name:?}): a name and a string, number, boolean or null value")));
        }
        let manager = self.manager.clone();
        let previous = self.constants_chain.borrow().clone();
        let next = future_to_promise(async move {
            let _ = JsFuture::from(previous).await; // its own caller sees its failure
            let path = protocol::CONSTANTS_PATH;
            let stored = match manager.submit(JobTarget::Any, Job::ReadFile { path: path.into() }).await {
                Ok(Reply(JobResult::File(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => "{}".into(),
            };
            let constants = js_sys::JSON::parse(&stored).ok().filter(|v| v.is_object()).unwrap_or_else(|| Object::new().into());
            set(constants.unchecked_ref(), &name, value);
            let json = String::from(js_sys::JSON::stringify(&constants)?);
            let parent = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("/");
            manager.submit(JobTarget::Any, Job::Mkdir { path: parent.into() }).await?;
            manager.submit(JobTarget::Any, Job::WriteFile { path: path.into(), data: json.into_bytes() }).await?;
            Ok(JsValue::UNDEFINED)
        });
        *self.constants_chain.borrow_mut() = next.clone();
        next
    }

    /// Registers a listener for PHP's `post_message_to_js(data)` from any
    /// worker, for any request; returns a function that removes it. The
    /// first truthy answer (awaited, in the order added) is what PHP gets
    /// back (host/src/manager_link.rs `answer_php_message`).
    #[wasm_bindgen(js_name = onMessage, unchecked_return_type = "() => Promise<void>")]
    pub fn on_message(&self, #[wasm_bindgen(unchecked_param_type = "(data: string) => any")] listener: Function) -> JsValue {
        self.message_listeners.borrow_mut().push(listener.clone());
        let listeners = self.message_listeners.clone();
        Closure::once_into_js(move || {
            listeners.borrow_mut().retain(|f| *f != listener);
            Promise::resolve(&JsValue::UNDEFINED)
        })
    }

    /// `request.end` / `request.error` after each `run` and `request`; `*` for all.
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(
        &self,
        event_type: String,
        #[wasm_bindgen(unchecked_param_type = "(event: PHPEvent) => void")] listener: Function,
    ) {
        self.listeners.borrow_mut().push((event_type, listener));
    }

    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(
        &self,
        event_type: String,
        #[wasm_bindgen(unchecked_param_type = "(event: PHPEvent) => void")] listener: Function,
    ) {
        self.listeners.borrow_mut().retain(|(t, f)| !(*t == event_type && *f == listener));
    }

    /// Removes a file.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unlink(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::Unlink { path })
    }

    /// Names in a directory (without `.` and `..`); with
    /// `{prependPath: true}`, their paths.
    #[wasm_bindgen(js_name = listFiles, unchecked_return_type = "Promise<string[]>")]
    pub fn list_files(
        &self,
        path: String,
        #[wasm_bindgen(unchecked_param_type = "ListFilesOptions")] options: JsValue,
    ) -> Promise {
        let prepend = get(&options, "prependPath").as_bool() == Some(true);
        let manager = self.manager.clone();
        future_to_promise(async move {
            let dir = path_arg(&path)?;
            let Reply(result) = manager.submit(JobTarget::Any, Job::ListFiles { path: dir.clone() }).await?;
            let JobResult::Names(names) = result else { return Err(error("unexpected reply to listFiles()")) };
            let prefix = format!("{}/", dir.trim_end_matches('/'));
            let listed = names.into_iter().map(|name| if prepend { format!("{prefix}{name}") } else { name });
            Ok(listed.map(JsValue::from).collect::<js_sys::Array>().into())
        })
    }

    #[wasm_bindgen(js_name = fileExists, unchecked_return_type = "Promise<boolean>")]
    pub fn file_exists(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::FileExists { path })
    }

    /// The whole document root as a zip (a Uint8Array); boot it again with
    /// `startPlayground({site: zip})`.
    #[wasm_bindgen(js_name = exportSite, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_site(&self) -> Promise {
        self.submit(JobTarget::Any, Job::ExportSite)
    }

    /// The site as a new site's prebuilt image: a zip of the document root
    /// and of the scripts compiled for it (`SiteKind::Image`). The build
    /// makes the default site's image with it (playground/build.mjs).
    #[wasm_bindgen(js_name = exportSiteImage, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_site_image(&self) -> Promise {
        self.submit(JobTarget::Any, Job::ExportImage)
    }

    /// `{capacity, used, highWater, max, inodes, memoryBytes, heapBytes,
    /// heapPeak, lockWaits}`: the shared filesystem and the shared Rust heap.
    #[wasm_bindgen(unchecked_return_type = "Promise<FilesystemStats>")]
    pub fn stats(&self) -> Promise {
        self.submit(JobTarget::Any, Job::Stats)
    }

    /// Where the site's files live on the shared filesystem.
    #[wasm_bindgen(getter, js_name = documentRoot)]
    pub fn document_root(&self) -> String {
        self.document_root.clone()
    }

    /// The php-wasm build the workers run: `jspi` or `asyncify`.
    #[wasm_bindgen(getter, js_name = phpBuild)]
    pub fn php_build(&self) -> String {
        self.php_build.name().into()
    }

    /// The PHP version the workers run (`8.3`, …).
    #[wasm_bindgen(getter, js_name = phpVersion)]
    pub fn php_version(&self) -> String {
        self.php_version.into()
    }

    /// The site's WordPress (`$wp_version`, e.g. `6.5.5`), read once it was
    /// up; `undefined` when the site is not WordPress.
    #[wasm_bindgen(getter, js_name = wpVersion)]
    pub fn wp_version(&self) -> Option<String> {
        self.wp_version.clone()
    }

    /// The saved site's name; `undefined` for a temporary site (`storage: 'temp'`).
    #[wasm_bindgen(getter, js_name = siteSlug)]
    pub fn site_slug(&self) -> Option<String> {
        self.manager.storage_slug()
    }

    /// True when the site was opened from storage, false when it was made new.
    #[wasm_bindgen(getter)]
    pub fn restored(&self) -> bool {
        self.manager.storage_opened().is_some_and(|o| o.restored)
    }

    /// Milliseconds the storage worker took to read the saved site into the
    /// shared filesystem (0 for a new site).
    #[wasm_bindgen(getter, js_name = storageOpenMs)]
    pub fn storage_open_ms(&self) -> u32 {
        self.manager.storage_opened().map_or(0, |o| o.open_ms)
    }

    /// Set when the stored site was damaged and an older, whole state
    /// opened, or when a site meant to be saved cannot be (no storage here).
    #[wasm_bindgen(getter, js_name = storageNotice)]
    pub fn storage_notice(&self) -> Option<String> {
        self.manager.storage_opened().and_then(|o| o.notice).or_else(|| self.manager.unsaved_reason())
    }

    /// The methods an embedding page may call by postMessage
    /// (playground/src/embed-api.js): those whose arguments and results
    /// cross a postMessage. Not listeners (`onMessage`, `addEventListener`),
    /// nor wasm-bindgen's `free`.
    #[wasm_bindgen(getter, js_name = embeddableMethods)]
    pub fn embeddable_methods(&self) -> Vec<String> {
        EMBEDDABLE_METHODS.iter().map(|m| m.to_string()).collect()
    }

    /// The site's base URL, served through the service worker.
    #[wasm_bindgen(getter, js_name = absoluteUrl)]
    pub fn absolute_url(&self) -> String {
        self.absolute_url.clone()
    }

    /// `{mode, crossOriginIsolated, reason?}`: how (or why not) the page got
    /// cross-origin isolation. Modes: `server-headers`,
    /// `service-worker-headers`, `single-worker`.
    #[wasm_bindgen(unchecked_return_type = "Isolation")]
    pub fn isolation(&self) -> JsValue {
        let out = Object::new();
        set(&out, "mode", self.isolation.name());
        set(&out, "crossOriginIsolated", !matches!(self.isolation, Mode::SingleWorker { .. }));
        if let Mode::SingleWorker { reason } = &self.isolation {
            set(&out, "reason", reason.as_str());
        }
        out.into()
    }

    /// Each PHP worker's state and counts, as the process manager has
    /// them when it answers.
    #[wasm_bindgen(unchecked_return_type = "Promise<WorkerInfo[]>")]
    pub fn workers(&self) -> Promise {
        let manager = self.manager.clone();
        future_to_promise(async move {
            let workers = manager.workers().await?;
            Ok(workers.iter().map(worker_object).collect::<js_sys::Array>().into())
        })
    }
}

/// `WorkerInfo` (the TypeScript type above) for the page.
fn worker_object(info: &WorkerInfo) -> JsValue {
    let out = Object::new();
    set(&out, "index", info.index);
    set(&out, "state", info.state.name());
    set(&out, "currentJob", info.current_job.map_or(JsValue::NULL, |job| JsValue::from(job as f64)));
    set(&out, "completed", info.completed as f64);
    set(&out, "timedOut", info.timed_out as f64);
    set(&out, "crashed", info.crashed as f64);
    set(&out, "restarts", info.restarts as f64);
    set(&out, "recycled", info.recycled as f64);
    set(&out, "phpHeapBytes", info.php_heap_bytes as f64);
    out.into()
}

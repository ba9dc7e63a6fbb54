//! The client an embedding page gets (and `window.playground` in the
//! playground). Names follow WordPress Playground's client where they overlap.

use crate::pool::{GiveUp, Pending, Pool};
use crate::isolation::Mode;
use crate::scheduler::Target;
use crate::util::{error, get, next_message, optional_string, optional_u32, set};
use js_sys::{Object, Promise, Uint8Array};
use protocol::{HttpRequest, Job, JobResult, PageMessage};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{MessageChannel, MessageEvent, MessagePort};

#[wasm_bindgen(typescript_custom_section)]
const CLIENT_TYPES: &'static str = r#"
export interface RunOptions { code: string; worker?: number; }
export interface RunResult { text: string; errors: string; exitCode: number; worker: number; }
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
    state: 'booting' | 'idle' | 'busy' | 'stopping';
    currentJob: number | null;
    completed: number;
    timedOut: number;
    crashed: number;
    restarts: number;
}
export interface FilesystemStats {
    capacity: number; used: number; highWater: number; max: number; inodes: number; memoryBytes: number;
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
    memoryMaximumMb?: number;
    fsInitialMb?: number;
    /** php-wasm build; default: JSPI where the browser has it, else asyncify. */
    phpBuild?: 'jspi' | 'asyncify';
    onProgress?: (event: ProgressEvent) => void;
}
"#;

#[wasm_bindgen(js_name = PlaygroundClient)]
pub struct Client {
    pool: Pool,
    isolation: Mode,
    scope: String,
    absolute_url: String,
    document_root: String,
    php_build: protocol::PhpBuild,
}

impl Client {
    pub fn new(
        pool: Pool,
        scope: String,
        absolute_url: String,
        document_root: String,
        isolation: Mode,
        php_build: protocol::PhpBuild,
        service_worker_port: Option<MessagePort>,
    ) -> Client {
        let client = Client { pool, isolation, scope, absolute_url, document_root, php_build };
        client.serve_service_worker(service_worker_port);
        client
    }

    /// Requests the service worker forwards for our scope go to the pool,
    /// with the service worker's port as the reply port: the worker answers
    /// the service worker directly. They arrive on `port` (made at claim
    /// time), or, after a service worker restart, as messages from it.
    fn serve_service_worker(&self, port: Option<MessagePort>) {
        let pool = self.pool.clone();
        let scope = self.scope.clone();
        let handle = move |event: MessageEvent, via: JsValue| {
            // `[bytes, reply port]` (protocol::PageMessage::Http).
            let data = js_sys::Array::from(&event.data());
            let Ok(reply) = data.get(1).dyn_into::<MessagePort>() else { return };
            let bytes = Uint8Array::new(&data.get(0)).to_vec();
            let scoped = protocol::decode::<PageMessage>(&bytes).and_then(|message| match message {
                PageMessage::Http(scoped) => Ok(scoped),
                other => Err(format!("the service worker sent {other:?}, not a request")),
            });
            let outcome = scoped.map_err(error).and_then(|scoped| {
                if scoped.scope != scope {
                    return Err(error(format!("scope {} is not served by this page", scoped.scope)));
                }
                let give_up = GiveUp::ServiceWorker { via, request_id: scoped.request_id };
                pool.serve_http(Pending { job: Job::Http(scoped.request), reply: reply.clone(), give_up })
            });
            if let Err(e) = outcome {
                let failure = JobResult::Failed { message: format!("{e:?}"), errno: None };
                let _ = reply.post_message(&Uint8Array::from(&protocol::encode(&failure)[..]));
            }
        };
        let handle = std::rc::Rc::new(handle);
        if let Some(port) = port {
            let (handle, answer_to) = (handle.clone(), JsValue::from(port.clone()));
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                handle(event, answer_to.clone());
            });
            port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget(); // serves for the page's lifetime
        }
        let Some(container) = web_sys::window().map(|w| w.navigator().service_worker()) else { return };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let source = event.source().map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
            handle(event, source);
        });
        container.add_event_listener_with_callback("message", on_message.as_ref().unchecked_ref()).ok();
        on_message.forget(); // serves for the page's lifetime
    }

    fn path_job(&self, path: String, job: impl FnOnce(String) -> Job) -> Promise {
        match path_arg(&path) {
            Ok(path) => self.submit(Target::Any, job(path)),
            Err(e) => Promise::reject(&e),
        }
    }

    fn submit(&self, target: Target, job: Job) -> Promise {
        let pool = self.pool.clone();
        future_to_promise(async move { Ok(submit(&pool, target, job).await?.into()) })
    }
}

struct Reply(JobResult);

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
                out.into()
            }
            // run() and request() convert their own replies.
            JobResult::Run(_) | JobResult::Http(_) | JobResult::Failed { .. } => JsValue::UNDEFINED,
        }
    }
}

async fn submit(pool: &Pool, target: Target, job: Job) -> Result<Reply, JsValue> {
    let channel = MessageChannel::new()?;
    let (reply, resolve) = next_message(&channel.port1());
    pool.submit(target, Pending { job, reply: channel.port2(), give_up: GiveUp::Local(resolve) })?;
    let data = JsFuture::from(reply).await?;
    channel.port1().close();
    let bytes = Uint8Array::new(&data).to_vec();
    match protocol::decode::<JobResult>(&bytes).map_err(error)? {
        JobResult::Failed { message, errno } => {
            let e = js_sys::Error::new(&message);
            if let Some(errno) = errno {
                set(e.unchecked_ref(), "code", errno.as_str());
            }
            Err(e.into())
        }
        result => Ok(Reply(result)),
    }
}

fn target(options: &JsValue) -> Result<Target, JsValue> {
    Ok(match optional_u32(options, "worker")? {
        Some(w) => Target::Worker(w),
        None => Target::Any,
    })
}

fn path_arg(path: &str) -> Result<String, JsValue> {
    if !path.starts_with('/') {
        return Err(error(format!("path must be absolute, got {path:?}")));
    }
    Ok(path.to_string())
}

#[wasm_bindgen(js_class = PlaygroundClient)]
impl Client {
    /// `run({code, worker?})` → `{text, errors, exitCode, worker}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(&self, #[wasm_bindgen(unchecked_param_type = "RunOptions")] options: JsValue) -> Promise {
        let pool = self.pool.clone();
        future_to_promise(async move {
            let code = optional_string(&options, "code")?.ok_or_else(|| error("run() needs `code`"))?;
            let Reply(result) = submit(&pool, target(&options)?, Job::Run { code }).await?;
            let JobResult::Run(output) = result else { return Err(error("unexpected reply to run()")) };
            let out = Object::new();
            set(&out, "text", output.text);
            set(&out, "errors", output.errors);
            set(&out, "exitCode", output.exit_code);
            set(&out, "worker", output.worker);
            Ok(out.into())
        })
    }

    /// `request({url, method?, headers?, body?, worker?})` → `{httpStatusCode, headers, bytes, text}`.
    /// `url` is a path within the site (`/a.php?x=1`) or a URL under `absoluteUrl`.
    #[wasm_bindgen(unchecked_return_type = "Promise<PHPResponse>")]
    pub fn request(&self, #[wasm_bindgen(unchecked_param_type = "RequestOptions")] options: JsValue) -> Promise {
        let pool = self.pool.clone();
        let base = self.absolute_url.clone();
        future_to_promise(async move {
            let url = optional_string(&options, "url")?.ok_or_else(|| error("request() needs `url`"))?;
            let path_and_query = match url.strip_prefix(&base) {
                Some(rest) => format!("/{rest}"),
                None if url.starts_with('/') => url,
                None => return Err(error(format!("url must be a path or start with {base}, got {url:?}"))),
            };
            let mut headers = Vec::new();
            let header_object = get(&options, "headers");
            if let Some(object) = header_object.dyn_ref::<Object>() {
                for key in Object::keys(object).iter() {
                    let name = key.as_string().unwrap_or_default();
                    headers.push((name.clone(), get(object, &name).as_string().unwrap_or_default()));
                }
            }
            if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
                // As a browser would send it, so PHP builds URLs on this site.
                let host = web_sys::Url::new(&base).map(|u| u.host()).unwrap_or_default();
                headers.push(("host".into(), host));
            }
            let body = get(&options, "body");
            let body = if let Some(text) = body.as_string() {
                text.into_bytes()
            } else if body.is_instance_of::<Uint8Array>() {
                Uint8Array::new(&body).to_vec()
            } else {
                Vec::new()
            };
            let request = HttpRequest {
                method: optional_string(&options, "method")?.unwrap_or_else(|| "GET".into()),
                path_and_query,
                scope_url: base,
                headers,
                body,
            };
            let Reply(result) = submit(&pool, target(&options)?, Job::Http(request)).await?;
            let JobResult::Http(response) = result else { return Err(error("unexpected reply to request()")) };
            let out = Object::new();
            set(&out, "httpStatusCode", response.status);
            let headers = Object::new();
            for (name, value) in &response.headers {
                let key = name.to_ascii_lowercase();
                let list = get(&headers, &key);
                let list: js_sys::Array = if list.is_undefined() { js_sys::Array::new() } else { list.unchecked_into() };
                list.push(&JsValue::from_str(value));
                set(&headers, &key, list);
            }
            set(&out, "headers", headers);
            set(&out, "text", String::from_utf8_lossy(&response.body).into_owned());
            set(&out, "bytes", Uint8Array::from(&response.body[..]));
            Ok(out.into())
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
            Ok(path) => self.submit(Target::Any, Job::WriteFile { path, data }),
            Err(e) => Promise::reject(&e),
        }
    }

    #[wasm_bindgen(js_name = readFileAsBuffer, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn read_file_as_buffer(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::ReadFile { path })
    }

    #[wasm_bindgen(js_name = readFileAsText, unchecked_return_type = "Promise<string>")]
    pub fn read_file_as_text(&self, path: String) -> Promise {
        let pool = self.pool.clone();
        future_to_promise(async move {
            let Reply(result) = submit(&pool, Target::Any, Job::ReadFile { path: path_arg(&path)? }).await?;
            let JobResult::File(bytes) = result else { return Err(error("unexpected reply to readFileAsText()")) };
            Ok(JsValue::from_str(&String::from_utf8_lossy(&bytes)))
        })
    }

    /// Creates a directory and any missing parents.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn mkdir(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::Mkdir { path })
    }

    /// Removes a file.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn unlink(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::Unlink { path })
    }

    /// Names in a directory (without `.` and `..`).
    #[wasm_bindgen(js_name = listFiles, unchecked_return_type = "Promise<string[]>")]
    pub fn list_files(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::ListFiles { path })
    }

    #[wasm_bindgen(js_name = fileExists, unchecked_return_type = "Promise<boolean>")]
    pub fn file_exists(&self, path: String) -> Promise {
        self.path_job(path, |path| Job::FileExists { path })
    }

    /// The whole document root as a zip (a Uint8Array); boot it again with
    /// `startPlayground({site: zip})`.
    #[wasm_bindgen(js_name = exportSite, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_site(&self) -> Promise {
        self.submit(Target::Any, Job::ExportSite)
    }

    /// `{capacity, used, highWater, max, inodes, memoryBytes}` of the shared filesystem.
    #[wasm_bindgen(unchecked_return_type = "Promise<FilesystemStats>")]
    pub fn stats(&self) -> Promise {
        self.submit(Target::Any, Job::Stats)
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

    #[wasm_bindgen(unchecked_return_type = "WorkerInfo[]")]
    pub fn workers(&self) -> js_sys::Array {
        self.pool.describe()
    }
}

//! One job on this worker: file jobs are done here; PHP jobs are planned
//! here, run by the JS glue on php-wasm, and turned into a reply here.

use crate::routing::{self, Route};
use crate::{archive, cookies, files};
use crate::{document_root, fs};
use js_sys::{Object, Reflect, Uint8Array};
use protocol::{FsStats, HttpRequest, HttpResponse, Job, JobEnvelope, JobResult, RunOutput, ToWorker, WorkerEvent};
use shared_fs::{Errno, FileSystem};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// What `start_job` hands back to the JS glue: the finished reply, the
/// options of a `php.run` the glue must await before calling `finish_job`,
/// or (file server) an event that hands the job back to the host. Every entry into this module is synchronous, so a worker is
/// never inside module code while PHP runs or while it awaits anything (the
/// host may terminate it then; see `safe_point_address`).
fn plan(id: Option<u64>, reply: Option<JobResult>, php: Option<(PhpRun, Object)>) -> JsValue {
    let out = Object::new();
    set(&out, "id", &id.map(|i| JsValue::from(i as f64)).unwrap_or(JsValue::NULL));
    if let Some(result) = reply {
        set(&out, "reply", &Uint8Array::from(&protocol::encode(&result)[..]));
    }
    if let Some((run, options)) = php {
        set(&out, "prelude", &JsValue::from_str(&cache_prelude()));
        set(&out, "php", &options);
        PLANNED.with(|p| *p.borrow_mut() = Some(run));
    }
    out.into()
}

/// What a planned PHP run's output becomes.
enum PhpRun {
    /// `client.run`: text, errors, exit code.
    Snippet,
    /// An HTTP request: a response, its cookies kept for `request_uri`.
    Http { request_uri: String },
}

thread_local! {
    /// The PHP run `start_job` planned and `finish_job` completes (a worker
    /// runs one job at a time).
    static PLANNED: std::cell::RefCell<Option<PhpRun>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// The shared filesystem's change epochs (shared-fs `epochs.rs`) when
    /// this worker's PHP caches were last known good.
    static CACHES_SEEN_AT: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

fn epochs(fs: &FileSystem) -> (u64, u64) {
    (fs.mtime_reuse_epoch(), fs.names_epoch())
}

/// A fresh PHP runtime: its caches are empty, so nothing before now is stale.
pub(crate) fn caches_fresh(fs: &FileSystem) {
    CACHES_SEEN_AT.with(|c| c.set(epochs(fs)));
}

/// PHP to run before a job so that it sees every change other workers made:
/// an OPcache reset when a change its timestamp check cannot see happened,
/// and a realpath-cache flush when a name stopped naming what it named.
/// Empty when neither happened since this worker's last job.
fn cache_prelude() -> String {
    let Ok(fs) = fs() else { return String::new() };
    let now = epochs(fs);
    let seen = CACHES_SEEN_AT.with(|c| c.replace(now));
    let mut code = String::new();
    if now.0 != seen.0 {
        code.push_str("opcache_reset();");
    }
    if now.1 != seen.1 {
        code.push_str("clearstatcache(true);");
    }
    if code.is_empty() {
        code
    } else {
        format!("<?php {code}")
    }
}

#[wasm_bindgen]
pub fn start_job(envelope: &[u8]) -> JsValue {
    let JobEnvelope { id, job } = match protocol::decode::<ToWorker>(envelope) {
        Ok(ToWorker::Job(envelope)) => envelope,
        Ok(ToWorker::Boot(_)) => {
            let message = "the worker is already booted".to_string();
            return plan(None, Some(JobResult::Failed { message, errno: None }), None);
        }
        Err(message) => return plan(None, Some(JobResult::Failed { message, errno: None }), None),
    };
    let outcome = match job {
        Job::Run { code } => Ok(Step::Php(PhpRun::Snippet, run_options(&code))),
        Job::Http(request) => http_step(&request),
        Job::WriteFile { path, data } => write_file(&path, &data).map(|_| Step::Reply(JobResult::Done)),
        Job::ReadFile { path } => read_file(&path).map(|bytes| Step::Reply(JobResult::File(bytes))),
        Job::Mkdir { path } => mkdir(&path).map(|_| Step::Reply(JobResult::Done)),
        Job::Unlink { path } => unlink(&path).map(|_| Step::Reply(JobResult::Done)),
        Job::ListFiles { path } => list_files(&path).map(|names| Step::Reply(JobResult::Names(names))),
        Job::FileExists { path } => file_exists(&path).map(|found| Step::Reply(JobResult::Bool(found))),
        Job::Stats => stats().map(|s| Step::Reply(JobResult::Stats(s))),
        Job::ExportSite => export_site().map(|zip| Step::Reply(JobResult::File(zip))),
    };
    match outcome.unwrap_or_else(Step::Reply) {
        Step::Reply(result) => plan(Some(id), Some(result), None),
        Step::Php(run, options) if crate::serves_php() => plan(Some(id), None, Some((run, options))),
        Step::Php(..) => {
            // The file server has no PHP: the job goes back to the host (the
            // glue sends this event with the reply port).
            let out = Object::new();
            set(&out, "handBack", &Uint8Array::from(&protocol::encode(&WorkerEvent::NeedsPhp { id })[..]));
            out.into()
        }
    }
}

/// Turns php-wasm's response (or the error `php.run` rejected with) into the
/// encoded `JobResult` of the PHP run `start_job` planned.
#[wasm_bindgen]
pub fn finish_job(response: JsValue) -> Vec<u8> {
    // php-wasm rejects a run that ended in a fatal error but still carries
    // the response; use it so callers see PHP's output and errors.
    let carried = get(&response, "response");
    let response = if carried.is_object() { carried } else { response };
    let result = match PLANNED.with(|p| p.borrow_mut().take()) {
        None => JobResult::Failed { message: "no PHP run was planned".into(), errno: None },
        Some(_) if get(&response, "exitCode").is_undefined() => js_failure(response),
        Some(PhpRun::Snippet) => run_output(&response),
        Some(PhpRun::Http { request_uri }) => JobResult::Http(keep_cookies(http_response(&response), &request_uri)),
    };
    protocol::encode(&result)
}

#[wasm_bindgen]
pub fn job_done_event(id: f64) -> Vec<u8> {
    protocol::encode(&WorkerEvent::JobDone { id: id as u64 })
}

enum Step {
    Reply(JobResult),
    /// Run PHP with these options.
    Php(PhpRun, Object),
}

/// Moves the response's cookies into the site's jar (a service worker's
/// response could not set them in the browser).
fn keep_cookies(mut response: HttpResponse, request_uri: &str) -> HttpResponse {
    let now = js_sys::Date::now();
    let mut jar = cookies::JAR.lock().unwrap_or_else(|e| e.into_inner());
    response.headers.retain(|(name, value)| {
        let is_cookie = name.eq_ignore_ascii_case("set-cookie");
        if is_cookie {
            jar.set(value, request_uri, now);
        }
        !is_cookie
    });
    response
}

fn fs_failure(what: &str, path: &str, e: Errno) -> JobResult {
    JobResult::Failed { message: format!("{what} {path}: {}", e.name()), errno: Some(e.name().to_string()) }
}

fn js_failure(e: JsValue) -> JobResult {
    let message = e
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    JobResult::Failed { message, errno: None }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object we just made cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn run_options(code: &str) -> Object {
    let options = Object::new();
    set(&options, "code", &JsValue::from_str(code));
    let server = Object::new();
    set(&server, "DOCUMENT_ROOT", &JsValue::from_str(document_root()));
    set(&options, "$_SERVER", &server);
    options
}

fn run_output(response: &JsValue) -> JobResult {
    JobResult::Run(RunOutput {
        worker: crate::worker_index(),
        text: get(response, "text").as_string().unwrap_or_default(),
        errors: get(response, "errors").as_string().unwrap_or_default(),
        exit_code: get(response, "exitCode").as_f64().unwrap_or(-1.0) as i32,
    })
}

fn http_step(request: &HttpRequest) -> Result<Step, JobResult> {
    let fs = fs().map_err(js_failure)?;
    let (path, query) = routing::split_url_path(&request.path_and_query);
    Ok(match routing::route(fs, document_root(), &path) {
        Route::Php { script_path, script_name } => {
            let (options, request_uri) = script_options(request, &script_path, &script_name, query);
            Step::Php(PhpRun::Http { request_uri }, options)
        }
        Route::Static { path, content_type } => Step::Reply(JobResult::Http(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: read_file(&path)?,
        })),
        Route::StaticMiss => Step::Reply(JobResult::Http(HttpResponse {
            status: 404,
            headers: vec![
                ("content-type".into(), "text/plain; charset=utf-8".into()),
                (protocol::STATIC_MISS_HEADER.into(), "1".into()),
            ],
            body: format!("Not found: {path}").into_bytes(),
        })),
        Route::NotFound => Step::Reply(JobResult::Http(HttpResponse {
            status: 404,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: format!("Not found: {path}").into_bytes(),
        })),
    })
}

fn script_options(request: &HttpRequest, script_path: &str, script_name: &str, query: &str) -> (Object, String) {
    let prefix = protocol::scope::path_prefix(&request.scope_url);
    let request_uri = format!("{prefix}{}", request.path_and_query);
    let headers = Object::new();
    for (name, value) in &request.headers {
        let key = name.to_ascii_lowercase();
        let joined = match get(&headers, &key).as_string() {
            Some(previous) => format!("{previous}{}{value}", if key == "cookie" { "; " } else { ", " }),
            None => value.clone(),
        };
        set(&headers, &key, &JsValue::from_str(&joined));
    }
    let browser_cookies = get(&headers, "cookie").as_string();
    let mut jar = cookies::JAR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cookie) = jar.header(&request_uri, browser_cookies.as_deref(), js_sys::Date::now()) {
        set(&headers, "cookie", &JsValue::from_str(&cookie));
    }
    drop(jar);
    let server = Object::new();
    for (key, value) in [
        ("DOCUMENT_ROOT", document_root().to_string()),
        ("SCRIPT_FILENAME", script_path.to_string()),
        ("SCRIPT_NAME", format!("{prefix}{script_name}")),
        ("PHP_SELF", format!("{prefix}{script_name}")),
        ("REQUEST_URI", request_uri.clone()),
        ("QUERY_STRING", query.to_string()),
        ("HTTPS", if request.scope_url.starts_with("https:") { "on".into() } else { String::new() }),
    ] {
        set(&server, key, &JsValue::from_str(&value));
    }
    let options = Object::new();
    set(&options, "scriptPath", &JsValue::from_str(script_path));
    set(&options, "relativeUri", &JsValue::from_str(&request_uri));
    set(&options, "method", &JsValue::from_str(&request.method));
    set(&options, "headers", &headers);
    set(&options, "$_SERVER", &server);
    if !request.body.is_empty() {
        set(&options, "body", &Uint8Array::from(&request.body[..]));
    }
    (options, request_uri)
}

fn http_response(response: &JsValue) -> HttpResponse {
    let status = get(response, "httpStatusCode").as_f64().unwrap_or(500.0) as u16;
    let mut headers = Vec::new();
    let header_map = get(response, "headers");
    if let Some(map) = header_map.dyn_ref::<Object>() {
        for key in Object::keys(map).iter() {
            let name = key.as_string().unwrap_or_default();
            for value in js_sys::Array::from(&get(map, &name)).iter() {
                headers.push((name.clone(), value.as_string().unwrap_or_default()));
            }
        }
    }
    let body = get(response, "bytes").dyn_into::<Uint8Array>().map(|b| b.to_vec()).unwrap_or_default();
    HttpResponse { status, headers, body }
}

pub(crate) fn write_file(path: &str, data: &[u8]) -> Result<(), JobResult> {
    let fs = fs().map_err(js_failure)?;
    files::write_file(fs, path, data, None).map_err(|e| fs_failure("cannot write", path, e))
}

pub(crate) fn read_file(path: &str) -> Result<Vec<u8>, JobResult> {
    let fs = fs().map_err(js_failure)?;
    files::read_file(fs, path).map_err(|e| fs_failure("cannot read", path, e))
}

fn export_site() -> Result<Vec<u8>, JobResult> {
    let fs = fs().map_err(js_failure)?;
    archive::pack(fs, document_root()).map_err(|e| JobResult::Failed { message: e.to_string(), errno: None })
}

fn mkdir(path: &str) -> Result<(), JobResult> {
    let fs = fs().map_err(js_failure)?;
    crate::mkdir_all(fs, path).map_err(|e| fs_failure("cannot create directory", path, e))
}

fn unlink(path: &str) -> Result<(), JobResult> {
    let fs = fs().map_err(js_failure)?;
    let (dir, name) =
        fs.resolve_parent(FileSystem::ROOT, path.as_bytes()).map_err(|e| fs_failure("cannot unlink", path, e))?;
    fs.unlink(dir, &name).map_err(|e| fs_failure("cannot unlink", path, e))
}

fn list_files(path: &str) -> Result<Vec<String>, JobResult> {
    let fs = fs().map_err(js_failure)?;
    let dir = fs.resolve(FileSystem::ROOT, path.as_bytes(), true).map_err(|e| fs_failure("cannot list", path, e))?;
    let mut names = Vec::new();
    fs.readdir(dir.ino, 0, &mut |entry| {
        if entry.name != b"." && entry.name != b".." {
            names.push(String::from_utf8_lossy(&entry.name).into_owned());
        }
        true
    })
    .map_err(|e| fs_failure("cannot list", path, e))?;
    Ok(names)
}

fn file_exists(path: &str) -> Result<bool, JobResult> {
    let fs = fs().map_err(js_failure)?;
    match fs.resolve(FileSystem::ROOT, path.as_bytes(), true) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(false),
        Err(e) => Err(fs_failure("cannot check", path, e)),
    }
}

fn stats() -> Result<FsStats, JobResult> {
    let s = fs().map_err(js_failure)?.stats();
    Ok(FsStats {
        capacity: s.capacity,
        used: s.used,
        high_water: s.high_water,
        max: s.max,
        inodes: s.inodes,
        memory_bytes: crate::memory_bytes(),
    })
}

//! One job on this worker: file jobs are done here; PHP jobs are planned
//! here, run by the JS glue on php-wasm, and turned into a reply here.

use crate::routing::{self, Route};
use crate::{archive, cookies, files};
use crate::{document_root, fs};
use js_sys::{Object, Reflect, Uint8Array};
use protocol::{
    FsStats, HttpRequest, HttpResponse, Job, JobEnvelope, JobResult, RunOutput, RunRequest, RunSource, ToWorker, WorkerEvent,
};
use shared_fs::{Errno, FileSystem};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// What `start_job` tells the JS glue to do with a job. Every entry into
/// this module is synchronous, so a worker is never inside module code
/// while PHP runs or while it awaits anything (the host may terminate it
/// then; see `safe_point_address`): the glue carries the plan out between
/// calls.
enum JobPlan {
    /// Swap the PHP runtime for a fresh one (`ToWorker::Recycle`).
    Recycle,
    /// Send `reply` on the job's port (`id`: `None` for a message that was
    /// no job).
    Reply { id: Option<u64>, reply: JobResult },
    /// Await `php.run(options)`, after a run of `prelude` if it is not
    /// empty, then call `finish_job` with its response (what becomes of it
    /// is in `PLANNED`).
    RunPhp { id: u64, options: Object, prelude: String },
    /// The file server has no PHP: this event goes back to the host, with
    /// the job's port.
    HandBack(WorkerEvent),
}

impl JobPlan {
    /// The plan as the glue reads it (worker-entry.js `runJob`):
    /// `{recycle}`, `{id, reply}`, `{id, php, prelude}` or `{handBack}`.
    fn into_js(self) -> JsValue {
        let out = Object::new();
        let id = |id: Option<u64>| id.map(|i| JsValue::from(i as f64)).unwrap_or(JsValue::NULL);
        match self {
            JobPlan::Recycle => set(&out, "recycle", &JsValue::TRUE),
            JobPlan::Reply { id: job, reply } => {
                set(&out, "id", &id(job));
                set(&out, "reply", &Uint8Array::from(&protocol::encode(&reply)[..]));
            }
            JobPlan::RunPhp { id: job, options, prelude } => {
                set(&out, "id", &id(Some(job)));
                set(&out, "prelude", &JsValue::from_str(&prelude));
                set(&out, "php", &options);
            }
            JobPlan::HandBack(event) => set(&out, "handBack", &Uint8Array::from(&protocol::encode(&event)[..])),
        }
        out.into()
    }
}

/// What a planned PHP run's output becomes.
enum PhpRun {
    /// `client.run`: text, errors, exit code.
    Snippet,
    /// An HTTP request: a response, its cookies kept for `request_uri`;
    /// `trace`: the request's `protocol::trace` with this worker's start.
    Http { request_uri: String, trace: Option<String> },
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

/// Whether this worker's PHP has seen every change a timestamp cannot show
/// (what it compiles now is of the current bytes).
pub(crate) fn caches_current(fs: &FileSystem) -> bool {
    CACHES_SEEN_AT.with(|c| c.get().0) == fs.mtime_reuse_epoch()
}

/// The mtime-reuse epoch the shared compiled cache was last cleared for (a
/// static: one value for every worker, so a worker that boots after a
/// change nobody has cleared for yet still clears).
static COMPILED_CACHE_CLEARED_AT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A filesystem just formatted (installed or reopened) holds no compiled
/// script older than its files: nothing to clear for changes made so far.
pub(crate) fn compiled_cache_current(fs: &FileSystem) {
    COMPILED_CACHE_CLEARED_AT.store(fs.mtime_reuse_epoch(), std::sync::atomic::Ordering::Release);
}

/// Clears the shared compiled cache if a change a timestamp cannot show
/// happened since it was last cleared.
fn clear_compiled_cache_if_stale(fs: &FileSystem) {
    use std::sync::atomic::Ordering;
    let now = fs.mtime_reuse_epoch();
    if COMPILED_CACHE_CLEARED_AT.load(Ordering::Acquire) != now {
        crate::compiled_cache::clear(fs);
        COMPILED_CACHE_CLEARED_AT.store(now, Ordering::Release);
    }
}

/// PHP to run before a job so that it sees every change other workers made:
/// an OPcache reset when a change its timestamp check cannot see happened,
/// and a realpath-cache flush when a name stopped naming what it named;
/// the constants `client.defineConstant` stored; and the job's working
/// directory. Empty when none changed since this worker's last job (each
/// costs a PHP run).
fn prelude(cwd: &str) -> String {
    let Ok(fs) = fs() else { return String::new() };
    clear_compiled_cache_if_stale(fs);
    let now = epochs(fs);
    let seen = CACHES_SEEN_AT.with(|c| c.replace(now));
    let mut code = String::new();
    if now.0 != seen.0 {
        code.push_str("opcache_reset();");
    }
    if now.1 != seen.1 {
        code.push_str("clearstatcache(true);");
    }
    let constants = files::read_file(fs, CONSTANTS_PATH).unwrap_or_default();
    if CONSTANTS_SEEN.with(|c| *c.borrow() != constants) {
        code.push_str(&merge_constants_code(&constants));
        CONSTANTS_SEEN.with(|c| *c.borrow_mut() = constants);
    }
    if CWD.with(|c| c.borrow().as_str() != cwd) {
        // php.wasm's chdir() is its filesystem's, so it outlives the run.
        code.push_str(&format!("chdir({});", php_string(cwd)));
        CWD.with(|c| *c.borrow_mut() = cwd.to_string());
    }
    if code.is_empty() {
        code
    } else {
        format!("<?php {code}")
    }
}

// Constants for every worker (`client.defineConstant`) are a JSON object on
// the shared filesystem. Each worker merges it into php-wasm's own file of
// the same path in its memory, which php-wasm's auto-prepend script
// defines before every run (beside the worker's own WP_HOME/WP_SITEURL).
use protocol::CONSTANTS_PATH;

thread_local! {
    /// The shared constants file as this worker last merged it.
    static CONSTANTS_SEEN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// This worker's PHP working directory ("" until a job sets it).
    static CWD: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn merge_constants_code(shared_json: &[u8]) -> String {
    let json = String::from_utf8_lossy(shared_json);
    format!(
        "$f = {path}; $own = json_decode(@file_get_contents($f) ?: '{{}}', true) ?: []; \
         file_put_contents($f, json_encode(array_merge($own, json_decode({json}, true) ?: [])));",
        path = php_string(CONSTANTS_PATH),
        json = php_string(&json),
    )
}

/// A PHP single-quoted string literal of `text`.
fn php_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Whether PHP's `path` is on a directory every worker mounts from the
/// shared filesystem (the compiled cache holds only such scripts).
pub(crate) fn on_shared_mount(path: &str) -> bool {
    shared_script_roots().iter().any(|root| path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/')))
}

/// Where PHP's own files on the shared filesystem live (see `shared_paths`).
pub(crate) fn shared_script_roots() -> [&'static str; 2] {
    [document_root(), "/tmp"]
}

/// The directories every PHP worker mounts from the shared filesystem:
/// the document root; `/tmp`, so that a file one worker (or the client)
/// puts in `/tmp` is there for the next job on any worker, as Blueprint
/// steps expect; and this php.wasm build's compiled scripts
/// (`compiled_cache`). Creates them if missing.
#[wasm_bindgen]
pub fn shared_paths() -> Result<Vec<String>, JsValue> {
    let fs = fs()?;
    let mut paths: Vec<String> = shared_script_roots().iter().map(|p| p.to_string()).collect();
    paths.extend(crate::php_ini::compiled_cache_dir());
    for path in &paths {
        crate::mkdir_all(fs, path).map_err(crate::errno)?;
    }
    Ok(paths)
}

#[wasm_bindgen]
pub fn start_job(envelope: &[u8]) -> JsValue {
    let JobEnvelope { id, job } = match protocol::decode::<ToWorker>(envelope) {
        Ok(ToWorker::Job(envelope)) => envelope,
        Ok(ToWorker::Recycle) => return JobPlan::Recycle.into_js(),
        Ok(ToWorker::Boot(_)) => {
            let message = "the worker is already booted".to_string();
            return JobPlan::Reply { id: None, reply: JobResult::Failed { message, errno: None } }.into_js();
        }
        Err(message) => return JobPlan::Reply { id: None, reply: JobResult::Failed { message, errno: None } }.into_js(),
    };
    if !crate::serves_php() {
        crate::fault::helper_fault_point(crate::fault::HelperFault::FileServer);
    }
    let outcome = match job {
        Job::Run(run) => Ok(Step::Php(PhpRun::Snippet, run_options(&run), run.cwd.clone())),
        Job::Http(request) => http_step(&request),
        Job::WriteFile { path, data } => write_file(&path, &data).map(|_| Step::Reply(JobResult::Done)),
        Job::ReadFile { path } => read_file(&path).map(|bytes| Step::Reply(JobResult::File(bytes))),
        Job::Mkdir { path } => mkdir(&path).map(|_| Step::Reply(JobResult::Done)),
        Job::Unlink { path } => unlink(&path).map(|_| Step::Reply(JobResult::Done)),
        Job::ListFiles { path } => list_files(&path).map(|names| Step::Reply(JobResult::Names(names))),
        Job::FileExists { path } => file_exists(&path).map(|found| Step::Reply(JobResult::Bool(found))),
        Job::Stats => stats().map(|s| Step::Reply(JobResult::Stats(s))),
        Job::ExportSite => export_site().map(|zip| Step::Reply(JobResult::File(zip))),
        Job::Rename { from, to } => with_fs(|fs| rename(fs, &from, &to)).map(|_| Step::Reply(JobResult::Done)),
        Job::Rmdir { path, recursive } => with_fs(|fs| rmdir(fs, &path, recursive)).map(|_| Step::Reply(JobResult::Done)),
        Job::IsDir { path } => with_fs(|fs| is_dir(fs, &path)).map(|b| Step::Reply(JobResult::Bool(b))),
        Job::Copy { from, to } => with_fs(|fs| copy(fs, &from, &to)).map(|_| Step::Reply(JobResult::Done)),
        Job::ExportImage => with_fs(export_image).map(|zip| Step::Reply(JobResult::File(zip))),
        Job::UpgradeSqliteIntegration { zip } => with_fs(|fs| upgrade_sqlite_integration(fs, &zip)).map(Step::Reply),
    };
    let plan = match outcome.unwrap_or_else(Step::Reply) {
        Step::Reply(reply) => JobPlan::Reply { id: Some(id), reply },
        Step::Php(run, options, cwd) if crate::serves_php() => {
            PLANNED.with(|p| *p.borrow_mut() = Some(run));
            JobPlan::RunPhp { id, options, prelude: prelude(&cwd) }
        }
        Step::Php(..) => JobPlan::HandBack(WorkerEvent::NeedsPhp { id }),
    };
    plan.into_js()
}

/// Whether `php.run` rejected because php.wasm itself died (a trap, or
/// Emscripten's `abort`), as opposed to PHP reporting an error: the runtime
/// cannot run another job, and the worker must be replaced.
#[wasm_bindgen]
pub fn is_runtime_death(error: &JsValue) -> bool {
    error.is_instance_of::<js_sys::WebAssembly::RuntimeError>() || is_abort_message(&crate::message_of(error))
}

/// Emscripten's `abort(what)` throws `Aborted(what)`.
fn is_abort_message(message: &str) -> bool {
    message.starts_with("Aborted(")
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
        Some(PhpRun::Http { request_uri, trace }) => {
            let mut http = keep_cookies(http_response(&response), &request_uri);
            if let Some(trace) = trace {
                http.headers.push((protocol::trace::HEADER.into(), protocol::trace::append(&trace, "php", protocol::web::now_ms())));
            }
            JobResult::Http(http)
        }
    };
    protocol::encode(&result)
}

#[wasm_bindgen]
pub fn job_done_event(id: f64, php_heap_bytes: f64) -> Vec<u8> {
    protocol::encode(&WorkerEvent::JobDone { id: id as u64, php_heap_bytes: php_heap_bytes as u64 })
}

/// `post_message_to_js(data)` for the page's `onMessage` listeners.
#[wasm_bindgen]
pub fn php_message_event(data: String) -> Vec<u8> {
    protocol::encode(&WorkerEvent::PhpMessage { data })
}

/// The listeners' answer, for PHP; a malformed one is an error PHP sees as
/// a warning and a null.
#[wasm_bindgen]
pub fn php_message_answer(bytes: &[u8]) -> Result<String, JsValue> {
    protocol::decode::<protocol::PhpMessageAnswer>(bytes).map(|a| a.0).map_err(|e| JsValue::from_str(&e))
}

enum Step {
    Reply(JobResult),
    /// Run PHP with these options, in this working directory.
    Php(PhpRun, Object, String),
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
    JobResult::Failed { message: crate::message_of(&e), errno: None }
}

use crate::set;

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn run_options(run: &RunRequest) -> Object {
    let options = Object::new();
    match &run.source {
        RunSource::Code(code) => set(&options, "code", &JsValue::from_str(code)),
        RunSource::Script(path) => set(&options, "scriptPath", &JsValue::from_str(path)),
    }
    let env = Object::new();
    for (name, value) in &run.env {
        set(&env, name, &JsValue::from_str(value));
    }
    set(&options, "env", &env);
    if !run.body.is_empty() {
        set(&options, "body", &Uint8Array::from(&run.body[..]));
    }
    let server = Object::new();
    set(&server, "DOCUMENT_ROOT", &JsValue::from_str(document_root()));
    set(&options, "$_SERVER", &server);
    options
}

fn run_output(response: &JsValue) -> JobResult {
    let http = http_response(response);
    JobResult::Run(RunOutput {
        worker: crate::worker_index(),
        bytes: http.body,
        errors: get(response, "errors").as_string().unwrap_or_default(),
        exit_code: get(response, "exitCode").as_f64().unwrap_or(-1.0) as i32,
        status: http.status,
        headers: http.headers,
    })
}

fn http_step(request: &HttpRequest) -> Result<Step, JobResult> {
    let fs = fs().map_err(js_failure)?;
    let (path, query) = routing::split_url_path(&request.path_and_query);
    Ok(match routing::route(fs, document_root(), &path) {
        Route::Php { script_path, script_name } => {
            let (options, request_uri) = script_options(request, &script_path, &script_name, query);
            let trace = protocol::trace::find(&request.headers).map(|t| protocol::trace::append(t, "worker", protocol::web::now_ms()));
            // PHP's built-in server runs a request in the document root.
            Step::Php(PhpRun::Http { request_uri, trace }, options, document_root().to_string())
        }
        Route::Static { path, content_type } => Step::Reply(JobResult::Http(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: read_file(&path)?,
        })),
        Route::StaticMiss => {
            let mut response = HttpResponse::plain_text(404, format!("Not found: {path}"));
            response.headers.push((protocol::STATIC_MISS_HEADER.into(), "1".into()));
            Step::Reply(JobResult::Http(response))
        }
        Route::NotFound => Step::Reply(JobResult::Http(HttpResponse::plain_text(404, format!("Not found: {path}")))),
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

fn upgrade_sqlite_integration(fs: &FileSystem, zip: &Vec<u8>) -> Result<JobResult, JobResult> {
    match crate::site::upgrade_sqlite_integration(fs, zip, document_root()) {
        Ok(Some((from, to))) => {
            // New files under old names: no compiled script may outlive them.
            crate::compiled_cache::clear(fs);
            Ok(JobResult::Upgraded { from, to })
        }
        Ok(None) => Ok(JobResult::Done),
        Err(message) => Err(JobResult::Failed { message: format!("cannot upgrade the SQLite integration: {message}"), errno: None }),
    }
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

/// The site as a new site's image (`SiteKind::Image`): its files and the
/// scripts compiled for them, so a site made from it starts warm.
fn export_image(fs: &FileSystem) -> Result<Vec<u8>, JobResult> {
    archive::pack_roots(fs, &[document_root(), crate::compiled_cache::ROOT])
        .map_err(|e| JobResult::Failed { message: e.to_string(), errno: None })
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
    let (heap_bytes, heap_peak) = crate::fault::heap_usage();
    Ok(FsStats {
        heap_bytes,
        heap_peak,
        capacity: s.capacity,
        used: s.used,
        high_water: s.high_water,
        max: s.max,
        inodes: s.inodes,
        memory_bytes: crate::memory_bytes(),
        lock_waits: s.contention,
    })
}

fn with_fs<T>(job: impl FnOnce(&FileSystem) -> Result<T, JobResult>) -> Result<T, JobResult> {
    job(fs().map_err(js_failure)?)
}

fn rename(fs: &FileSystem, from: &str, to: &str) -> Result<(), JobResult> {
    files::rename_path(fs, from, to).map_err(|e| fs_failure(&format!("cannot move {from} to"), to, e))
}

/// `rmdir`, or with `recursive` `rm -r` (which also removes a file or a
/// symlink, never what a symlink points to).
fn rmdir(fs: &FileSystem, path: &str, recursive: bool) -> Result<(), JobResult> {
    let fail = |e| fs_failure("cannot remove", path, e);
    if recursive {
        return files::remove_all(fs, path).map_err(fail);
    }
    let (dir, name) = fs.resolve_parent(FileSystem::ROOT, path.as_bytes()).map_err(fail)?;
    fs.rmdir(dir, &name).map_err(fail)
}

/// `rm -r` with a worklist, not recursion: a tree may be deeper than a
/// worker's stack would allow.
pub(crate) fn remove_tree(fs: &FileSystem, parent: shared_fs::Ino, name: &[u8]) -> Result<(), Errno> {
    let attr = fs.lookup(parent, name)?;
    if attr.kind != shared_fs::FileKind::Dir {
        return fs.unlink(parent, name);
    }
    // (parent, name, the directory, its children not yet removed)
    let mut open = vec![(parent, name.to_vec(), attr.ino, child_names(fs, attr.ino)?)];
    while let Some((_, _, dir, children)) = open.last_mut() {
        let dir = *dir;
        match children.pop() {
            Some(child) => {
                let attr = fs.lookup(dir, &child)?;
                if attr.kind == shared_fs::FileKind::Dir {
                    let grandchildren = child_names(fs, attr.ino)?;
                    open.push((dir, child, attr.ino, grandchildren));
                } else {
                    fs.unlink(dir, &child)?;
                }
            }
            None => {
                if let Some((parent, name, _, _)) = open.pop() {
                    fs.rmdir(parent, &name)?;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn child_names(fs: &FileSystem, dir: shared_fs::Ino) -> Result<Vec<Vec<u8>>, Errno> {
    let mut names = Vec::new();
    fs.readdir(dir, 0, &mut |entry| {
        if entry.name != b"." && entry.name != b".." {
            names.push(entry.name.to_vec());
        }
        true
    })?;
    Ok(names)
}

fn is_dir(fs: &FileSystem, path: &str) -> Result<bool, JobResult> {
    match fs.resolve(FileSystem::ROOT, path.as_bytes(), true) {
        Ok(attr) => Ok(attr.kind == shared_fs::FileKind::Dir),
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(false),
        Err(e) => Err(fs_failure("cannot check", path, e)),
    }
}

/// `cp -r`: a file's bytes, or a directory and everything in it (with a
/// worklist, not recursion, like `remove_tree`).
fn copy(fs: &FileSystem, from: &str, to: &str) -> Result<(), JobResult> {
    if to == from || to.starts_with(&format!("{}/", from.trim_end_matches('/'))) {
        return Err(fs_failure(&format!("cannot copy {from} to"), to, Errno::EINVAL)); // into itself
    }
    let mut pending = vec![(from.to_string(), to.to_string())];
    while let Some((from, to)) = pending.pop() {
        let fail = |e| fs_failure(&format!("cannot copy {from} to"), &to, e);
        let attr = fs.resolve(FileSystem::ROOT, from.as_bytes(), true).map_err(fail)?;
        if attr.kind != shared_fs::FileKind::Dir {
            let data = files::read_file(fs, &from).map_err(fail)?;
            files::write_file(fs, &to, &data, Some(attr.mode & 0o7777)).map_err(fail)?;
            continue;
        }
        crate::mkdir_all(fs, &to).map_err(fail)?;
        for child in child_names(fs, attr.ino).map_err(fail)? {
            let child = String::from_utf8_lossy(&child);
            pending.push((format!("{from}/{child}"), format!("{to}/{child}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_fs::{Config, Timespec};

    #[test]
    fn an_abort_is_told_from_a_php_error() {
        assert!(is_abort_message("Aborted(Assertion failed: heap corrupted)"));
        assert!(!is_abort_message("PHP.run() failed with exit code 255."));
        assert!(!is_abort_message("Fatal error: Aborted( in a PHP message"));
    }

    fn new_fs() -> FileSystem {
        FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 16 << 20, clock: || Timespec { sec: 1_700_000_000, nsec: 0 } })
            .unwrap()
    }

    fn errno_of(result: Result<impl std::fmt::Debug, JobResult>) -> Option<String> {
        match result {
            Err(JobResult::Failed { errno, .. }) => errno,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn rmdir_refuses_a_non_empty_directory_unless_recursive() {
        let fs = new_fs();
        crate::mkdir_all(&fs, "/a/b/c").unwrap();
        files::write_file(&fs, "/a/b/c/f.txt", b"x", None).unwrap();
        fs.symlink(FileSystem::ROOT, b"link", b"/a", 0, 0).unwrap();
        assert_eq!(errno_of(rmdir(&fs, "/a", false)).as_deref(), Some("ENOTEMPTY"));
        // Through a symlink only the link goes.
        rmdir(&fs, "/link", true).unwrap();
        assert!(is_dir(&fs, "/a/b/c").unwrap());
        rmdir(&fs, "/a", true).unwrap();
        assert!(!is_dir(&fs, "/a").unwrap());
        assert_eq!(errno_of(rmdir(&fs, "/a", true)).as_deref(), Some("ENOENT"));
    }

    #[test]
    fn a_tree_deeper_than_a_stack_is_removed_and_copied() {
        // On a 256 KiB stack: recursion a frame per level would overflow it.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let fs = new_fs();
                let (mut dir, mut path) = (FileSystem::ROOT, String::new());
                for _ in 0..1500 {
                    dir = fs.mkdir(dir, b"d", 0o755, 0, 0).unwrap().ino;
                    path.push_str("/d");
                }
                files::write_file(&fs, &format!("{path}/leaf.txt"), b"deep", None).unwrap();
                copy(&fs, "/d", "/e").unwrap();
                let copied = path.replacen("/d", "/e", 1);
                assert_eq!(files::read_file(&fs, &format!("{copied}/leaf.txt")).unwrap(), b"deep");
                rmdir(&fs, "/d", true).unwrap();
                rmdir(&fs, "/e", true).unwrap();
                assert!(fs.lookup(FileSystem::ROOT, b"d").is_err() && fs.lookup(FileSystem::ROOT, b"e").is_err());
                fs.check().unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn copy_is_recursive_and_refuses_to_copy_into_itself() {
        let fs = new_fs();
        crate::mkdir_all(&fs, "/src/sub").unwrap();
        files::write_file(&fs, "/src/sub/f.txt", b"hello", Some(0o600)).unwrap();
        copy(&fs, "/src", "/dst").unwrap();
        assert_eq!(files::read_file(&fs, "/dst/sub/f.txt").unwrap(), b"hello");
        let attr = fs.resolve(FileSystem::ROOT, b"/dst/sub/f.txt", true).unwrap();
        assert_eq!(attr.mode & 0o777, 0o600);
        assert_eq!(errno_of(copy(&fs, "/src", "/src/sub/again")).as_deref(), Some("EINVAL"));
        copy(&fs, "/src/sub/f.txt", "/one.txt").unwrap();
        assert_eq!(files::read_file(&fs, "/one.txt").unwrap(), b"hello");
    }

    #[test]
    fn rename_moves_and_is_dir_tells_files_from_directories() {
        let fs = new_fs();
        crate::mkdir_all(&fs, "/a/dir").unwrap();
        files::write_file(&fs, "/a/f", b"1", None).unwrap();
        rename(&fs, "/a/dir", "/moved").unwrap();
        assert!(is_dir(&fs, "/moved").unwrap());
        assert!(!is_dir(&fs, "/a/dir").unwrap());
        assert!(!is_dir(&fs, "/a/f").unwrap(), "a file is not a directory");
        assert!(!is_dir(&fs, "/a/f/under").unwrap());
        assert_eq!(errno_of(rename(&fs, "/nothing", "/x")).as_deref(), Some("ENOENT"));
    }

    #[test]
    fn php_strings_and_constants_code_escape_quotes_and_backslashes() {
        assert_eq!(php_string(r"it's a\b"), r"'it\'s a\\b'");
        let code = merge_constants_code(br#"{"A":"x'y"}"#);
        assert!(code.contains(r#"json_decode('{"A":"x\'y"}', true)"#), "{code}");
        assert!(code.contains("'/internal/shared/consts.json'"), "{code}");
    }
}

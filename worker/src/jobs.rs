//! Runs one job on this worker's PHP runtime and answers on the job's port.

use crate::routing::{self, Route};
use crate::{document_root, fs};
use js_sys::{Object, Reflect, Uint8Array};
use protocol::{HttpRequest, HttpResponse, Job, JobEnvelope, JobResult, RunOutput, WorkerEvent};
use shared_fs::{Errno, FileSystem};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DedicatedWorkerGlobalScope, MessagePort};

#[wasm_bindgen]
extern "C" {
    /// php-wasm's `PHP` instance owned by this worker.
    pub type Php;
    #[wasm_bindgen(method)]
    fn run(this: &Php, options: &JsValue) -> js_sys::Promise;
}

/// Decodes a `JobEnvelope`, runs it, posts the `JobResult` on `reply` and then
/// tells the host (on the worker's own channel) that this worker is free.
#[wasm_bindgen]
pub async fn handle_job(envelope: Vec<u8>, php: Php, reply: MessagePort) -> Result<(), JsValue> {
    let (id, result) = match protocol::decode::<JobEnvelope>(&envelope) {
        Ok(JobEnvelope { id, job }) => (Some(id), run_job(job, &php).await),
        Err(message) => (None, JobResult::Failed { message, errno: None }),
    };
    post_bytes(&reply, &protocol::encode(&result))?;
    if let Some(id) = id {
        let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        scope.post_message(&Uint8Array::from(&protocol::encode(&WorkerEvent::JobDone { id })[..]))?;
    }
    Ok(())
}

fn post_bytes(port: &MessagePort, bytes: &[u8]) -> Result<(), JsValue> {
    port.post_message(&Uint8Array::from(bytes))
}

async fn run_job(job: Job, php: &Php) -> JobResult {
    let outcome = match job {
        Job::Run { code } => run_code(php, &code).await,
        Job::Http(request) => serve_http(php, request).await.map(JobResult::Http),
        Job::WriteFile { path, data } => write_file(&path, &data).map(|_| JobResult::Done),
        Job::ReadFile { path } => read_file(&path).map(JobResult::File),
    };
    outcome.unwrap_or_else(|failure| failure)
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

/// php-wasm rejects a run that ended in a fatal error but still carries the
/// response; use it so callers see PHP's output and errors.
async fn php_run(php: &Php, options: &Object) -> Result<JsValue, JobResult> {
    match JsFuture::from(php.run(options)).await {
        Ok(response) => Ok(response),
        Err(e) => {
            let response = get(&e, "response");
            if response.is_object() {
                Ok(response)
            } else {
                Err(js_failure(e))
            }
        }
    }
}

async fn run_code(php: &Php, code: &str) -> Result<JobResult, JobResult> {
    let options = Object::new();
    set(&options, "code", &JsValue::from_str(code));
    let server = Object::new();
    set(&server, "DOCUMENT_ROOT", &JsValue::from_str(document_root()));
    set(&options, "$_SERVER", &server);
    let response = php_run(php, &options).await?;
    Ok(JobResult::Run(RunOutput {
        worker: crate::worker_index(),
        text: get(&response, "text").as_string().unwrap_or_default(),
        errors: get(&response, "errors").as_string().unwrap_or_default(),
        exit_code: get(&response, "exitCode").as_f64().unwrap_or(-1.0) as i32,
    }))
}

fn scope_path(scope_url: &str) -> &str {
    // "http://host:port/scope:x/" -> "/scope:x"
    let after_scheme = scope_url.split_once("://").map(|(_, rest)| rest).unwrap_or(scope_url);
    let path = after_scheme.find('/').map(|i| &after_scheme[i..]).unwrap_or("/");
    path.trim_end_matches('/')
}

async fn serve_http(php: &Php, request: HttpRequest) -> Result<HttpResponse, JobResult> {
    let fs = fs().map_err(js_failure)?;
    let (path, query) = routing::split_url_path(&request.path_and_query);
    match routing::route(fs, document_root(), &path) {
        Route::Php { script_path, script_name } => {
            run_script(php, &request, &script_path, &script_name, query).await
        }
        Route::Static { path, content_type } => {
            let body = read_file(&path)?;
            Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), content_type.into())],
                body,
            })
        }
        Route::NotFound => Ok(HttpResponse {
            status: 404,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: format!("Not found: {path}").into_bytes(),
        }),
    }
}

async fn run_script(
    php: &Php,
    request: &HttpRequest,
    script_path: &str,
    script_name: &str,
    query: &str,
) -> Result<HttpResponse, JobResult> {
    let prefix = scope_path(&request.scope_url);
    let request_uri = format!("{prefix}{}", request.path_and_query);
    let headers = Object::new();
    for (name, value) in &request.headers {
        let key = name.to_ascii_lowercase();
        let joined = match get(&headers, &key).as_string() {
            Some(previous) => format!("{previous}, {value}"),
            None => value.clone(),
        };
        set(&headers, &key, &JsValue::from_str(&joined));
    }
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
    let response = php_run(php, &options).await?;
    let status = get(&response, "httpStatusCode").as_f64().unwrap_or(500.0) as u16;
    let mut headers = Vec::new();
    let header_map = get(&response, "headers");
    if let Some(map) = header_map.dyn_ref::<Object>() {
        for key in Object::keys(map).iter() {
            let name = key.as_string().unwrap_or_default();
            let values = get(map, &name);
            for value in js_sys::Array::from(&values).iter() {
                headers.push((name.clone(), value.as_string().unwrap_or_default()));
            }
        }
    }
    let body = get(&response, "bytes").dyn_into::<Uint8Array>().map(|b| b.to_vec()).unwrap_or_default();
    Ok(HttpResponse { status, headers, body })
}

const O_WRONLY: u32 = 0o1;
const O_CREAT: u32 = 0o100;
const O_TRUNC: u32 = 0o1000;

pub(crate) fn write_file(path: &str, data: &[u8]) -> Result<(), JobResult> {
    let fs = fs().map_err(js_failure)?;
    let attr = fs
        .open_path(FileSystem::ROOT, path.as_bytes(), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        .map_err(|e| fs_failure("cannot open", path, e))?;
    let written = fs.write(attr.ino, 0, data);
    fs.release(attr.ino);
    match written {
        Ok(n) if n == data.len() => Ok(()),
        Ok(_) => Err(fs_failure("short write to", path, Errno::ENOSPC)),
        Err(e) => Err(fs_failure("cannot write", path, e)),
    }
}

pub(crate) fn read_file(path: &str) -> Result<Vec<u8>, JobResult> {
    let fs = fs().map_err(js_failure)?;
    let attr = fs
        .open_path(FileSystem::ROOT, path.as_bytes(), 0, 0)
        .map_err(|e| fs_failure("cannot open", path, e))?;
    let mut data = vec![0u8; attr.size as usize];
    let read = fs.read(attr.ino, 0, &mut data);
    fs.release(attr.ino);
    let n = read.map_err(|e| fs_failure("cannot read", path, e))?;
    data.truncate(n);
    Ok(data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn scope_path_is_the_url_path_without_trailing_slash() {
        assert_eq!(super::scope_path("http://127.0.0.1:8080/scope:abc/"), "/scope:abc");
        assert_eq!(super::scope_path("https://example.com/"), "");
    }
}

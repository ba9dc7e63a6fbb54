//! Starting a playground: isolation, service worker, one shared memory, the
//! two modules compiled once, then the workers (the first formats the shared
//! filesystem, the others attach to it).

use crate::client::Client;
use crate::pool::{BootKit, Pool};
use crate::scheduler::Limits;
use crate::util::{error, get, optional_string, optional_u32, set};
use crate::wasm_imports::{imported_memory, MemoryLimits};
use js_sys::{Object, Uint8Array, WebAssembly};
use protocol::WorkerConfig;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ServiceWorkerRegistration, Window};

const PAGE: u64 = 64 * 1024;
const DOCUMENT_ROOT: &str = "/wordpress";
const MAX_WORKERS: u32 = 64;

struct Options {
    asset_base: String,
    workers: u32,
    limits: Limits,
    memory_max_bytes: u64,
    fs_initial_bytes: u64,
    iframe: Option<web_sys::HtmlIFrameElement>,
}

fn parse_options(options: &JsValue) -> Result<Options, JsValue> {
    let asset_base = optional_string(options, "assetBase")?.ok_or_else(|| error("assetBase is required"))?;
    let default_workers = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as u32)
        .unwrap_or(2)
        .clamp(1, 8);
    let workers = optional_u32(options, "workers")?.unwrap_or(default_workers);
    if workers == 0 || workers > MAX_WORKERS {
        return Err(error(format!("workers must be between 1 and {MAX_WORKERS}, got {workers}")));
    }
    let site = optional_string(options, "site")?.unwrap_or_else(|| "blank".into());
    if site != "blank" {
        return Err(error(format!("unknown site {site:?}: only \"blank\" is available yet")));
    }
    let memory_max_mb = optional_u32(options, "memoryMaximumMb")?.unwrap_or(1024);
    if !(64..=4096).contains(&memory_max_mb) {
        return Err(error("memoryMaximumMb must be between 64 and 4096"));
    }
    let fs_initial_mb = optional_u32(options, "fsInitialMb")?.unwrap_or(16);
    let defaults = Limits::default();
    let limits = Limits {
        max_queue: optional_u32(options, "maxQueue")?.map(|n| n as usize).unwrap_or(defaults.max_queue),
        queue_timeout_ms: optional_u32(options, "queueTimeoutMs")?.map(f64::from).unwrap_or(defaults.queue_timeout_ms),
        request_timeout_ms: optional_u32(options, "requestTimeoutMs")?
            .map(f64::from)
            .unwrap_or(defaults.request_timeout_ms),
    };
    let iframe = get(options, "iframe");
    let iframe = if iframe.is_undefined() || iframe.is_null() {
        None
    } else {
        Some(iframe.dyn_into().map_err(|_| error("option `iframe` must be an <iframe> element"))?)
    };
    Ok(Options {
        asset_base,
        workers,
        limits,
        memory_max_bytes: memory_max_mb as u64 * (1 << 20),
        fs_initial_bytes: fs_initial_mb as u64 * (1 << 20),
        iframe,
    })
}

fn random_scope_id() -> String {
    let n = (js_sys::Math::random() * 2f64.powi(48)) as u64;
    format!("{n:x}")
}

async fn register_service_worker(window: &Window, asset_base: &str) -> Result<ServiceWorkerRegistration, JsValue> {
    let container = window.navigator().service_worker();
    let options = Object::new();
    set(&options, "type", "module");
    set(&options, "scope", "/");
    set(&options, "updateViaCache", "none");
    let url = format!("{asset_base}sw.js");
    JsFuture::from(container.register_with_options(&url, options.unchecked_ref()))
        .await
        .map_err(|e| error(format!("cannot register the service worker {url}: {e:?}")))?;
    let registration: ServiceWorkerRegistration = JsFuture::from(container.ready()?).await?.unchecked_into();
    if container.controller().is_none() {
        // The worker claims open pages when it activates; wait for that.
        let changed = js_sys::Promise::new(&mut |resolve, _| {
            container.set_oncontrollerchange(Some(&resolve));
        });
        JsFuture::from(changed).await?;
        container.set_oncontrollerchange(None);
    }
    Ok(registration)
}

/// Starts fetching and compiling at once (JS promises are eager).
fn compile(window: &Window, url: String) -> impl std::future::Future<Output = Result<WebAssembly::Module, JsValue>> {
    let compiling = JsFuture::from(WebAssembly::compile_streaming(&window.fetch_with_str(&url)));
    async move {
        let module = compiling.await.map_err(|e| error(format!("cannot compile {url}: {e:?}")))?;
        Ok(module.unchecked_into())
    }
}

/// The worker module's bytes: compiled once here, and read for the memory
/// limits it declares.
async fn fetch_worker_module(window: &Window, url: String) -> Result<(WebAssembly::Module, MemoryLimits), JsValue> {
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&url)).await?.unchecked_into();
    if !response.ok() {
        return Err(error(format!("cannot fetch {url}: HTTP {}", response.status())));
    }
    let bytes = Uint8Array::new(&JsFuture::from(response.array_buffer()?).await?);
    let limits = imported_memory(&bytes.to_vec())
        .filter(|l| l.shared)
        .ok_or_else(|| error(format!("{url} does not import a shared memory")))?;
    let module = JsFuture::from(WebAssembly::compile(&bytes)).await?;
    Ok((module.unchecked_into(), limits))
}

#[wasm_bindgen(js_name = startPlaygroundWithAssets)]
pub async fn start_playground(options: JsValue) -> Result<Client, JsValue> {
    let options = parse_options(&options)?;
    let window = web_sys::window().ok_or_else(|| error("startPlayground must run on a page"))?;
    if get(&window, "crossOriginIsolated").as_bool() != Some(true) {
        return Err(error(
            "this page is not cross-origin isolated (serve it with COOP same-origin and COEP credentialless)",
        ));
    }
    let registration = register_service_worker(&window, &options.asset_base).await?;
    let scope = random_scope_id();
    let absolute_url = format!("{}scope:{scope}/", registration.scope());
    let claim = Object::new();
    set(&claim, "type", "claim-scope");
    set(&claim, "scope", scope.as_str());
    registration.active().ok_or_else(|| error("the service worker is not active"))?.post_message(&claim)?;

    let php_module = compile(&window, format!("{}worker/php_8_3.wasm", options.asset_base));
    let (worker_module, limits) =
        fetch_worker_module(&window, format!("{}worker/worker_bg.wasm", options.asset_base)).await?;
    let php_module = php_module.await?;
    let max_pages = options.memory_max_bytes / PAGE;
    if max_pages < limits.min_pages || limits.max_pages.is_some_and(|m| max_pages > m) {
        return Err(error(format!(
            "memoryMaximumMb must be between {} and {} MiB for this build",
            limits.min_pages * PAGE >> 20,
            limits.max_pages.unwrap_or(65536) * PAGE >> 20
        )));
    }
    let descriptor = Object::new();
    set(&descriptor, "initial", limits.min_pages as f64);
    set(&descriptor, "maximum", max_pages as f64);
    set(&descriptor, "shared", true);
    let memory = WebAssembly::Memory::new(&descriptor)?;

    let kit = BootKit {
        script_url: format!("{}worker/worker-entry.js", options.asset_base),
        memory,
        worker_module,
        php_module,
        config: WorkerConfig {
            index: 0,
            format: false,
            document_root: DOCUMENT_ROOT.into(),
            fs_initial_bytes: options.fs_initial_bytes,
            fs_max_bytes: options.memory_max_bytes,
        },
    };
    let pool = Pool::new(options.workers, options.limits, kit);
    // Worker 0 formats the filesystem before anyone else attaches.
    wait_ready(0, pool.spawn(0, true)?).await?;
    let mut rest = Vec::new();
    for index in 1..options.workers {
        rest.push((index, pool.spawn(index, false)?));
    }
    for (index, ready) in rest {
        wait_ready(index, ready).await?;
    }

    if let Some(iframe) = &options.iframe {
        iframe.set_src(&absolute_url);
    }
    Ok(Client::new(pool, scope, absolute_url, DOCUMENT_ROOT.into()))
}

async fn wait_ready(
    index: u32,
    ready: futures_channel::oneshot::Receiver<Result<(), String>>,
) -> Result<(), JsValue> {
    match ready.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(error(format!("worker {index} failed to boot: {message}"))),
        Err(_) => Err(error(format!("worker {index} went away while booting"))),
    }
}

//! Starting a playground: isolation, service worker, one shared memory, the
//! two modules compiled once, then the workers (the first formats the shared
//! filesystem, the others attach to it).

use crate::client::Client;
use crate::manager_link::{Manager, Reply, Start};
use crate::supervisor::Layout;
use crate::isolation::{decide, must_await_registration, Decision, Facts, Mode};
use crate::scheduler::Limits;
use crate::util::{error, get, message_of, optional_string, optional_u32, set};
use crate::wasm_imports::{imported_memory, MemoryLimits};
use js_sys::{Object, Uint8Array, WebAssembly};
use crate::versions::{AskedVersions, WordPress};
use protocol::manager::{JobTarget, PoolStart};
use protocol::{PhpBuild, SiteKind, WorkerConfig, WorkerRole};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessagePort, ServiceWorkerRegistration, Window};

const PAGE: u64 = 64 * 1024;
const DOCUMENT_ROOT: &str = "/wordpress";
const MAX_WORKERS: u32 = 64;

/// What to boot: an empty document root, WordPress, or a site zip.
#[derive(Clone)]
enum Site {
    Blank,
    WordPress,
    /// A zip (Uint8Array, ArrayBuffer or Blob), e.g. from `exportSite()`.
    Archive(JsValue),
}

fn site_option(value: &JsValue) -> Result<Site, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Site::WordPress);
    }
    match value.as_string().as_deref() {
        Some("wordpress") => Ok(Site::WordPress),
        Some("blank") => Ok(Site::Blank),
        Some(other) => Err(error(format!("unknown site {other:?}: use \"wordpress\", \"blank\" or a zip"))),
        None if value.is_instance_of::<Uint8Array>()
            || value.is_instance_of::<js_sys::ArrayBuffer>()
            || value.is_instance_of::<web_sys::Blob>() =>
        {
            Ok(Site::Archive(value.clone()))
        }
        None => Err(error("option `site` must be \"wordpress\", \"blank\", or a zip as Uint8Array, ArrayBuffer or Blob")),
    }
}

/// Installed beside WordPress: the SQLite integration package.json pins
/// (scripts/fetch-sqlite-integration.mjs), not the WordPress builds' own.
const SQLITE_ARCHIVE: &str = "wordpress/sqlite-database-integration.zip";

async fn response_bytes(url: &str, download: js_sys::Promise) -> Result<Uint8Array, JsValue> {
    // A network failure (no CORS, offline) names the URL too.
    let response: web_sys::Response = JsFuture::from(download)
        .await
        .map_err(|e| error(format!("cannot fetch {url}: {}", message_of(&e))))?
        .unchecked_into();
    if !response.ok() {
        return Err(error(format!("cannot fetch {url}: HTTP {}", response.status())));
    }
    Ok(Uint8Array::new(&JsFuture::from(response.array_buffer()?).await?))
}

fn site_kind(site: &Site) -> SiteKind {
    match site {
        Site::Blank => SiteKind::Blank,
        Site::WordPress => SiteKind::WordPress,
        Site::Archive(_) => SiteKind::Archive,
    }
}

/// Where the site's static files live beyond its files (a build's archive
/// leaves them out): the build of the WordPress it turned out to run, read
/// once it is up (a saved or imported site may run another than `wp` names).
fn assets_url(asset_base: &str, installed: Option<&str>) -> Option<String> {
    let build = crate::versions::WpBuild::for_installed(installed?)?;
    Some(format!("{asset_base}{}", build.assets()))
}

/// What a WordPress site needs before its first page, once: installing it
/// (a zip from a URL), or its database's first connection, which the SQLite
/// integration uses to convert a database an older one made (a reopened
/// site just upgraded, a build's zip). A new site's image had both done at
/// build time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FirstUse {
    Install,
    Connect,
    Nothing,
}

/// Runs `code` on a free worker; it prints `done` last when it did its job.
async fn run_php(manager: &Manager, code: &str, what: &str) -> Result<(), JsValue> {
    use protocol::{Job, JobResult, RunRequest, RunSource};
    let job = Job::Run(RunRequest { source: RunSource::Code(code.into()), env: Vec::new(), body: Vec::new(), cwd: DOCUMENT_ROOT.into() });
    let output = match manager.submit(JobTarget::Any, job).await? {
        Reply(JobResult::Run(output)) => output,
        _ => return Err(error(format!("{what} gave no PHP output"))),
    };
    let text = String::from_utf8_lossy(&output.bytes);
    if !text.ends_with("done") || output.exit_code != 0 {
        return Err(error(format!("{what} failed: {text} {}", output.errors)));
    }
    Ok(())
}

/// A reopened site whose SQLite integration is older than the one new sites
/// get is upgraded to it (`Job::UpgradeSqliteIntegration`); its database is
/// converted by the first connection. Returns whether it was upgraded. A
/// download or an upgrade that fails leaves the site as it was, with a
/// warning.
async fn upgrade_sqlite_integration(manager: &Manager, download: js_sys::Promise, url: &str) -> bool {
    use protocol::{Job, JobResult};
    let zip = match response_bytes(url, download).await {
        Ok(bytes) => bytes.to_vec(),
        Err(why) => {
            web_sys::console::warn_2(&"the SQLite integration was not checked for an upgrade:".into(), &why);
            return false;
        }
    };
    match manager.submit(JobTarget::Any, Job::UpgradeSqliteIntegration { zip }).await {
        Ok(Reply(JobResult::Upgraded { from, to })) => {
            web_sys::console::info_1(&format!("This site's SQLite integration was upgraded from {from} to {to}.").into());
            true
        }
        // Its old copy is whole (the new one is swapped in last): the site
        // opens as it was.
        Err(why) => {
            web_sys::console::error_2(&"the SQLite integration could not be upgraded:".into(), &why);
            false
        }
        Ok(_) => false,
    }
}

/// Does the site's `first_use`, then reads the installed WordPress's
/// `$wp_version` (`None` for a site that is not WordPress). A site that
/// cannot be installed does not boot; one whose first connection fails
/// boots with a warning, its files still there to export, and WordPress
/// says what is wrong on its pages.
async fn prepare_wordpress(manager: &Manager, first_use: FirstUse) -> Result<Option<String>, JsValue> {
    use protocol::{Job, JobResult};
    match first_use {
        FirstUse::Install => run_php(manager, crate::versions::INSTALL_WORDPRESS_PHP, "installing WordPress from its zip").await?,
        FirstUse::Connect => {
            if let Err(why) = run_php(manager, crate::versions::CONNECT_WORDPRESS_PHP, "WordPress's first database connection").await {
                web_sys::console::error_1(&why);
            }
        }
        FirstUse::Nothing => {}
    }
    let path = format!("{DOCUMENT_ROOT}/wp-includes/version.php");
    Ok(match manager.submit(JobTarget::Any, Job::ReadFile { path }).await {
        Ok(Reply(JobResult::File(bytes))) => crate::versions::wp_version_in(&String::from_utf8_lossy(&bytes)),
        _ => None,
    })
}

/// What the formatting worker installs: a new site's prebuilt image when
/// the build made one for these options (`versions::site_image`), else —
/// or when it cannot be fetched — the site's archives. Started at once (the
/// returned future is already running) so the downloads overlap the rest of
/// the boot.
fn fetch_site(
    window: &Window,
    site: &Site,
    wordpress: &WordPress,
    image: Option<String>,
    asset_base: &str,
) -> impl std::future::Future<Output = Result<(SiteKind, js_sys::Array), JsValue>> {
    let kind = site_kind(site);
    // Without an image the archives download at once; with one, only if it fails.
    let archives = image.is_none().then(|| fetch_site_archives(window, site, wordpress, asset_base));
    let (window, site, wordpress, asset_base) = (window.clone(), site.clone(), wordpress.clone(), asset_base.to_string());
    let (sender, receiver) = futures_channel::oneshot::channel();
    wasm_bindgen_futures::spawn_local(async move {
        let fetched = async {
            if let Some(path) = image {
                let url = format!("{asset_base}{path}");
                match response_bytes(&url, window.fetch_with_str(&url)).await {
                    Ok(bytes) => return Ok((SiteKind::Image, js_sys::Array::of1(&bytes))),
                    // A deploy built without images: the zips instead.
                    Err(why) => web_sys::console::warn_2(&"no prebuilt site image; installing from the zips:".into(), &why),
                }
            }
            let archives = archives.unwrap_or_else(|| fetch_site_archives(&window, &site, &wordpress, &asset_base));
            Ok((kind, JsFuture::from(archives).await?.unchecked_into()))
        };
        let _ = sender.send(fetched.await);
    });
    async move { receiver.await.unwrap_or_else(|_| Err(error("the site download was dropped"))) }
}

/// Where the site's archives are (none for a blank site or a given zip).
fn site_archive_urls(site: &Site, wordpress: &WordPress, asset_base: &str) -> Vec<String> {
    match (site, wordpress) {
        (Site::WordPress, WordPress::Build(build)) => vec![format!("{asset_base}{}", build.archive()), format!("{asset_base}{SQLITE_ARCHIVE}")],
        (Site::WordPress, WordPress::Url(url)) => vec![url.clone(), format!("{asset_base}{SQLITE_ARCHIVE}")],
        _ => Vec::new(),
    }
}

/// The archives the formatting worker installs, fetched at once (the
/// returned promise is already running).
fn fetch_site_archives(window: &Window, site: &Site, wordpress: &WordPress, asset_base: &str) -> js_sys::Promise {
    let window = window.clone();
    let urls = site_archive_urls(site, wordpress, asset_base);
    let archive = match site {
        Site::Archive(value) => Some(value.clone()),
        _ => None,
    };
    wasm_bindgen_futures::future_to_promise(async move {
        let archives = js_sys::Array::new();
        let downloads: Vec<_> = urls.iter().map(|url| (url, window.fetch_with_str(url))).collect();
        for (url, download) in downloads {
            let bytes = response_bytes(url, download).await?;
            archives.push(&bytes);
        }
        if let Some(value) = archive {
            let bytes = if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
                Uint8Array::new(&JsFuture::from(blob.array_buffer()).await?)
            } else {
                // A copy: the archive's buffer is transferred to the worker.
                Uint8Array::new(&value).slice(0, Uint8Array::new(&value).length())
            };
            archives.push(&bytes);
        }
        Ok(archives.into())
    })
}

/// `startPlayground`'s options, read once (`parse_options`); a Blueprint
/// adjusts them (`prefer_versions`, `iframe`) before the boot.
pub(crate) struct Options {
    asset_base: String,
    site: Site,
    workers: u32,
    limits: Limits,
    memory_max_bytes: u64,
    fs_initial_bytes: u64,
    /// The iframe to show the site in: the entry (blueprint.rs) opens it
    /// once the Blueprint ran, at its landing page.
    pub(crate) iframe: Option<web_sys::HtmlIFrameElement>,
    /// `onProgress` and `onSiteStopped`.
    on_progress: Option<js_sys::Function>,
    on_site_stopped: Option<js_sys::Function>,
    /// A php-wasm build named by the `phpBuild` option, else chosen by feature.
    php_build: Option<PhpBuild>,
    /// Save the site in the browser (`storage` option: on unless "temp").
    saved: bool,
    /// `siteSlug`: the saved site to open or create.
    site_slug: Option<String>,
    /// PHP's outgoing HTTP through `fetch()` (`networking` option).
    networking: bool,
    /// `php`: one of crate::versions::PHP_VERSIONS.
    php_version: &'static str,
    /// `wp`: what a new WordPress site installs.
    wordpress: WordPress,
    /// `php` and `wp` as given, for a Blueprint's preferences.
    asked_versions: AskedVersions,
}

impl Options {
    /// A Blueprint's `preferredVersions`, for what the options leave out.
    pub(crate) fn prefer_versions(&mut self, preferred: &AskedVersions) -> Result<(), JsValue> {
        (self.php_version, self.wordpress) = self.asked_versions.resolve(preferred).map_err(error)?;
        Ok(())
    }
}

/// `networking`: on unless `false` (or `"no"`, as in the page's `?networking=no`).
fn networking_option(value: &JsValue) -> Result<bool, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(true);
    }
    value
        .as_bool()
        .or_else(|| value.as_string().and_then(|name| protocol::networking_from_name(&name)))
        .ok_or_else(|| error("option `networking` must be true or false (or \"yes\" / \"no\")"))
}

pub(crate) fn parse_options(options: &JsValue) -> Result<Options, JsValue> {
    let asset_base = optional_string(options, "assetBase")?.ok_or_else(|| error("assetBase is required"))?;
    let default_workers = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as u32)
        .unwrap_or(2)
        .clamp(1, 8);
    let workers = optional_u32(options, "workers")?.unwrap_or(default_workers);
    if workers == 0 || workers > MAX_WORKERS {
        return Err(error(format!("workers must be between 1 and {MAX_WORKERS}, got {workers}")));
    }
    let site = site_option(&get(options, "site"))?;
    let asked_versions = AskedVersions { php: optional_string(options, "php")?, wp: optional_string(options, "wp")? };
    let (php_version, wordpress) = asked_versions.resolve(&AskedVersions::default()).map_err(error)?;
    let memory_max_mb = optional_u32(options, "memoryMaximumMb")?.unwrap_or(1024);
    if !(64..=4096).contains(&memory_max_mb) {
        return Err(error("memoryMaximumMb must be between 64 and 4096"));
    }
    let fs_initial_mb = optional_u32(options, "fsInitialMb")?.unwrap_or(1);
    let defaults = Limits::default();
    let limits = Limits {
        max_queue: optional_u32(options, "maxQueue")?.unwrap_or(defaults.max_queue),
        queue_timeout_ms: optional_u32(options, "queueTimeoutMs")?.map(f64::from).unwrap_or(defaults.queue_timeout_ms),
        request_timeout_ms: optional_u32(options, "requestTimeoutMs")?
            .map(f64::from)
            .unwrap_or(defaults.request_timeout_ms),
        max_requests: optional_u32(options, "maxRequests")?.unwrap_or(defaults.max_requests),
        ..defaults
    };
    let iframe = get(options, "iframe");
    let iframe = if iframe.is_undefined() || iframe.is_null() {
        None
    } else {
        Some(iframe.dyn_into().map_err(|_| error("option `iframe` must be an <iframe> element"))?)
    };
    let php_build = match optional_string(options, "phpBuild")? {
        None => None,
        Some(name) => Some(PhpBuild::from_name(&name).ok_or_else(|| {
            error(format!("unknown phpBuild {name:?}: use \"{}\" or \"{}\"", PhpBuild::Jspi.name(), PhpBuild::Asyncify.name()))
        })?),
    };
    let saved = match optional_string(options, "storage")?.as_deref() {
        None | Some("browser") | Some("opfs") => true,
        Some("temp") | Some("none") => false,
        Some(other) => return Err(error(format!("unknown storage {other:?}: use \"browser\" (the default) or \"temp\""))),
    };
    let site_slug = optional_string(options, "siteSlug")?;
    if let Some(slug) = &site_slug {
        protocol::storage::check_slug(slug).map_err(error)?;
    }
    Ok(Options {
        php_version,
        wordpress,
        asked_versions,
        on_progress: get(options, "onProgress").dyn_into().ok(),
        on_site_stopped: get(options, "onSiteStopped").dyn_into().ok(),
        saved,
        site_slug,
        networking: networking_option(&get(options, "networking"))?,
        php_build,
        asset_base,
        site,
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

/// Registers the service worker (asking for the embedder policy this
/// browser supports) and waits until it controls the page.
async fn register_service_worker(window: &Window, asset_base: &str) -> Result<ServiceWorkerRegistration, String> {
    let navigator = window.navigator();
    if get(&navigator, "serviceWorker").is_undefined() {
        return Err("service workers are not available in this context".into());
    }
    let container = navigator.service_worker();
    let options = Object::new();
    set(&options, "type", "module");
    set(&options, "scope", "/");
    set(&options, "updateViaCache", "none");
    let url = format!("{asset_base}sw.js?coep={}", embedder_policy(window));
    let script = web_sys::Url::new_with_base(&url, &window.location().href().map_err(|e| message_of(&e))?)
        .map_err(|e| format!("bad service worker address {url}: {}", message_of(&e)))?
        .href();
    let controller = container.controller().map(|c| c.script_url());
    let registered = container.register_with_options(&url, options.unchecked_ref());
    if must_await_registration(controller.as_deref(), &script) {
        within(SERVICE_WORKER_TIMEOUT_MS, registered)
            .await
            .map_err(|e| format!("cannot register {url}: {}", message_of(&e)))?;
    } else {
        let failed = Closure::<dyn FnMut(JsValue)>::once(move |e: JsValue| {
            web_sys::console::warn_1(&format!("checking {url} for an update failed: {}", message_of(&e)).into())
        });
        let _ = registered.catch(&failed);
        failed.forget();
    }
    let ready = container.ready().map_err(|e| message_of(&e))?;
    let registration: ServiceWorkerRegistration =
        within(SERVICE_WORKER_TIMEOUT_MS, ready).await.map_err(|e| message_of(&e))?.unchecked_into();
    if container.controller().is_none() {
        // The worker claims open pages when it activates; wait for that.
        let changed = js_sys::Promise::new(&mut |resolve, _| {
            container.set_oncontrollerchange(Some(&resolve));
        });
        within(SERVICE_WORKER_TIMEOUT_MS, changed).await.map_err(|e| message_of(&e))?;
        container.set_oncontrollerchange(None);
    }
    Ok(registration)
}

/// Starts registering the service worker at once; `service_worker_ready`
/// awaits the outcome.
fn registering_service_worker(window: &Window, asset_base: &str) -> js_sys::Promise {
    let window = window.clone();
    let asset_base = asset_base.to_string();
    wasm_bindgen_futures::future_to_promise(async move {
        register_service_worker(&window, &asset_base).await.map(JsValue::from).map_err(JsValue::from)
    })
}

async fn service_worker_ready(registering: &js_sys::Promise) -> Result<ServiceWorkerRegistration, String> {
    match JsFuture::from(registering.clone()).await {
        Ok(registration) => Ok(registration.unchecked_into()),
        Err(why) => Err(crate::util::message_of(&why)),
    }
}

/// Tells `service_worker` that `scope` is ours; it sends the scope's
/// requests over the returned port's channel (to the process manager).
pub(crate) fn claim_scope(service_worker: &web_sys::ServiceWorker, scope: &str, assets_url: Option<&str>) -> Result<MessagePort, JsValue> {
    let channel = web_sys::MessageChannel::new()?;
    let claim = protocol::PageMessage::ClaimScope { scope: scope.into(), assets_url: assets_url.map(String::from) };
    let message = js_sys::Array::of2(&Uint8Array::from(&protocol::encode(&claim)[..]), &channel.port2());
    service_worker.post_message_with_transferable(&message, &js_sys::Array::of1(&channel.port2()))?;
    Ok(channel.port1())
}

/// A browser that blocks service workers may leave registration pending forever.
const SERVICE_WORKER_TIMEOUT_MS: i32 = 10_000;

/// `promise`, or a rejection after `ms`.
async fn within(ms: i32, promise: js_sys::Promise) -> Result<JsValue, JsValue> {
    let timeout = js_sys::Promise::new(&mut |_, reject| {
        let message = error(format!("no answer within {ms} ms"));
        let reject = Closure::once_into_js(move || {
            let _ = reject.call1(&JsValue::NULL, &message);
        });
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(reject.unchecked_ref(), ms);
        }
    });
    JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&promise, &timeout))).await
}

/// `credentialless` where the browser knows it (Chromium, Firefox), else
/// `require-corp` (Safari).
fn embedder_policy(window: &Window) -> &'static str {
    let iframe_knows = js_sys::Reflect::get(window, &"HTMLIFrameElement".into())
        .ok()
        .map(|c| get(&get(&c, "prototype"), "credentialless"))
        .is_some_and(|v| !v.is_undefined());
    let firefox = window.navigator().user_agent().map(|ua| ua.contains("Firefox/")).unwrap_or(false);
    if iframe_knows || firefox {
        "credentialless"
    } else {
        "require-corp"
    }
}

/// Did the service worker isolate this document? It says so in Server-Timing.
fn isolated_by_service_worker(window: &Window) -> bool {
    let Some(performance) = window.performance() else { return false };
    let entries = performance.get_entries_by_type("navigation");
    let timing = get(&entries.get(0), "serverTiming");
    js_sys::Array::from(&timing).iter().any(|t| get(&t, "name").as_string().as_deref() == Some("isolation"))
}

const RELOAD_MARK: &str = "php-pool-isolation-reload";

fn session_flag(window: &Window, set_it: Option<bool>) -> bool {
    let Ok(Some(storage)) = window.session_storage() else { return false };
    match set_it {
        Some(true) => storage.set_item(RELOAD_MARK, "1").is_ok(),
        Some(false) => storage.remove_item(RELOAD_MARK).is_ok(),
        None => storage.get_item(RELOAD_MARK).ok().flatten().is_some(),
    }
}

/// Emits `{stage, done, total}` to the `onProgress` option.
struct Progress {
    callback: Option<js_sys::Function>,
    total: u32,
    done: std::cell::Cell<u32>,
}

impl Progress {
    fn step(&self, stage: &str) {
        self.done.set((self.done.get() + 1).min(self.total));
        if let Some(callback) = &self.callback {
            let event = Object::new();
            set(&event, "stage", stage);
            set(&event, "done", self.done.get());
            set(&event, "total", self.total);
            let _ = callback.call1(&JsValue::NULL, &event);
        }
    }
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
async fn compile_worker_module(url: String, download: js_sys::Promise) -> Result<(WebAssembly::Module, MemoryLimits), JsValue> {
    let bytes = response_bytes(&url, download).await?;
    let limits = imported_memory(&bytes.to_vec())
        .filter(|l| l.shared)
        .ok_or_else(|| error(format!("{url} does not import a shared memory")))?;
    let module = JsFuture::from(WebAssembly::compile(&bytes)).await?;
    Ok((module.unchecked_into(), limits))
}

/// Boots a playground from options read by `parse_options`, which
/// `blueprint.rs` (the entry, `startPlaygroundWithEngine`) adjusts first;
/// `assetBase` is where the runtime's files live (the embedding entry,
/// `src-js/index.js`, fills it in).
pub(crate) async fn start(mut options: Options) -> Result<Client, JsValue> {
    let on_progress = options.on_progress.take();
    let on_site_stopped = options.on_site_stopped.take();
    let window = web_sys::window().ok_or_else(|| error("startPlayground must run on a page"))?;
    // Downloads and compilation start now and overlap everything up to the
    // first worker's boot.
    let php_build = PhpBuild::choose(browser_has_jspi(), options.php_build).map_err(error)?;
    let (php_binary, php_loader) = crate::versions::php_files(options.php_version, php_build);
    let php_module = compile(&window, format!("{}worker/{php_binary}", options.asset_base));
    let worker_module_url = format!("{}worker/worker_bg.wasm", options.asset_base);
    let worker_module_download = window.fetch_with_str(&worker_module_url);
    // A saved site that reopens may need it (`upgrade_sqlite_integration`).
    let sqlite_url = format!("{}{SQLITE_ARCHIVE}", options.asset_base);
    let sqlite_download = options.saved.then(|| window.fetch_with_str(&sqlite_url));
    // A new site's image is of no use to a saved site that reopens; but
    // whether it reopens is known only once its storage is open.
    let image = crate::versions::site_image(&options.wordpress, options.php_version, php_build)
        .filter(|_| matches!(options.site, Site::WordPress));
    // A saved site that reopens needs no download: whether its files are
    // there is looked up first (a few ms), and the download starts after.
    let likely_reopened = (options.saved && matches!(options.site, Site::WordPress)).then(|| options.site_slug.clone());
    let site_download = {
        let (sender, receiver) = futures_channel::oneshot::channel();
        let (window, site, wordpress, image, asset_base) =
            (window.clone(), options.site.clone(), options.wordpress.clone(), image.clone(), options.asset_base.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let reopened = match likely_reopened {
                Some(requested) => crate::saved_sites::likely_reopened(requested).await,
                None => None,
            };
            let fetched = match reopened {
                Some(_) => None,
                None => Some(fetch_site(&window, &site, &wordpress, image, &asset_base).await),
            };
            let _ = sender.send((reopened, fetched));
        });
        receiver
    };

    let registration = registering_service_worker(&window, &options.asset_base);
    let isolated = get(&window, "crossOriginIsolated").as_bool() == Some(true);
    // An isolated page boots its workers while the service worker is still
    // registering; only a page that is not isolated needs its answer first.
    let early_registration = if isolated { None } else { Some(service_worker_ready(&registration).await) };
    let facts = Facts {
        isolated,
        injected: isolated_by_service_worker(&window),
        service_worker: match &early_registration {
            Some(Err(why)) => Err(why.as_str()),
            _ => Ok(()),
        },
        already_reloaded: session_flag(&window, None),
    };
    let mode = match decide(&facts) {
        Decision::Reload => {
            session_flag(&window, Some(true));
            window.location().reload()?;
            // The page is going away; never resolve.
            JsFuture::from(js_sys::Promise::new(&mut |_, _| {})).await?;
            unreachable_boot()?
        }
        Decision::Proceed(mode) => mode,
    };
    if !matches!(mode, Mode::SingleWorker { .. }) {
        session_flag(&window, Some(false));
    }
    let shared = !matches!(mode, Mode::SingleWorker { .. });
    if !shared {
        options.workers = 1;
    }
    // A saved site is held by this page from here on (one tab per site).
    // Where the browser gives this page no storage, the site is temporary
    // and says why (`client.storageNotice`).
    let unsaved_reason = if options.saved { crate::saved_sites::unavailable().await } else { None };
    let storage_slug = match (options.saved, &unsaved_reason) {
        (true, None) => Some(crate::saved_sites::claim(options.site_slug.clone()).await?),
        _ => None,
    };
    // The file server and the storage worker report ready like a worker.
    let helpers = u32::from(shared) * (1 + u32::from(storage_slug.is_some()));
    // The boot waits for worker 0 (and the helpers); the other PHP workers
    // start after the first page (`Pool::defer`).
    let progress = std::rc::Rc::new(Progress { callback: on_progress, total: 5 + helpers, done: Default::default() });
    progress.step("isolation");

    let scope = random_scope_id();
    // The service worker's scope is the origin's root, so the site's URL is
    // known before its registration settles.
    let absolute_url = protocol::scope::url(&window.location().origin()?, &scope);
    let (reopened, fetched) = site_download.await.map_err(|_| error("the site download was dropped"))?;
    let (site_kind, archives, fetch_if_new) = match fetched {
        Some(fetched) => {
            let (kind, archives) = fetched?;
            (kind, archives, Vec::new())
        }
        // The formatter fetches the zips should the site not reopen after all.
        None if reopened.is_some() && reopened == storage_slug => {
            (SiteKind::WordPress, js_sys::Array::new(), site_archive_urls(&options.site, &options.wordpress, &options.asset_base))
        }
        // The saved site found is not the one this page holds (another tab has it).
        None => {
            let (kind, archives) = fetch_site(&window, &options.site, &options.wordpress, image, &options.asset_base).await?;
            (kind, archives, Vec::new())
        }
    };
    let from_zips = site_kind == SiteKind::WordPress;
    // A damaged image: the formatting worker installs the zips instead.
    let image_fallback = match site_kind {
        SiteKind::Image => site_archive_urls(&options.site, &options.wordpress, &options.asset_base),
        _ => Vec::new(),
    };
    progress.step("site-download");

    let (worker_module, limits) = compile_worker_module(worker_module_url, worker_module_download).await?;
    progress.step("worker-module");
    let max_pages = options.memory_max_bytes / PAGE;
    if max_pages < limits.min_pages || limits.max_pages.is_some_and(|m| max_pages > m) {
        return Err(error(format!(
            "memoryMaximumMb must be between {} and {} MiB for this build",
            (limits.min_pages * PAGE) >> 20,
            (limits.max_pages.unwrap_or(65536) * PAGE) >> 20
        )));
    }
    let descriptor = Object::new();
    set(&descriptor, "initial", limits.min_pages as f64);
    set(&descriptor, "maximum", max_pages as f64);
    set(&descriptor, "shared", true);
    // Without isolation a shared memory cannot be posted to a worker: the
    // single worker creates its own from the descriptor.
    let memory = if shared { Some(WebAssembly::Memory::new(&descriptor)?) } else { None };

    let config = WorkerConfig {
        index: 0,
        format: false,
        site: site_kind,
        site_url: absolute_url.trim_end_matches('/').to_string(),
        document_root: DOCUMENT_ROOT.into(),
        fs_initial_bytes: options.fs_initial_bytes,
        fs_max_bytes: protocol::shared_memory::fs_max_bytes(options.memory_max_bytes, limits.min_pages * PAGE),
        php_build,
        php_version: options.php_version.into(),
        php_loader,
        role: WorkerRole::Php,
        keeps_site: None,
        networking: options.networking,
        image_fallback,
        fetch_if_new,
    };
    let layout = Layout::new(options.workers, memory.is_some(), storage_slug.is_some());
    // The process manager holds the pool, off this thread. A helper (the
    // storage worker, else the file server) formats the filesystem —
    // opening the saved site, or installing the site — and needs no
    // php.wasm: the helpers start now, while it still compiles, and worker
    // 0 once it is, then waits for the filesystem. Without helpers (no
    // isolation) the single worker formats it. The formatter's failure (a
    // site that cannot be opened) ends the boot.
    let worker_ready = {
        let progress = progress.clone();
        move || progress.step("worker-ready")
    };
    let (manager, booted) = Manager::start(Start {
        script_url: format!("{}host/manager-worker.js", options.asset_base),
        pool: PoolStart {
            workers: options.workers,
            limits: options.limits,
            script_url: format!("{}worker/worker-entry.js", options.asset_base),
            config,
            storage_slug: storage_slug.clone(),
        },
        memory,
        memory_descriptor: descriptor,
        worker_module,
        archives,
        unsaved_reason: unsaved_reason.map(|why| format!("This site is not saved: {why}.")),
        on_site_stopped,
        boot_workers: layout.boot_workers().len() as u32,
        on_worker_ready: Box::new(worker_ready),
    })?;
    let php_module = php_module.await.inspect_err(|_| manager.terminate())?;
    progress.step("php-module");
    manager.php_module(&php_module)?;
    let workers_ready = async {
        match booted.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(error(message)),
            Err(_) => Err(error("the process manager went away while booting")),
        }
    };

    let registration = match early_registration {
        Some(registration) => registration,
        None => service_worker_ready(&registration).await,
    };
    if let Err(failed) = workers_ready.await {
        // Workers still waiting for the filesystem would wait forever.
        manager.terminate();
        return Err(failed);
    }
    let restored = manager.storage_opened().is_some_and(|o| o.restored);
    let settled = async {
        let upgraded = match sqlite_download.filter(|_| restored) {
            Some(download) => upgrade_sqlite_integration(&manager, download, &sqlite_url).await,
            None => false,
        };
        let from_zips = from_zips || manager.storage_opened().is_some_and(|o| o.from_zips);
        let first_use = first_use(&options.site, &options.wordpress, from_zips, restored, upgraded);
        prepare_wordpress(&manager, first_use).await
    };
    let wp_version = match settled.await {
        Ok(version) => version,
        Err(failed) => {
            manager.terminate();
            return Err(failed);
        }
    };
    let assets_url = assets_url(&options.asset_base, wp_version.as_deref());
    let claim = match &registration {
        Ok(registration) => {
            let active = registration.active().ok_or_else(|| error("the service worker is not active"))?;
            let port = claim_scope(&active, &scope, assets_url.as_deref())?;
            Some(crate::client::Claim { port, assets_url })
        }
        Err(_) => None,
    };

    Ok(Client::new(manager, scope, absolute_url, DOCUMENT_ROOT.into(), mode, php_build, claim)
        .with_versions(options.php_version, wp_version))
}

/// `from_zips`: the site was to be installed from the WordPress zips (not
/// from an image).
fn first_use(site: &Site, wordpress: &WordPress, from_zips: bool, restored: bool, upgraded: bool) -> FirstUse {
    match (site, wordpress) {
        _ if restored && upgraded => FirstUse::Connect,
        _ if restored => FirstUse::Nothing,
        (Site::WordPress, WordPress::Url(_)) => FirstUse::Install,
        (Site::WordPress, WordPress::Build(_)) if from_zips => FirstUse::Connect,
        _ => FirstUse::Nothing,
    }
}

/// Does this browser have JavaScript Promise Integration?
fn browser_has_jspi() -> bool {
    let wasm = get(&js_sys::global(), "WebAssembly");
    get(&wasm, "Suspending").is_function() && get(&wasm, "promising").is_function()
}

fn unreachable_boot() -> Result<Mode, JsValue> {
    Err(error("the page is reloading to become cross-origin isolated"))
}



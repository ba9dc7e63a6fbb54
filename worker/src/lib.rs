//! The PHP worker runtime, built as a shared-memory (atomics) module: every
//! worker instantiates it over the same `WebAssembly.Memory`, so the
//! filesystem below is one structure seen by all of them.
//!
//! `src-js/` holds the JS side: the worker entry (loads php-wasm) and the
//! Emscripten mount adapter that calls `fs_calls`.

mod archive;
mod compiled_cache;
mod cookies;
mod errno_abi;
mod files;
mod site;
mod storage;
mod fault;
mod fs_calls;
mod jobs;
mod mount;
mod net;
mod php_ini;
mod php_messages;
pub mod routing;

use protocol::WorkerConfig;
use shared_fs::{Config, Errno, FileSystem, Timespec};
use std::sync::OnceLock;
use wasm_bindgen::prelude::*;

pub(crate) use protocol::web::message_of;

/// Sets `key` on a plain object made for the JS glue (a plan or a route).
pub(crate) fn set(target: &js_sys::Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object we just made cannot fail.
    let _ = js_sys::Reflect::set(target, &JsValue::from_str(key), value);
}

/// Statics live in the shared memory, so this is the same slot in every worker.
static FS: OnceLock<FileSystem> = OnceLock::new();
static DOCUMENT_ROOT: OnceLock<String> = OnceLock::new();
static SITE_URL: OnceLock<String> = OnceLock::new();

pub(crate) fn fs() -> Result<&'static FileSystem, JsValue> {
    FS.get().ok_or_else(|| JsValue::from_str("the shared filesystem is not attached"))
}

pub(crate) fn document_root() -> &'static str {
    DOCUMENT_ROOT.get().map(String::as_str).unwrap_or("/")
}

fn clock() -> Timespec {
    let ms = js_sys::Date::now();
    let sec = (ms / 1000.0).floor();
    Timespec { sec: sec as i64, nsec: ((ms - sec * 1000.0) * 1e6) as u32 }
}

/// Errors cross into JS as php.wasm's (Emscripten's) errno number, which the
/// mount adapter throws as `FS.ErrnoError`.
pub(crate) fn errno(e: Errno) -> JsValue {
    JsValue::from(errno_abi::emscripten_errno(e))
}

thread_local! {
    /// This worker's start-up parameters, from `configure` until `attach`.
    static CONFIG: std::cell::RefCell<Option<WorkerConfig>> = const { std::cell::RefCell::new(None) };
}

/// Takes this worker's start-up parameters; needs no filesystem, so the JS
/// glue can start its PHP runtime before `attach`.
#[wasm_bindgen]
pub fn configure(config: &[u8]) -> Result<(), JsValue> {
    let config: WorkerConfig = match protocol::decode(config).map_err(|e| JsValue::from_str(&e))? {
        protocol::ToWorker::Boot(config) => config,
        protocol::ToWorker::Job(_) | protocol::ToWorker::Recycle => {
            return Err(JsValue::from_str("a job came before the worker booted"))
        }
    };
    INDEX.with(|i| i.set(config.index));
    PHP_BUILD.with(|b| b.set(Some(config.php_build)));
    PHP_VERSION.with(|v| *v.borrow_mut() = config.php_version.clone());
    SERVES_PHP.with(|p| p.set(config.role == protocol::WorkerRole::Php));
    IS_STORAGE.with(|p| p.set(config.role == protocol::WorkerRole::Storage));
    net::configure(config.networking);
    CONFIG.with(|c| *c.borrow_mut() = Some(config));
    Ok(())
}

/// If this worker keeps a saved site's storage: the directories from the
/// OPFS root to the site's folder. The JS glue opens `storage_file_names`
/// there and hands their handles to `keep_storage` before `attach`.
#[wasm_bindgen]
pub fn kept_site_path() -> Option<Vec<String>> {
    let slug = CONFIG.with(|c| c.borrow().as_ref().and_then(|c| c.keeps_site.clone()))?;
    Some(protocol::storage::SITES_PATH.iter().map(|s| s.to_string()).chain([slug]).collect())
}

/// The lock to hold while the kept site's files are open, and how long to
/// wait for it (`protocol::storage::storage_lock_name`).
#[wasm_bindgen]
pub fn kept_site_lock() -> Option<String> {
    let slug = CONFIG.with(|c| c.borrow().as_ref().and_then(|c| c.keeps_site.clone()))?;
    Some(protocol::storage::storage_lock_name(&slug))
}

#[wasm_bindgen]
pub fn storage_lock_wait_ms() -> u32 {
    protocol::storage::STORAGE_LOCK_WAIT_MS
}

#[wasm_bindgen]
pub fn storage_file_names() -> Vec<String> {
    protocol::storage::LOG_FILES.iter().map(|s| s.to_string()).collect()
}

/// How long to wait before trying again to open a kept site's file the
/// browser refused with `error` after `waited_ms`; `undefined`: give up
/// (`protocol::storage::retry_open_after`).
#[wasm_bindgen]
pub fn storage_open_retry_ms(error: &str, waited_ms: u32) -> Option<u32> {
    protocol::storage::retry_open_after(error, waited_ms)
}

/// Takes the sync access handles of the kept site's log files.
#[wasm_bindgen]
pub fn keep_storage(handles: js_sys::Array) -> Result<(), JsValue> {
    storage::keep(&handles).map_err(|e| JsValue::from_str(&e))
}

/// Formats the shared filesystem — from the saved site if this worker keeps
/// one, else by installing the site from `archives` — (the formatting
/// worker), or waits until that is done and attaches to it (the others,
/// which may start at the same time).
#[wasm_bindgen]
pub fn attach(archives: js_sys::Array) -> Result<(), JsValue> {
    let config = CONFIG
        .with(|c| c.borrow_mut().take())
        .ok_or_else(|| JsValue::from_str("attach before configure"))?;
    let fs = if config.format {
        // Set before the filesystem: a worker woken by it reads them at once.
        // (Already set when attaching again after a damaged image.)
        if DOCUMENT_ROOT.get() != Some(&config.document_root) {
            DOCUMENT_ROOT
                .set(config.document_root.clone())
                .map_err(|_| JsValue::from_str("the document root was already set"))?;
        }
        let _ = SITE_URL.set(config.site_url.clone());
        let fs_config = Config { initial_bytes: config.fs_initial_bytes as usize, max_bytes: config.fs_max_bytes as usize, clock };
        let opening = js_sys::Date::now();
        let saved = if storage::keeps_storage() {
            storage::open(fs_config).map_err(|e| JsValue::from_str(&format!("The saved site cannot be opened. {e}")))?
        } else {
            None
        };
        let formatted = match saved {
            Some((fs, notice)) => {
                let open_ms = (js_sys::Date::now() - opening) as u32;
                OPENED.with(|o| o.set(Some(Opened { restored: true, notice, open_ms, from_zips: false })));
                fs
            }
            None if archives.length() == 0 && !config.fetch_if_new.is_empty() => {
                // The page expected the saved site to reopen and sent no
                // archives: the JS glue fetches them and attaches again.
                let urls = config.fetch_if_new.clone();
                CONFIG.with(|c| *c.borrow_mut() = Some(WorkerConfig { fetch_if_new: Vec::new(), ..config }));
                TO_FETCH.with(|f| *f.borrow_mut() = Some(ToFetch { urls: Some(urls), notice: None }));
                return Err(JsValue::from_str("the site's archives are not here yet"));
            }
            None => {
                let formatted = FileSystem::new(fs_config)
                    .map_err(|e| JsValue::from_str(&format!("cannot create the shared filesystem: {}", e.name())))?;
                if storage::keeps_storage() {
                    // Saved by the first `storage_step` (or `store_before_reply`), off the
                    // boot's path; a change before then waits for it.
                    formatted.track_changes();
                }
                // Every worker mounts these (`jobs::shared_paths`): made here,
                // they are part of the first saved image, so a worker's boot
                // changes nothing and its first reply waits for no save.
                for root in jobs::shared_script_roots() {
                    mkdir_all(&formatted, root).map_err(|e| JsValue::from_str(&format!("cannot create {root}: {}", e.name())))?;
                }
                // Read from the page's buffers 64 KiB at a time: the zips
                // and their entries never sit whole in the shared heap.
                let archives: Vec<JsZip> = archives.iter().map(|a| JsZip(js_sys::Uint8Array::new(&a))).collect();
                let archives: Vec<&dyn archive::ZipBytes> = archives.iter().map(|a| a as &dyn archive::ZipBytes).collect();
                let random = random_bytes(site::SALT_BYTES)?;
                if let Err(e) = site::install(&formatted, &config.site, &archives, &config.document_root, &random) {
                    if config.site == protocol::SiteKind::Image && !config.image_fallback.is_empty() {
                        // The JS glue fetches the zips (`archives_to_fetch`)
                        // and attaches again; this filesystem is dropped.
                        let notice = format!("The prebuilt site image is damaged ({e}); the site was installed from the WordPress zips instead.");
                        let urls = config.image_fallback.clone();
                        let retry = WorkerConfig { site: protocol::SiteKind::WordPress, image_fallback: Vec::new(), ..config };
                        CONFIG.with(|c| *c.borrow_mut() = Some(retry));
                        TO_FETCH.with(|f| *f.borrow_mut() = Some(ToFetch { urls: Some(urls), notice: Some(notice) }));
                    }
                    return Err(JsValue::from_str(&format!("cannot install the site: {e}")));
                }
                let notice = TO_FETCH.with(|f| f.borrow_mut().take()).and_then(|fetched| fetched.notice);
                // Only a damaged image leaves a notice here.
                let from_zips = notice.is_some();
                OPENED.with(|o| o.set(Some(Opened { restored: false, notice, open_ms: 0, from_zips })));
                formatted
            }
        };
        // An installed image's compiled scripts fit its files; a reopened
        // site's were cleared for every change before it was saved.
        jobs::compiled_cache_current(&formatted);
        FS.set(formatted).map_err(|_| JsValue::from_str("the shared filesystem was already formatted"))?;
        fs()?
    } else {
        // Blocks this worker (never the page) until the first one is done.
        FS.wait()
    };
    // This index may have belonged to a worker the host terminated: free
    // whatever it still held before taking anything ourselves.
    // SAFETY: the host spawns a worker for an index only after terminating
    // the previous one (host/src/pool.rs `stop_then_respawn`), or for the
    // first time; this worker has not taken anything yet.
    unsafe { fs.release_all(config.index) };
    shared_fs::set_current_owner(config.index);
    fs.set_lock_clock(lock_clock);
    // A fresh PHP runtime has empty caches: nothing before now can be stale.
    jobs::caches_fresh(fs);
    Ok(())
}

/// Archives `attach` asks the JS glue to fetch before it attaches again:
/// the site's, for a saved site that did not reopen after all, or the
/// zips instead of a damaged image (with the notice that says so).
struct ToFetch {
    /// Taken by the glue (`archives_to_fetch`): asked for once.
    urls: Option<Vec<String>>,
    notice: Option<String>,
}

thread_local! {
    static TO_FETCH: std::cell::RefCell<Option<ToFetch>> = const { std::cell::RefCell::new(None) };
}

/// After `attach` failed: the archives to fetch and attach with; `None`
/// for a failure that fetching does not mend.
#[wasm_bindgen]
pub fn archives_to_fetch() -> Option<Vec<String>> {
    TO_FETCH.with(|f| f.borrow_mut().as_mut().and_then(|fetch| fetch.urls.take()))
}

/// A zip in a worker's own (unshared) JS buffer.
struct JsZip(js_sys::Uint8Array);

impl archive::ZipBytes for JsZip {
    fn len(&self) -> usize {
        self.0.length() as usize
    }
    fn read(&self, at: usize, len: usize) -> std::borrow::Cow<'_, [u8]> {
        let start = at.min(self.len()) as u32;
        let end = (at + len).min(self.len()) as u32;
        std::borrow::Cow::Owned(self.0.subarray(start, end).to_vec())
    }
}

fn lock_clock() -> std::time::Duration {
    std::time::Duration::from_secs_f64(js_sys::Date::now() / 1000.0)
}

pub(crate) use files::mkdir_all;

/// The site's base URL, for WordPress's WP_HOME and WP_SITEURL.
#[wasm_bindgen]
pub fn site_url() -> String {
    SITE_URL.get().cloned().unwrap_or_default()
}

thread_local! {
    /// This worker's index (thread-locals are per worker; statics are shared).
    static INDEX: std::cell::Cell<u32> = const { std::cell::Cell::new(u32::MAX) };
    static PHP_BUILD: std::cell::Cell<Option<protocol::PhpBuild>> = const { std::cell::Cell::new(None) };
    static PHP_VERSION: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static SERVES_PHP: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    static IS_STORAGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How the formatting worker made the filesystem.
    static OPENED: std::cell::Cell<Option<Opened>> = const { std::cell::Cell::new(None) };
}

/// `WorkerEvent::StorageOpened`'s fields, kept until the host is told.
struct Opened {
    restored: bool,
    notice: Option<String>,
    open_ms: u32,
    from_zips: bool,
}

/// False for the file server, which never starts PHP.
#[wasm_bindgen]
pub fn serves_php() -> bool {
    SERVES_PHP.with(|p| p.get())
}

/// The php-wasm build this worker loads (`jspi` or `asyncify`), as the host chose.
#[wasm_bindgen]
pub fn php_build() -> Result<String, JsValue> {
    PHP_BUILD
        .with(|b| b.get())
        .map(|b| b.name().to_string())
        .ok_or_else(|| JsValue::from_str("the worker is not attached"))
}

/// The PHP version the host chose (`8.3`).
pub(crate) fn php_version() -> String {
    PHP_VERSION.with(|v| v.borrow().clone())
}

/// php-wasm's loader of the PHP version and build the host chose, relative
/// to the worker's entry script.
#[wasm_bindgen]
pub fn php_loader() -> Result<String, JsValue> {
    CONFIG
        .with(|c| c.borrow().as_ref().map(|c| c.php_loader.clone()))
        .ok_or_else(|| JsValue::from_str("the worker is not configured"))
}

/// This worker's index, which is also its owner id in shared-fs.
#[wasm_bindgen]
pub fn worker_index() -> u32 {
    INDEX.with(|i| i.get())
}

/// True for the storage worker, which runs `storage_step` in a loop.
#[wasm_bindgen]
pub fn is_storage_worker() -> bool {
    IS_STORAGE.with(|p| p.get())
}

/// What the formatting worker that keeps the storage found (`None` for the others).
#[wasm_bindgen]
pub fn storage_opened_event() -> Option<Vec<u8>> {
    let Opened { restored, notice, open_ms, from_zips } = OPENED.with(|o| o.take())?;
    // Also a temporary site's formatter, when it has something to say (an
    // image it could not install).
    (storage::keeps_storage() || notice.is_some())
        .then(|| protocol::encode(&protocol::WorkerEvent::StorageOpened { restored, notice, open_ms, from_zips }))
}

#[wasm_bindgen]
pub fn ready_event() -> Result<Vec<u8>, JsValue> {
    let safe_point = safe_point_address()?;
    Ok(protocol::encode(&protocol::WorkerEvent::Ready { index: worker_index(), safe_point }))
}

/// `[OUTSIDE, INSIDE, KILL_PENDING, KILLED]`: the safe-point word's values
/// (shared-fs's owner.rs), for the JS glue's half of the handshake. Needs no
/// memory: the values are constants.
#[wasm_bindgen]
pub fn safe_point_states() -> Vec<u32> {
    use shared_fs::{SAFE_POINT_INSIDE, SAFE_POINT_KILLED, SAFE_POINT_KILL_PENDING, SAFE_POINT_OUTSIDE};
    vec![SAFE_POINT_OUTSIDE, SAFE_POINT_INSIDE, SAFE_POINT_KILL_PENDING, SAFE_POINT_KILLED]
}

/// Byte address of this worker's safe-point word in the shared memory.
///
/// The host may terminate a worker only while it is outside module code:
/// everything in this memory is shared (the Rust heap and its allocator lock
/// included). The JS glue moves the word `OUTSIDE` → `INSIDE` → `OUTSIDE`
/// around every call into the module; the host moves `OUTSIDE` → `KILLED`
/// (then terminates) or `INSIDE` → `KILL_PENDING` (the worker's lock waits
/// give up with EINTR; on leaving it becomes `KILLED`). See shared-fs's
/// `owner.rs` for the contract.
#[wasm_bindgen]
pub fn safe_point_address() -> Result<u32, JsValue> {
    Ok(fs()?.safe_point_word(worker_index()) as *const _ as usize as u32)
}

/// Size of the shared memory this module runs in.
pub(crate) fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

/// `n` bytes from the browser's cryptographic generator, which fills only
/// memory that is not shared (a JS buffer, copied out).
fn random_bytes(n: usize) -> Result<Vec<u8>, JsValue> {
    let scope: web_sys::WorkerGlobalScope = wasm_bindgen::JsCast::unchecked_into(js_sys::global());
    let buffer = js_sys::Uint8Array::new_with_length(n as u32);
    scope.crypto()?.get_random_values_with_array_buffer_view(&buffer)?;
    Ok(buffer.to_vec())
}

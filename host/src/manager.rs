//! The process manager: a dedicated worker the page starts
//! (manager_link.rs), holding the pool (pool.rs). The service worker's
//! requests come to it over the port the page claimed its scope with, and
//! go on to a PHP worker, which answers the service worker directly: no
//! request waits for the page's main thread, where the site's own scripts
//! (the block editor) run. The page's calls come as `ToManager::Submit`.

use crate::pool::{BootKit, GiveUp, Pending, Pool};
use crate::scheduler::{Limits, Target};
use js_sys::{Array, Uint8Array, WebAssembly};
use protocol::manager::{FromManager, JobTarget, PoolStart, ToManager};
use protocol::{Job, JobResult, PageMessage, ScopedRequest};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, MessagePort};

thread_local! {
    static POOL: RefCell<Option<Pool>> = const { RefCell::new(None) };
    /// The formatting worker's archives, kept until it starts (worker 0
    /// formats when there are no helpers, once php.wasm is compiled).
    static BOOT_ARCHIVES: RefCell<Array> = RefCell::new(Array::new());
    /// The scope the page claimed: the only one whose requests are served.
    static SCOPE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Posts `message` to the page, with `attachments` (transferred).
pub fn to_page(message: &FromManager, attachments: &Array) {
    let data = Array::of1(&Uint8Array::from(&protocol::encode(message)[..]));
    let data = data.concat(attachments);
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    if let Err(e) = scope.post_message_with_transfer(&data, attachments) {
        web_sys::console::error_2(&format!("could not tell the page {message:?}").into(), &e);
    }
}

/// The manager's entry (host/src-js/manager-worker.js): handles `early`,
/// the messages that came while its module loaded, then every later one.
#[wasm_bindgen(js_name = runManager)]
pub fn run_manager(early: Array) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let handler = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| on_message(&event.data()));
    scope.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget(); // for the manager's life
    for event in early.iter() {
        on_message(&event.unchecked_into::<MessageEvent>().data());
    }
}

fn pool() -> Option<Pool> {
    POOL.with(|p| p.borrow().clone())
}

fn on_message(data: &JsValue) {
    let data = Array::from(data);
    let message = match protocol::decode::<ToManager>(&Uint8Array::new(&data.get(0)).to_vec()) {
        Ok(message) => message,
        Err(e) => return web_sys::console::error_1(&format!("the process manager got a {e}").into()),
    };
    let attachment = |i: u32| data.get(i);
    match message {
        ToManager::Start(start) => {
            let archives = data.slice(4, data.length());
            if let Err(e) = start_pool(start, attachment(1), attachment(2), attachment(3), archives) {
                to_page(&FromManager::BootFailed { message: crate::util::message_of(&e) }, &Array::new());
            }
        }
        ToManager::PhpModule => {
            let Some(pool) = pool() else { return };
            pool.set_php_module(attachment(1).unchecked_into());
            let archives = if pool.layout().formatter() == 0 { BOOT_ARCHIVES.with(|a| a.replace(Array::new())) } else { Array::new() };
            boot_worker(&pool, 0, &archives);
        }
        ToManager::Submit { call, target, job } => {
            let reply: MessagePort = attachment(1).unchecked_into();
            let give_up = GiveUp::Page { call };
            let submitted = match pool() {
                Some(pool) => pool.submit(scheduler_target(target), Pending { job, reply, give_up }),
                None => Err(crate::util::error("the pool has not started")),
            };
            if let Err(e) = submitted {
                let result = JobResult::Failed { message: crate::util::message_of(&e), errno: None };
                to_page(&FromManager::GaveUp { call, result }, &Array::new());
            }
        }
        ToManager::ServeScope { scope } => {
            SCOPE.with(|s| *s.borrow_mut() = Some(scope));
            serve_service_worker(attachment(1).unchecked_into());
        }
        ToManager::Forwarded(scoped) => {
            let give_up = GiveUp::Forwarded { request_id: scoped.request_id };
            serve(scoped, attachment(1).unchecked_into(), give_up);
        }
        ToManager::DescribeWorkers { call } => {
            let workers = pool().map(|p| p.describe()).unwrap_or_default();
            to_page(&FromManager::Workers { call, workers }, &Array::new());
        }
    }
}

fn scheduler_target(target: JobTarget) -> Target {
    match target {
        JobTarget::Any => Target::Any,
        JobTarget::Worker(index) => Target::Worker(index),
    }
}

/// Makes the pool and starts its helpers (the formatter first); the PHP
/// workers but the first start after the first page (`Pool::defer`).
fn start_pool(start: PoolStart, memory: JsValue, descriptor: JsValue, worker_module: JsValue, archives: Array) -> Result<(), JsValue> {
    let PoolStart { workers, limits, script_url, config, storage_slug } = start;
    let limits = Limits {
        max_queue: limits.max_queue as usize,
        queue_timeout_ms: limits.queue_timeout_ms,
        request_timeout_ms: limits.request_timeout_ms,
        max_requests: limits.max_requests,
        php_heap_limit_bytes: limits.php_heap_limit_bytes,
    };
    let kit = BootKit {
        script_url,
        memory: (!memory.is_null()).then(|| memory.unchecked_into::<WebAssembly::Memory>()),
        memory_descriptor: descriptor.unchecked_into(),
        worker_module: worker_module.unchecked_into(),
        php_module: Default::default(),
        config,
        storage_slug,
    };
    let pool = Pool::new(workers, limits, kit);
    POOL.with(|p| *p.borrow_mut() = Some(pool.clone()));
    let formatter = pool.layout().formatter();
    pool.defer((1..workers).collect());
    BOOT_ARCHIVES.with(|a| *a.borrow_mut() = archives);
    for index in pool.layout().helpers() {
        let archives = if index == formatter { BOOT_ARCHIVES.with(|a| a.replace(Array::new())) } else { Array::new() };
        boot_worker(&pool, index, &archives);
    }
    Ok(())
}

/// Starts one of the workers the boot waits for, and tells the page when it
/// is up; if it fails, the boot fails and every worker stops (those still
/// waiting for the filesystem would wait forever).
fn boot_worker(pool: &Pool, index: u32, archives: &Array) {
    let ready = match pool.spawn(index, index == pool.layout().formatter(), archives) {
        Ok(ready) => ready,
        Err(e) => return boot_failed(pool, format!("worker {index} could not start: {}", crate::util::message_of(&e))),
    };
    let pool = pool.clone();
    wasm_bindgen_futures::spawn_local(async move {
        match ready.await {
            Ok(Ok(())) => to_page(&FromManager::WorkerReady { index }, &Array::new()),
            Ok(Err(message)) => boot_failed(&pool, format!("worker {index} failed to boot: {message}")),
            Err(_) => boot_failed(&pool, format!("worker {index} went away while booting")),
        }
    });
}

fn boot_failed(pool: &Pool, message: String) {
    pool.terminate_all();
    to_page(&FromManager::BootFailed { message }, &Array::new());
}

/// Requests from the service worker, on the port the page claimed the
/// scope with; a request no worker will answer is answered on it too.
fn serve_service_worker(port: MessagePort) {
    let answer_to = port.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        // `[bytes, reply port]` (protocol::PageMessage::Http).
        let data = Array::from(&event.data());
        let Ok(reply) = data.get(1).dyn_into::<MessagePort>() else { return };
        match protocol::decode::<PageMessage>(&Uint8Array::new(&data.get(0)).to_vec()) {
            Ok(PageMessage::Http(scoped)) => {
                let give_up = GiveUp::ServiceWorker { port: answer_to.clone(), request_id: scoped.request_id };
                serve(scoped, reply, give_up);
            }
            Ok(other) => fail(&reply, format!("the service worker sent {other:?}, not a request")),
            Err(e) => fail(&reply, e),
        }
    });
    port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget(); // serves for the manager's life
}

fn serve(mut scoped: ScopedRequest, reply: MessagePort, give_up: GiveUp) {
    protocol::trace::stamp(&mut scoped.request.headers, "manager", now_ms());
    if SCOPE.with(|s| s.borrow().as_deref() != Some(scoped.scope.as_str())) {
        return fail(&reply, format!("scope {} is not served by this page", scoped.scope));
    }
    let served = match pool() {
        Some(pool) => pool.serve_http(Pending { job: Job::Http(scoped.request), reply: reply.clone(), give_up }),
        None => Err(crate::util::error("the pool has not started")),
    };
    if let Err(e) = served {
        fail(&reply, crate::util::message_of(&e));
    }
}

fn fail(reply: &MessagePort, message: String) {
    let failure = JobResult::Failed { message, errno: None };
    let _ = reply.post_message(&Uint8Array::from(&protocol::encode(&failure)[..]));
}

/// Now on the clock every context shares (for `protocol::trace`).
fn now_ms() -> f64 {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    scope.performance().map_or(0.0, |p| p.time_origin() + p.now())
}

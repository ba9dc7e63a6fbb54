//! The process manager: a dedicated worker the page starts
//! (manager_link.rs), holding the pool (pool.rs). The service worker's
//! requests come to it over the port the page claimed its scope with, and
//! go on to a PHP worker, which answers the service worker directly: no
//! request waits for the page's main thread, where the site's own scripts
//! (the block editor) run. The page's calls come as `ToManager::Submit`.
//! In Firefox it runs on the page instead (`OnPage`,
//! `supervisor::manager_place`).

use crate::pool::{BootKit, GiveUp, Pending, Pool};
use crate::scheduler::Target;
use js_sys::{Array, Uint8Array, WebAssembly};
use protocol::manager::{FromManager, JobTarget, PoolStart, ToManager};
use protocol::{Job, JobResult, PageMessage, ScopedRequest};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, MessagePort};

/// Where the page is, for the manager's messages to it: the parent of the
/// manager's worker, or, when the manager runs on the page itself
/// (`supervisor::manager_place`), one end of a channel.
#[derive(Clone)]
pub enum PageLink {
    Parent,
    Port(MessagePort),
}

impl PageLink {
    /// Posts `message` to the page, with `attachments` (transferred).
    pub fn post(&self, message: &FromManager, attachments: &Array) {
        let data = Array::of1(&Uint8Array::from(&protocol::encode(message)[..])).concat(attachments);
        let posted = match self {
            PageLink::Parent => js_sys::global().unchecked_into::<DedicatedWorkerGlobalScope>().post_message_with_transfer(&data, attachments),
            PageLink::Port(port) => port.post_message_with_transferable(&data, attachments),
        };
        if let Err(e) = posted {
            web_sys::console::error_2(&format!("could not tell the page {message:?}").into(), &e);
        }
    }
}

/// One process manager's state.
struct State {
    page: PageLink,
    pool: RefCell<Option<Pool>>,
    /// The formatting worker's archives, kept until it starts (worker 0
    /// formats when there are no helpers, once php.wasm is compiled).
    boot_archives: RefCell<Array>,
    /// The scope the page claimed: the only one whose requests are served.
    scope: RefCell<Option<String>>,
}

type Shared = Rc<State>;

fn new_state(page: PageLink) -> Shared {
    Rc::new(State { page, pool: RefCell::new(None), boot_archives: RefCell::new(Array::new()), scope: RefCell::new(None) })
}

/// The manager's entry in its own worker (host/src-js/manager-worker.js):
/// handles `early`, the messages that came while its module loaded, then
/// every later one.
#[wasm_bindgen(js_name = runManager)]
pub fn run_manager(early: Array) {
    let state = new_state(PageLink::Parent);
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let handler = {
        let state = state.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| on_message(&state, &event.data()))
    };
    scope.set_onmessage(Some(handler.as_ref().unchecked_ref()));
    handler.forget(); // for the manager's life
    for event in early.iter() {
        on_message(&state, &event.unchecked_into::<MessageEvent>().data());
    }
}

/// A manager running on the page's own thread, talking over `port` as it
/// would from its worker.
pub struct OnPage {
    state: Shared,
    /// Kept while the port listens.
    _handler: Closure<dyn FnMut(MessageEvent)>,
}

impl OnPage {
    pub fn run(port: MessagePort) -> OnPage {
        let state = new_state(PageLink::Port(port.clone()));
        let handler = {
            let state = state.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| on_message(&state, &event.data()))
        };
        port.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        OnPage { state, _handler: handler }
    }

    /// Stops every worker, as terminating the manager's worker would.
    pub fn stop(&self) {
        if let PageLink::Port(port) = &self.state.page {
            port.set_onmessage(None);
            port.close();
        }
        if let Some(pool) = self.state.pool.borrow_mut().take() {
            pool.terminate_all();
        }
    }
}

fn on_message(state: &Shared, data: &JsValue) {
    let data = Array::from(data);
    let message = match protocol::decode::<ToManager>(&Uint8Array::new(&data.get(0)).to_vec()) {
        Ok(message) => message,
        Err(e) => return web_sys::console::error_1(&format!("the process manager got a {e}").into()),
    };
    let attachment = |i: u32| data.get(i);
    let pool = || state.pool.borrow().clone();
    match message {
        ToManager::Start(start) => {
            let archives = data.slice(4, data.length());
            if let Err(e) = start_pool(state, start, attachment(1), attachment(2), attachment(3), archives) {
                state.page.post(&FromManager::BootFailed { message: crate::util::message_of(&e) }, &Array::new());
            }
        }
        ToManager::PhpModule => {
            let Some(pool) = pool() else { return };
            pool.set_php_module(attachment(1).unchecked_into());
            let archives = if pool.layout().formatter() == 0 { state.boot_archives.replace(Array::new()) } else { Array::new() };
            boot_worker(state, &pool, 0, &archives);
        }
        ToManager::Submit { call, target, job } => {
            let reply: MessagePort = attachment(1).unchecked_into();
            let give_up = GiveUp::Page { page: state.page.clone(), call };
            let submitted = match pool() {
                Some(pool) => pool.submit(scheduler_target(target), Pending { job, reply, give_up }),
                None => Err(crate::util::error("the pool has not started")),
            };
            if let Err(e) = submitted {
                let result = JobResult::Failed { message: crate::util::message_of(&e), errno: None };
                state.page.post(&FromManager::GaveUp { call, result }, &Array::new());
            }
        }
        ToManager::ServeScope { scope } => {
            *state.scope.borrow_mut() = Some(scope);
            serve_service_worker(state, attachment(1).unchecked_into());
        }
        ToManager::Forwarded(scoped) => {
            let give_up = GiveUp::Forwarded { page: state.page.clone(), request_id: scoped.request_id };
            serve(state, scoped, attachment(1).unchecked_into(), give_up);
        }
        ToManager::DescribeWorkers { call } => {
            let workers = pool().map(|p| p.describe()).unwrap_or_default();
            state.page.post(&FromManager::Workers { call, workers }, &Array::new());
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
fn start_pool(state: &Shared, start: PoolStart, memory: JsValue, descriptor: JsValue, worker_module: JsValue, archives: Array) -> Result<(), JsValue> {
    let PoolStart { workers, limits, script_url, config, storage_slug } = start;
    let kit = BootKit {
        script_url,
        memory: (!memory.is_null()).then(|| memory.unchecked_into::<WebAssembly::Memory>()),
        memory_descriptor: descriptor.unchecked_into(),
        worker_module: worker_module.unchecked_into(),
        php_module: Default::default(),
        config,
        storage_slug,
        page: state.page.clone(),
    };
    let pool = Pool::new(workers, limits, kit);
    *state.pool.borrow_mut() = Some(pool.clone());
    let formatter = pool.layout().formatter();
    pool.defer((1..workers).collect());
    *state.boot_archives.borrow_mut() = archives;
    for index in pool.layout().helpers() {
        let archives = if index == formatter { state.boot_archives.replace(Array::new()) } else { Array::new() };
        boot_worker(state, &pool, index, &archives);
    }
    Ok(())
}

/// Starts one of the workers the boot waits for, and tells the page when it
/// is up; if it fails, the boot fails and every worker stops (those still
/// waiting for the filesystem would wait forever).
fn boot_worker(state: &Shared, pool: &Pool, index: u32, archives: &Array) {
    let page = state.page.clone();
    let ready = match pool.spawn(index, index == pool.layout().formatter(), archives) {
        Ok(ready) => ready,
        Err(e) => return boot_failed(&page, pool, format!("worker {index} could not start: {}", crate::util::message_of(&e))),
    };
    let pool = pool.clone();
    wasm_bindgen_futures::spawn_local(async move {
        match ready.await {
            Ok(Ok(())) => page.post(&FromManager::WorkerReady { index }, &Array::new()),
            Ok(Err(message)) => boot_failed(&page, &pool, format!("worker {index} failed to boot: {message}")),
            Err(_) => boot_failed(&page, &pool, format!("worker {index} went away while booting")),
        }
    });
}

fn boot_failed(page: &PageLink, pool: &Pool, message: String) {
    pool.terminate_all();
    page.post(&FromManager::BootFailed { message }, &Array::new());
}

/// Requests from the service worker, on the port the page claimed the
/// scope with; a request no worker will answer is answered on it too.
fn serve_service_worker(state: &Shared, port: MessagePort) {
    let answer_to = port.clone();
    let state = state.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        // `[bytes, reply port]` (protocol::PageMessage::Http).
        let data = Array::from(&event.data());
        let Ok(reply) = data.get(1).dyn_into::<MessagePort>() else { return };
        match PageMessage::decode_request(&Uint8Array::new(&data.get(0)).to_vec()) {
            Ok(scoped) => {
                let give_up = GiveUp::ServiceWorker { port: answer_to.clone(), request_id: scoped.request_id };
                serve(&state, scoped, reply, give_up);
            }
            Err(e) => fail(&reply, e),
        }
    });
    port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget(); // serves for the manager's life
}

fn serve(state: &Shared, mut scoped: ScopedRequest, reply: MessagePort, give_up: GiveUp) {
    protocol::trace::stamp(&mut scoped.request.headers, "manager", protocol::web::now_ms());
    if state.scope.borrow().as_deref() != Some(scoped.scope.as_str()) {
        return fail(&reply, format!("scope {} is not served by this page", scoped.scope));
    }
    let pool = state.pool.borrow().clone();
    let served = match pool {
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

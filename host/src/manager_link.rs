//! The page's side of the process manager (manager.rs): starts its worker,
//! sends it the page's calls, and does on the page what only the page can:
//! the `onMessage` listeners, `onSiteStopped`, and passing an answer to the
//! service worker for a request it sent the page.

use crate::supervisor::ManagerPlace;
use crate::util::{error, next_message, set};
use futures_channel::oneshot;
use js_sys::{Array, Function, Object, Uint8Array, WebAssembly};
use protocol::manager::{FromManager, JobTarget, PoolStart, StorageOpened, ToManager, WorkerInfo};
use protocol::{Job, JobResult, PageMessage, ScopedRequest};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageChannel, MessageEvent, MessagePort, Worker, WorkerOptions, WorkerType};

/// A job's reply, decoded (`JobResult::Failed` became an error).
pub struct Reply(pub JobResult);

/// How the boot is going: workers still to report ready, what to call
/// for each, and who hears the end (all up, or why not).
struct Boot {
    waiting: u32,
    on_worker_ready: Box<dyn Fn()>,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct Manager {
    inner: Rc<Inner>,
}

/// The manager's end: its worker, or (Firefox, `supervisor::manager_place`)
/// a channel to it running on this page.
enum Endpoint {
    Worker(Worker),
    Page { port: MessagePort, manager: crate::manager::OnPage },
}

impl Endpoint {
    fn post(&self, data: &Array, transfer: &Array) -> Result<(), JsValue> {
        match self {
            Endpoint::Worker(worker) => worker.post_message_with_transfer(data, transfer),
            Endpoint::Page { port, .. } => port.post_message_with_transferable(data, transfer),
        }
    }

    fn terminate(&self) {
        match self {
            Endpoint::Worker(worker) => worker.terminate(),
            Endpoint::Page { port, manager } => {
                port.close();
                manager.stop();
            }
        }
    }
}

struct Inner {
    endpoint: Endpoint,
    next_call: Cell<u64>,
    /// Calls waiting for their reply: resolved by the worker's answer on
    /// the call's port, or by the manager's `GaveUp`.
    calls: RefCell<HashMap<u64, Function>>,
    describing: RefCell<HashMap<u64, oneshot::Sender<Vec<WorkerInfo>>>>,
    boot: RefCell<Option<Boot>>,
    storage_opened: RefCell<Option<StorageOpened>>,
    storage_slug: Option<String>,
    /// Why a site meant to be saved is not (no storage in this context).
    unsaved_reason: Option<String>,
    /// `client.onMessage`'s listeners, which answer PHP's `post_message_to_js`.
    message_listeners: Rc<RefCell<Vec<Function>>>,
    on_site_stopped: Option<Function>,
    /// Why the manager itself stopped (its module trapped): every call gets it.
    gone: RefCell<Option<String>>,
}

/// Everything the page gives the manager to start the pool.
pub struct Start {
    pub script_url: String,
    pub pool: PoolStart,
    pub memory: Option<WebAssembly::Memory>,
    pub memory_descriptor: Object,
    pub worker_module: WebAssembly::Module,
    /// The formatting worker's archives (transferred).
    pub archives: Array,
    pub unsaved_reason: Option<String>,
    pub on_site_stopped: Option<Function>,
    /// How many workers the boot waits for (`Layout::boot_workers`), and
    /// what to call as each comes up.
    pub boot_workers: u32,
    pub on_worker_ready: Box<dyn Fn()>,
}

impl Manager {
    /// Starts the manager's worker (`script_url`: host/src-js/manager-worker.js)
    /// and the pool in it: its helpers start at once. The receiver hears
    /// when the boot's workers are up, or why not.
    pub fn start(start: Start) -> Result<(Manager, oneshot::Receiver<Result<(), String>>), JsValue> {
        let user_agent = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
        let endpoint = match crate::supervisor::manager_place(&user_agent) {
            ManagerPlace::OwnWorker => {
                let options = WorkerOptions::new();
                options.set_type(WorkerType::Module);
                options.set_name("php-pool-manager");
                Endpoint::Worker(Worker::new_with_options(&start.script_url, &options)?)
            }
            ManagerPlace::Page => {
                let channel = MessageChannel::new()?;
                Endpoint::Page { manager: crate::manager::OnPage::run(channel.port2()), port: channel.port1() }
            }
        };
        let (done, booted) = oneshot::channel();
        let boot = Boot { waiting: start.boot_workers, on_worker_ready: start.on_worker_ready, done };
        let manager = Manager {
            inner: Rc::new(Inner {
                endpoint,
                next_call: Cell::new(1),
                calls: Default::default(),
                describing: Default::default(),
                boot: RefCell::new(Some(boot)),
                storage_opened: RefCell::new(None),
                storage_slug: start.pool.storage_slug.clone(),
                unsaved_reason: start.unsaved_reason,
                message_listeners: Default::default(),
                on_site_stopped: start.on_site_stopped,
                gone: RefCell::new(None),
            }),
        };
        manager.listen();
        let attachments = Array::of3(
            &start.memory.map(JsValue::from).unwrap_or(JsValue::NULL),
            &start.memory_descriptor,
            &start.worker_module,
        )
        .concat(&start.archives);
        let buffers: Array = start.archives.iter().map(|a| JsValue::from(Uint8Array::new(&a).buffer())).collect();
        manager.post(&ToManager::Start(start.pool), &attachments, &buffers)?;
        Ok((manager, booted))
    }

    fn listen(&self) {
        let manager = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = Array::from(&event.data());
            match protocol::decode::<FromManager>(&Uint8Array::new(&data.get(0)).to_vec()) {
                Ok(message) => manager.on_message(message, &data),
                Err(e) => web_sys::console::error_1(&format!("the process manager sent a {e}").into()),
            }
        });
        let worker = match &self.inner.endpoint {
            Endpoint::Worker(worker) => worker,
            Endpoint::Page { port, .. } => {
                port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
                on_message.forget(); // for the page's life
                return;
            }
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget(); // for the page's life
        let manager = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            let detail = js_sys::Reflect::get(&event, &"message".into()).ok().and_then(|m| m.as_string());
            manager.stopped(format!("The process manager stopped ({}).", detail.unwrap_or_else(|| "no reason given".into())));
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
    }

    /// The manager is gone: every call waiting, and every later one, fails.
    fn stopped(&self, why: String) {
        web_sys::console::error_1(&why.as_str().into());
        *self.inner.gone.borrow_mut() = Some(why.clone());
        self.boot_failed(why.clone());
        let result = JobResult::Failed { message: why, errno: None };
        for (_, resolve) in self.inner.calls.borrow_mut().drain() {
            let _ = resolve.call1(&JsValue::NULL, &Uint8Array::from(&protocol::encode(&result)[..]));
        }
        self.inner.describing.borrow_mut().clear();
    }

    fn worker_ready(&self) {
        let mut boot = self.inner.boot.borrow_mut();
        let Some(state) = boot.as_mut() else { return };
        (state.on_worker_ready)();
        state.waiting = state.waiting.saturating_sub(1);
        if state.waiting == 0 {
            if let Some(state) = boot.take() {
                let _ = state.done.send(Ok(()));
            }
        }
    }

    fn boot_failed(&self, message: String) {
        if let Some(state) = self.inner.boot.borrow_mut().take() {
            let _ = state.done.send(Err(message));
        }
    }

    fn on_message(&self, message: FromManager, data: &Array) {
        match message {
            FromManager::WorkerReady { .. } => self.worker_ready(),
            FromManager::BootFailed { message } => self.boot_failed(message),
            FromManager::StorageOpened(opened) => *self.inner.storage_opened.borrow_mut() = Some(opened),
            FromManager::GaveUp { call, result } => {
                if let Some(resolve) = self.inner.calls.borrow_mut().remove(&call) {
                    let _ = resolve.call1(&JsValue::NULL, &Uint8Array::from(&protocol::encode(&result)[..]));
                }
            }
            FromManager::ServiceWorkerReply { request_id, result } => {
                let reply = PageMessage::Reply { request_id, result };
                let controller = web_sys::window().and_then(|w| w.navigator().service_worker().controller());
                let posted = controller.map(|c| c.post_message(&Array::of1(&Uint8Array::from(&protocol::encode(&reply)[..]))));
                if !matches!(posted, Some(Ok(()))) {
                    web_sys::console::error_1(&format!("could not answer the service worker's request {request_id}").into());
                }
            }
            FromManager::Workers { call, workers } => {
                if let Some(sender) = self.inner.describing.borrow_mut().remove(&call) {
                    let _ = sender.send(workers);
                }
            }
            FromManager::SiteStopped { reason, saved } => {
                if let Some(callback) = &self.inner.on_site_stopped {
                    let event = Object::new();
                    set(&event, "reason", reason.as_str());
                    set(&event, "saved", saved);
                    let _ = callback.call1(&JsValue::NULL, &event);
                }
            }
            FromManager::PhpMessage { data: text } => {
                let Ok(port) = data.get(1).dyn_into::<MessagePort>() else { return };
                let listeners = self.inner.message_listeners.borrow().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let answer = answer_php_message(&listeners, &text).await;
                    let bytes = protocol::encode(&protocol::PhpMessageAnswer(answer));
                    if let Err(e) = port.post_message(&Uint8Array::from(&bytes[..])) {
                        web_sys::console::error_2(&"could not answer a PHP message".into(), &e);
                    }
                    port.close();
                });
            }
        }
    }

    fn post(&self, message: &ToManager, attachments: &Array, transfer: &Array) -> Result<(), JsValue> {
        let data = Array::of1(&Uint8Array::from(&protocol::encode(message)[..])).concat(attachments);
        self.inner.endpoint.post(&data, transfer)
    }

    /// php.wasm is compiled: PHP worker 0 starts.
    pub fn php_module(&self, module: &WebAssembly::Module) -> Result<(), JsValue> {
        self.post(&ToManager::PhpModule, &Array::of1(module), &Array::new())
    }

    /// The service worker's requests for `scope` arrive on `port` (the
    /// claim's): from now on they go to the manager without the page.
    pub fn serve_scope(&self, scope: &str, port: &MessagePort) -> Result<(), JsValue> {
        self.post(&ToManager::ServeScope { scope: scope.into() }, &Array::of1(port), &Array::of1(port))
    }

    /// A request the service worker sent the page itself, after it
    /// restarted and lost the claim's port.
    pub fn forward(&self, scoped: ScopedRequest, reply: &MessagePort) -> Result<(), JsValue> {
        self.post(&ToManager::Forwarded(scoped), &Array::of1(reply), &Array::of1(reply))
    }

    /// Runs `job` on a worker `target` allows; resolves with its reply.
    pub async fn submit(&self, target: JobTarget, job: Job) -> Result<Reply, JsValue> {
        if let Some(why) = self.inner.gone.borrow().clone() {
            return Err(error(why));
        }
        let call = self.inner.next_call.get();
        self.inner.next_call.set(call + 1);
        let channel = MessageChannel::new()?;
        let (reply, resolve) = next_message(&channel.port1());
        self.inner.calls.borrow_mut().insert(call, resolve);
        let port = channel.port2();
        if let Err(e) = self.post(&ToManager::Submit { call, target, job }, &Array::of1(&port), &Array::of1(&port)) {
            self.inner.calls.borrow_mut().remove(&call);
            return Err(e);
        }
        let data = JsFuture::from(reply).await;
        self.inner.calls.borrow_mut().remove(&call);
        channel.port1().close();
        let bytes = Uint8Array::new(&data?).to_vec();
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

    /// Each PHP worker's state and counts, as the manager has them now.
    pub async fn workers(&self) -> Result<Vec<WorkerInfo>, JsValue> {
        if let Some(why) = self.inner.gone.borrow().clone() {
            return Err(error(why));
        }
        let call = self.inner.next_call.get();
        self.inner.next_call.set(call + 1);
        let (sender, receiver) = oneshot::channel();
        self.inner.describing.borrow_mut().insert(call, sender);
        self.post(&ToManager::DescribeWorkers { call }, &Array::new(), &Array::new())?;
        receiver.await.map_err(|_| error("the process manager stopped"))
    }

    /// Stops the manager and, with it, every worker: for a boot that failed.
    pub fn terminate(&self) {
        self.inner.endpoint.terminate();
    }

    pub fn storage_opened(&self) -> Option<StorageOpened> {
        self.inner.storage_opened.borrow().clone()
    }

    pub fn storage_slug(&self) -> Option<String> {
        self.inner.storage_slug.clone()
    }

    pub fn unsaved_reason(&self) -> Option<String> {
        self.inner.unsaved_reason.clone()
    }

    pub fn message_listeners(&self) -> Rc<RefCell<Vec<Function>>> {
        self.inner.message_listeners.clone()
    }
}

/// What `post_message_to_js(data)` returns to PHP, as in Playground: the
/// listeners in the order they were added, each awaited, and the first truthy
/// answer wins (a string as is, anything else as JSON); `""` when none gives
/// one. A listener that throws is reported and skipped.
async fn answer_php_message(listeners: &[Function], data: &str) -> String {
    for listener in listeners {
        let answered = listener.call1(&JsValue::NULL, &JsValue::from_str(data));
        let answered = match answered {
            Ok(value) if value.is_instance_of::<js_sys::Promise>() => JsFuture::from(value.unchecked_into::<js_sys::Promise>()).await,
            other => other,
        };
        match answered {
            Ok(value) if value.is_truthy() => {
                return value.as_string().unwrap_or_else(|| js_sys::JSON::stringify(&value).map(String::from).unwrap_or_default());
            }
            Ok(_) => {}
            Err(e) => web_sys::console::error_2(&"an onMessage listener threw".into(), &e),
        }
    }
    String::new()
}

//! The PHP workers as Web Workers: starting and replacing them, sending them
//! jobs, enforcing the scheduler's limits with timers, and feeding what the
//! workers report back into the scheduler. It runs in the process manager
//! (manager.rs), a worker of its own, never on the page.

use crate::supervisor::{self, AfterDeath, Death, GaveUp, Layout};
use crate::manager::PageLink;
use crate::scheduler::{AfterJob, BootFailed, Dispatch, Expired, JobId, Limits, Rejected, Scheduler, Target, WorkerState};
use crate::util::error;
use shared_fs::SafePointState;
use futures_channel::oneshot;
use js_sys::{Array, Int32Array, Object, Uint8Array, WebAssembly};
use protocol::manager::{FromManager, StorageOpened, WorkerInfo, WorkerStateName};
use protocol::{Job, JobEnvelope, JobResult, ToWorker, WorkerConfig, WorkerEvent, WorkerRole};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort, Worker, WorkerOptions, WorkerType};

/// A job waiting for or running on a worker. `reply` is transferred to the
/// worker, which answers on it; `give_up` is how the pool answers instead
/// when no worker will (queue full or timed out, timeout, crash).
pub struct Pending {
    pub job: Job,
    pub reply: MessagePort,
    pub give_up: GiveUp,
}

pub enum GiveUp {
    /// A request the service worker sent over its port: answer it there.
    ServiceWorker { port: MessagePort, request_id: u64 },
    /// A request the service worker sent the page (it had restarted): the
    /// page passes the answer on.
    Forwarded { page: PageLink, request_id: u64 },
    /// A call from the page (`ToManager::Submit`).
    Page { page: PageLink, call: u64 },
}

impl GiveUp {
    fn answer(&self, result: &JobResult) {
        let result = result.clone();
        match self {
            GiveUp::ServiceWorker { port, request_id } => {
                let reply = protocol::PageMessage::Reply { request_id: *request_id, result };
                let message = Array::of1(&Uint8Array::from(&protocol::encode(&reply)[..]));
                if let Err(e) = port.post_message(&message) {
                    web_sys::console::error_2(&"could not answer the service worker".into(), &e);
                }
            }
            GiveUp::Forwarded { page, request_id } => page.post(&FromManager::ServiceWorkerReply { request_id: *request_id, result }, &Array::new()),
            GiveUp::Page { page, call } => page.post(&FromManager::GaveUp { call: *call, result }, &Array::new()),
        }
    }
}

/// Everything needed to start a worker, kept to replace dead ones.
pub struct BootKit {
    pub script_url: String,
    /// The shared memory; `None` when the page is not isolated and the
    /// single worker makes its own from `memory_descriptor`.
    pub memory: Option<WebAssembly::Memory>,
    pub memory_descriptor: Object,
    pub worker_module: WebAssembly::Module,
    /// Set once php.wasm is compiled (`Pool::set_php_module`): the helpers
    /// start, and format the filesystem, before it is.
    pub php_module: std::cell::OnceCell<WebAssembly::Module>,
    pub config: WorkerConfig,
    /// The saved site's slug (`None`: a temporary site).
    pub storage_slug: Option<String>,
    /// Where the pool's news for the page goes.
    pub page: PageLink,
}

impl BootKit {
    /// `[ToWorker::Boot, memory, descriptor, stack bytes, worker module, php module, ...archives]`.
    fn message(&self, index: u32, format: bool, role: WorkerRole, archives: &Array) -> Array {
        // The storage worker keeps the saved site; without a shared memory
        // the single PHP worker keeps it itself.
        let keeps = role == WorkerRole::Storage || (self.memory.is_none() && role == WorkerRole::Php);
        let keeps_site = if keeps { self.storage_slug.clone() } else { None };
        let config = WorkerConfig { index, format, role, keeps_site, ..self.config.clone() };
        let bytes = Uint8Array::from(&protocol::encode(&ToWorker::Boot(config))[..]);
        let message = Array::of5(
            &bytes,
            &self.memory.clone().map(JsValue::from).unwrap_or(JsValue::NULL),
            &self.memory_descriptor,
            &JsValue::from(protocol::WORKER_STACK_BYTES),
            &self.worker_module,
        );
        // Helpers run no PHP and may start before php.wasm is compiled.
        message.push(&self.php_module.get().map(JsValue::from).unwrap_or(JsValue::NULL));
        message.concat(archives)
    }
}

/// How often to retry stopping a worker that is inside module code.
const STOP_RETRY_MS: i32 = 5;

type ReadySender = oneshot::Sender<Result<(), String>>;

/// A running job, kept so a timeout or crash can still be answered.
struct InFlight {
    id: JobId,
    give_up: GiveUp,
    http: bool,
}

#[derive(Default)]
struct Slot {
    worker: Option<Worker>,
    safe_point: Option<u32>,
    in_flight: Option<InFlight>,
    ready: Option<ReadySender>,
    /// Bumped on each replacement so a dead worker's late messages are ignored.
    generation: u32,
    /// Its PHP runtime's heap, as of its last job (`client.workers()`).
    php_heap_bytes: u64,
    /// The worker reported its own death: it never calls into module code
    /// again, so it may be terminated whatever its safe-point word says (a
    /// trap inside module code may leave it INSIDE).
    dead: bool,
}

#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    kit: BootKit,
    scheduler: RefCell<Scheduler<Pending>>,
    /// The PHP workers' slots, then the file server's if there is one.
    slots: RefCell<Vec<Slot>>,
    timer: RefCell<Option<i32>>,
    /// Which worker does what; the helpers sit outside the scheduler.
    layout: Layout,
    /// Requests the file server holds, by job id, kept to hand to a PHP
    /// worker if it says so, or to answer if it dies.
    file_jobs: RefCell<HashMap<u64, Pending>>,
    next_file_job: Cell<u64>,
    /// Why the site stopped (`fail_site`): every job is answered with it.
    failed: RefCell<Option<String>>,
    /// PHP workers not started yet: they start once the first page is
    /// served, or as many as the jobs that wait need (`start_for_waiting`),
    /// so the first page does not share the machine with their start-up.
    deferred: RefCell<Vec<u32>>,
}

/// Answers a job the pool gives up on (`GaveUp::answer`).
fn give_up(to: &GiveUp, http: bool, why: &GaveUp) {
    to.answer(&why.answer(http));
}

impl Pool {
    /// `count` PHP workers, plus a file server when the memory is shared
    /// (it must reach the same filesystem), plus then a storage worker when
    /// the site is saved.
    pub fn new(count: u32, limits: Limits, kit: BootKit) -> Pool {
        let layout = Layout::new(count, kit.memory.is_some(), kit.storage_slug.is_some());
        let slots = layout.slots();
        Pool {
            inner: Rc::new(Inner {
                kit,
                scheduler: RefCell::new(Scheduler::new(count, limits)),
                slots: RefCell::new((0..slots).map(|_| Slot::default()).collect()),
                timer: RefCell::new(None),
                layout,
                file_jobs: RefCell::new(HashMap::new()),
                next_file_job: Cell::new(1),
                failed: RefCell::new(None),
                deferred: RefCell::new(Vec::new()),
            }),
        }
    }

    /// php.wasm, compiled: PHP workers can start from here on.
    pub fn set_php_module(&self, module: WebAssembly::Module) {
        let _ = self.inner.kit.php_module.set(module);
    }

    /// PHP workers to start later (see `Inner::deferred`).
    pub fn defer(&self, indices: Vec<u32>) {
        *self.inner.deferred.borrow_mut() = indices;
    }

    /// Starts the deferred workers, once.
    fn start_deferred(&self) {
        let indices = std::mem::take(&mut *self.inner.deferred.borrow_mut());
        for index in indices {
            self.join_site(index);
        }
    }

    /// A job waits: starts the deferred workers the queue calls for
    /// (`supervisor::deferred_to_start`).
    fn start_for_waiting(&self) {
        let deferred = self.inner.deferred.borrow().len();
        if deferred == 0 {
            return;
        }
        let (waiting, booting) = {
            let scheduler = self.inner.scheduler.borrow();
            let booting = (0..scheduler.worker_count()).filter(|&i| scheduler.state(i) == Some(WorkerState::Booting)).count();
            (scheduler.queued(), booting)
        };
        let starting = crate::supervisor::deferred_to_start(waiting, booting.saturating_sub(deferred), deferred);
        let indices: Vec<u32> = self.inner.deferred.borrow_mut().drain(..starting).collect();
        for index in indices {
            self.join_site(index);
        }
    }

    /// Starts PHP worker `index` for a site that is up; a start that fails
    /// is retried, then given up (`Scheduler::boot_failed`).
    fn join_site(&self, index: u32) {
        let ready = match self.spawn(index, false, &Array::new()) {
            Ok(ready) => ready,
            Err(e) => {
                web_sys::console::error_2(&format!("could not start worker {index}").into(), &e);
                return;
            }
        };
        let pool = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(Err(why)) = ready.await else { return };
            if pool.inner.layout.role(index) != WorkerRole::Php {
                // A helper's failed restart is only reported: nothing starts
                // it again (its waiters time out, saying so).
                web_sys::console::error_1(&format!("worker {index} failed to start: {why}").into());
                return;
            }
            let outcome = pool.inner.scheduler.borrow_mut().boot_failed(index);
            match outcome {
                BootFailed::RetryAfterMs(ms) => {
                    web_sys::console::warn_1(&format!("worker {index} failed to start ({why}); trying again").into());
                    let again = pool.clone();
                    crate::util::set_timeout(move || again.stop_then_respawn(index), ms);
                }
                BootFailed::GiveUp(stranded) => {
                    web_sys::console::error_1(&format!("worker {index} failed to start, for good: {why}").into());
                    if let Some(worker) = pool.inner.slots.borrow_mut()[index as usize].worker.take() {
                        worker.terminate();
                    }
                    let reason = GaveUp::WorkerFailedToStart { index, why };
                    for (_, pending) in stranded {
                        give_up(&pending.give_up, matches!(pending.job, Job::Http(_)), &reason);
                    }
                }
            }
        });
    }

    /// Which worker does what, for the boot to spawn them.
    pub fn layout(&self) -> Layout {
        self.inner.layout
    }

    /// A request from the service worker: static files go to the file
    /// server when it is up, everything else to a free PHP worker.
    pub fn serve_http(&self, pending: Pending) -> Result<(), JsValue> {
        if self.answer_if_failed(&pending) {
            return Ok(());
        }
        let static_get = match &pending.job {
            Job::Http(request) => {
                let path = request.path_and_query.split('?').next().unwrap_or("");
                (request.method == "GET" || request.method == "HEAD") && protocol::static_files::is_static_asset(path)
            }
            _ => false,
        };
        let server = self.inner.layout.file_server.filter(|&i| self.inner.slots.borrow()[i as usize].safe_point.is_some());
        match server {
            Some(index) if static_get => {
                let id = self.inner.next_file_job.get();
                self.inner.next_file_job.set(id + 1);
                self.post_job(index, id, &pending.job, &pending.reply);
                self.inner.file_jobs.borrow_mut().insert(id, pending);
                Ok(())
            }
            _ => self.submit(Target::Any, pending),
        }
    }

    /// A message with no attachment.
    fn post(&self, worker: u32, message: &ToWorker) {
        let message = Array::of1(&Uint8Array::from(&protocol::encode(message)[..]));
        let posted = match &self.inner.slots.borrow()[worker as usize].worker {
            Some(w) => w.post_message(&message),
            None => Err(error(format!("worker {worker} is not running"))),
        };
        if let Err(e) = posted {
            web_sys::console::error_2(&format!("could not send {message:?} to worker {worker}").into(), &e);
        }
    }

    fn post_job(&self, worker: u32, id: JobId, job: &Job, reply: &MessagePort) {
        let envelope = protocol::encode(&ToWorker::Job(JobEnvelope { id, job: job.clone() }));
        let message = Array::of2(&Uint8Array::from(&envelope[..]), reply);
        let slots = self.inner.slots.borrow();
        let posted = match &slots[worker as usize].worker {
            Some(w) => w.post_message_with_transfer(&message, &Array::of1(reply)),
            None => Err(error(format!("worker {worker} is not running"))),
        };
        if let Err(e) = posted {
            web_sys::console::error_2(&format!("could not send job {id} to worker {worker}").into(), &e);
        }
    }

    /// The file server's and the storage worker's events: its jobs end, go
    /// to PHP, or die with it.
    fn on_helper_event(&self, index: u32, event: WorkerEvent, ports: Array) {
        match event {
            WorkerEvent::Ready { safe_point, .. } => {
                self.inner.slots.borrow_mut()[index as usize].safe_point = Some(safe_point);
                self.boot_finished(index, Ok(()));
            }
            WorkerEvent::JobDone { id, .. } => {
                self.inner.file_jobs.borrow_mut().remove(&id);
            }
            WorkerEvent::NeedsPhp { id } => {
                let pending = self.inner.file_jobs.borrow_mut().remove(&id);
                let port = ports.get(0).dyn_into::<MessagePort>();
                if let (Some(pending), Ok(reply)) = (pending, port) {
                    if let Err(e) = self.submit(Target::Any, Pending { reply, ..pending }) {
                        web_sys::console::error_1(&e);
                    }
                }
            }
            WorkerEvent::PhpMessage { .. } => {
                web_sys::console::error_1(&format!("worker {index} runs no PHP, yet sent a PHP message").into());
            }
            WorkerEvent::StorageOpened { .. } => {} // taken in `spawn`'s handler
        }
    }

    /// Answers what the dead file server held and starts a new one.
    fn replace_file_server(&self, index: u32) {
        let lost: Vec<Pending> = self.inner.file_jobs.borrow_mut().drain().map(|(_, p)| p).collect();
        for pending in lost {
            give_up(&pending.give_up, true, &GaveUp::FileServerCrashed);
        }
        self.stop_then_respawn(index);
    }

    /// Starts worker `index`; the receiver fires when it is ready (or failed).
    /// The worker that formats the filesystem installs the site from
    /// `archives` (transferred: the page keeps no copy).
    pub fn spawn(
        &self,
        index: u32,
        format: bool,
        archives: &Array,
    ) -> Result<oneshot::Receiver<Result<(), String>>, JsValue> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name(&format!("php-worker-{index}"));
        let role = self.inner.layout.role(index);
        if role == WorkerRole::Php && self.inner.kit.php_module.get().is_none() {
            return Err(error(format!("worker {index} cannot start before php.wasm is compiled")));
        }
        let worker = Worker::new_with_options(&self.inner.kit.script_url, &options)?;
        let (sender, receiver) = oneshot::channel();
        let generation = {
            let mut slots = self.inner.slots.borrow_mut();
            let slot = &mut slots[index as usize];
            slot.generation += 1;
            slot.ready = Some(sender);
            slot.safe_point = None;
            slot.dead = false;
            slot.generation
        };

        let pool = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if !pool.is_current(index, generation) {
                return;
            }
            let data = event.data();
            if data.is_string() || js_sys::Reflect::has(&data, &"died".into()).unwrap_or(false) {
                // Its last words, in plain JS: its Rust module is not up or
                // cannot be trusted (worker-entry.js `die`).
                pool.died(index, role, &data);
                return;
            }
            match protocol::decode::<WorkerEvent>(&Uint8Array::new(&data).to_vec()) {
                Ok(WorkerEvent::StorageOpened { restored, notice, open_ms, from_zips }) => {
                    let opened = StorageOpened { restored, notice, open_ms, from_zips };
                    pool.inner.kit.page.post(&FromManager::StorageOpened(opened), &Array::new());
                }
                Ok(decoded) if role != WorkerRole::Php => pool.on_helper_event(index, decoded, event.ports()),
                Ok(decoded) => pool.on_event(index, decoded, event.ports()),
                Err(e) => web_sys::console::error_1(&format!("worker {index}: {e}").into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget(); // lives as long as the page; ignored once replaced

        let pool = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
            // Handled here: unhandled, it would go on to the page as the
            // process manager's own error.
            event.prevent_default();
            if !pool.is_current(index, generation) {
                return;
            }
            // WebKit fires a plain Event, with no message, when a worker's
            // script fails before it runs.
            let detail = js_sys::Reflect::get(&event, &"message".into()).ok().and_then(|m| m.as_string());
            let message = format!(
                "worker {index}: {}",
                detail.unwrap_or_else(|| "its script failed to load or start (the browser gave no reason)".into())
            );
            pool.after_death(index, role, false, message, None);
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();

        let buffers: Array = archives.iter().map(|a| JsValue::from(Uint8Array::new(&a).buffer())).collect();
        worker.post_message_with_transfer(&self.inner.kit.message(index, format, role, archives), &buffers)?;
        self.inner.slots.borrow_mut()[index as usize].worker = Some(worker);
        Ok(receiver)
    }

    /// A worker reported its death without its Rust module: a string (boot
    /// failed), or `{died, allocatorWord, safePoint}` (its runtime died: a
    /// call into its module was cut short, or php.wasm trapped).
    fn died(&self, index: u32, role: WorkerRole, data: &JsValue) {
        let field = |name: &str| js_sys::Reflect::get(data, &name.into()).unwrap_or(JsValue::UNDEFINED);
        let message = data.as_string().or_else(|| field("died").as_string()).unwrap_or_else(|| format!("{data:?}"));
        let allocator_word = field("allocatorWord").as_f64().map_or(0, |w| w as u32);
        let held_allocator = protocol::heap_lock::is_held_by(allocator_word, index);
        self.inner.slots.borrow_mut()[index as usize].dead = true;
        let safe_point = field("safePoint").as_f64().map(|w| w as i32);
        self.after_death(index, role, held_allocator, message, safe_point);
    }

    /// Carries out `supervisor::after_death` for worker `index`; its last
    /// words' safe-point word, when it said them, goes into the log.
    fn after_death(&self, index: u32, role: WorkerRole, held_allocator: bool, message: String, safe_point: Option<i32>) {
        let booting = self.inner.slots.borrow()[index as usize].ready.is_some();
        // Booting in the scheduler, for a worker that was ready, means it is
        // already being stopped (its job timed out); that stop's next retry
        // terminates it.
        let being_stopped = !booting && self.inner.scheduler.borrow().state(index) == Some(WorkerState::Booting);
        let next = supervisor::after_death(Death { role, held_allocator, booting, being_stopped });
        if !matches!(next, AfterDeath::StopSite | AfterDeath::BootFailed) {
            let logged = match safe_point {
                Some(word) => format!("worker {index} died (safe-point word {word}): {message}"),
                None => message.clone(),
            };
            web_sys::console::error_1(&logged.into());
        }
        match next {
            AfterDeath::StopSite => self.fail_site(index, &message),
            AfterDeath::BootFailed => self.boot_finished(index, Err(message)),
            AfterDeath::ReplaceFileServer => self.replace_file_server(index),
            AfterDeath::RestartStorage => self.stop_then_respawn(index),
            AfterDeath::ReplacePhp => self.replace(index, Some(&message)),
            AfterDeath::LeaveToStop => {}
        }
    }

    /// Worker `index` died holding the shared heap's allocator lock: every
    /// other worker's next allocation would wait forever, and the heap may be
    /// half-way through a change nothing can finish (worker/src/fault.rs). The
    /// site stops: every worker is terminated, and every job, running, queued
    /// or still to come, is answered with the reason instead of hanging.
    fn fail_site(&self, index: u32, message: &str) {
        let saved = self.inner.kit.storage_slug.is_some();
        let reason = supervisor::site_stopped_reason(index, saved);
        web_sys::console::error_1(&format!("{reason}\n{message}").into());
        *self.inner.failed.borrow_mut() = Some(reason.clone());
        self.terminate_all();
        let count = self.inner.scheduler.borrow().worker_count();
        for worker in 0..count {
            let lost = self.inner.scheduler.borrow_mut().worker_lost(worker, worker == index);
            let in_flight = self.inner.slots.borrow_mut()[worker as usize].in_flight.take();
            if let (Some(_), Some(f)) = (lost, in_flight) {
                give_up(&f.give_up, f.http, &GaveUp::SiteStopped(reason.clone()));
            }
        }
        let Expired { queued, .. } = self.inner.scheduler.borrow_mut().expire(f64::INFINITY);
        let file_jobs: Vec<Pending> = self.inner.file_jobs.borrow_mut().drain().map(|(_, p)| p).collect();
        for pending in queued.into_iter().map(|(_, p)| p).chain(file_jobs) {
            self.answer_if_failed(&pending);
        }
        self.schedule_expiry();
        // After the jobs above were answered.
        self.inner.kit.page.post(&FromManager::SiteStopped { reason, saved }, &Array::new());
    }

    /// Once the site has stopped, answers `pending` with why; true if it did.
    fn answer_if_failed(&self, pending: &Pending) -> bool {
        let failed = self.inner.failed.borrow();
        let Some(reason) = failed.as_deref() else { return false };
        give_up(&pending.give_up, matches!(pending.job, Job::Http(_)), &GaveUp::SiteStopped(reason.to_string()));
        true
    }

    fn is_current(&self, index: u32, generation: u32) -> bool {
        self.inner.slots.borrow().get(index as usize).map(|s| s.generation) == Some(generation)
    }

    fn boot_finished(&self, index: u32, outcome: Result<(), String>) {
        let sender = self.inner.slots.borrow_mut()[index as usize].ready.take();
        if let Some(sender) = sender {
            let _ = sender.send(outcome);
        }
    }

    fn on_event(&self, index: u32, event: WorkerEvent, ports: Array) {
        match event {
            WorkerEvent::Ready { safe_point, .. } => {
                self.inner.slots.borrow_mut()[index as usize].safe_point = Some(safe_point);
                self.boot_finished(index, Ok(()));
                let next = self.inner.scheduler.borrow_mut().worker_ready(index, protocol::web::now_ms());
                self.run(next);
            }
            WorkerEvent::JobDone { id, php_heap_bytes } => {
                let mut slots = self.inner.slots.borrow_mut();
                let mut page_done = false;
                slots[index as usize].php_heap_bytes = php_heap_bytes;
                if slots[index as usize].in_flight.as_ref().map(|f| f.id) == Some(id) {
                    page_done = slots[index as usize].in_flight.take().is_some_and(|f| f.http);
                }
                drop(slots);
                let after = self.inner.scheduler.borrow_mut().complete_or_recycle(index, id, protocol::web::now_ms(), php_heap_bytes);
                match after {
                    AfterJob::Next(next) => self.run(next),
                    // It reports `Ready` once its fresh runtime is up.
                    AfterJob::Recycle => self.post(index, &ToWorker::Recycle),
                }
                if page_done {
                    self.start_deferred();
                }
            }
            WorkerEvent::NeedsPhp { id } => {
                web_sys::console::error_1(&format!("PHP worker {index} cannot serve job {id}").into());
            }
            WorkerEvent::PhpMessage { data } => {
                // The page's `onMessage` listeners answer on the port.
                let Ok(port) = ports.get(0).dyn_into::<MessagePort>() else {
                    web_sys::console::error_1(&format!("worker {index}: a PHP message without its reply port").into());
                    return;
                };
                self.inner.kit.page.post(&FromManager::PhpMessage { data }, &Array::of1(&port));
            }
            WorkerEvent::StorageOpened { .. } => {} // taken in `spawn`'s handler
        }
    }

    pub fn submit(&self, target: Target, pending: Pending) -> Result<(), JsValue> {
        if self.answer_if_failed(&pending) {
            return Ok(());
        }
        let submitted = self.inner.scheduler.borrow_mut().submit(target, pending, protocol::web::now_ms());
        match submitted {
            Ok(None) => self.start_for_waiting(), // it waits: more hands now
            Ok(dispatch) => self.run(dispatch),
            Err(Rejected::QueueFull(p)) => {
                let http = matches!(p.job, Job::Http(_));
                give_up(&p.give_up, http, &GaveUp::QueueFull);
            }
            Err(Rejected::NoSuchWorker(_, message)) => return Err(error(message)),
        }
        self.schedule_expiry();
        Ok(())
    }

    fn run(&self, dispatch: Option<Dispatch<Pending>>) {
        let Some(Dispatch { worker, id, job: Pending { job, reply, give_up } }) = dispatch else { return };
        let http = matches!(job, Job::Http(_));
        self.inner.slots.borrow_mut()[worker as usize].in_flight = Some(InFlight { id, give_up, http });
        self.post_job(worker, id, &job, &reply);
        self.schedule_expiry();
    }

    /// Keeps one timer armed for the scheduler's next deadline.
    fn schedule_expiry(&self) {
        if let Some(handle) = self.inner.timer.borrow_mut().take() {
            crate::util::clear_timeout(handle);
        }
        let Some(deadline) = self.inner.scheduler.borrow().next_deadline() else { return };
        let pool = self.clone();
        // A browser fires a longer delay than i32::MAX ms at once (a
        // requestTimeoutMs that large would spin this timer).
        let delay = ((deadline - protocol::web::now_ms()).max(0.0).ceil() + 1.0).min(i32::MAX as f64) as i32;
        *self.inner.timer.borrow_mut() = Some(crate::util::set_timeout(move || pool.expire(), delay));
    }

    fn expire(&self) {
        *self.inner.timer.borrow_mut() = None;
        let Expired { queued, overdue } = self.inner.scheduler.borrow_mut().expire(protocol::web::now_ms());
        for (_, pending) in queued {
            let http = matches!(pending.job, Job::Http(_));
            give_up(&pending.give_up, http, &GaveUp::WaitedTooLong);
        }
        for (worker, _) in overdue {
            let in_flight = self.inner.slots.borrow_mut()[worker as usize].in_flight.take();
            if let Some(f) = in_flight {
                give_up(&f.give_up, f.http, &GaveUp::RanTooLong);
            }
            self.replace(worker, None);
        }
        self.schedule_expiry();
    }

    /// Stops worker `index` at a safe point and starts a fresh one in its
    /// place; `death`: its last words, if it crashed.
    fn replace(&self, index: u32, death: Option<&str>) {
        let lost = self.inner.scheduler.borrow_mut().worker_lost(index, death.is_some());
        let in_flight = self.inner.slots.borrow_mut()[index as usize].in_flight.take();
        if let (Some(_), Some(f), Some(death)) = (lost, in_flight, death) {
            give_up(&f.give_up, f.http, &GaveUp::from_crash(death));
        }
        self.stop_then_respawn(index);
    }

    fn stop_then_respawn(&self, index: u32) {
        if self.inner.failed.borrow().is_some() {
            return; // every worker is gone for good
        }
        let (worker, safe_point, dead) = {
            let slots = self.inner.slots.borrow();
            let slot = &slots[index as usize];
            (slot.worker.clone(), slot.safe_point, slot.dead)
        };
        if let (Some(worker), true) = (&worker, dead) {
            // It reported its own death and calls into module code no more:
            // whatever its word says (a trap inside may have left it INSIDE),
            // it is at a safe point for good. What it held, the replacement's
            // `release_all` frees and repairs.
            worker.terminate();
        } else if let (Some(worker), Some(address), Some(memory)) = (&worker, safe_point, &self.inner.kit.memory) {
            let words = Int32Array::new(&memory.buffer());
            let word = address / 4;
            let load = || js_sys::Atomics::load(&words, word).unwrap_or(0) as u32;
            let compare_exchange = |from: u32, to: u32| {
                let found = js_sys::Atomics::compare_exchange(&words, word, from as i32, to as i32).unwrap_or(!0) as u32;
                if found == from { Ok(found) } else { Err(found) }
            };
            // shared-fs's own handshake, on the word from out here.
            if shared_fs::request_stop(load, compare_exchange) != SafePointState::Killed {
                // Inside module code: asked to stop (its lock waits give up);
                // come back when it has left.
                let pool = self.clone();
                crate::util::set_timeout(move || pool.stop_then_respawn(index), STOP_RETRY_MS);
                return;
            }
            worker.terminate();
        } else if let Some(worker) = &worker {
            // Nobody else shares its memory: stopping it anywhere harms no one
            // (its private filesystem goes with it).
            worker.terminate();
        }
        self.inner.slots.borrow_mut()[index as usize].worker = None;
        self.join_site(index);
    }

    /// Stops every worker at once, wherever it is: for a boot that failed,
    /// when nothing else will use the shared memory.
    pub fn terminate_all(&self) {
        for slot in self.inner.slots.borrow_mut().iter_mut() {
            slot.ready = None;
            if let Some(worker) = slot.worker.take() {
                worker.terminate();
            }
        }
    }

    /// Each PHP worker, for `client.workers()`.
    pub fn describe(&self) -> Vec<WorkerInfo> {
        let scheduler = self.inner.scheduler.borrow();
        let site_failed = self.inner.failed.borrow().is_some();
        (0..scheduler.worker_count())
            .map(|index| {
                let (state, current_job) = match scheduler.state(index) {
                    Some(WorkerState::Booting) => (WorkerStateName::Booting, None),
                    Some(WorkerState::Idle) => (WorkerStateName::Idle, None),
                    Some(WorkerState::Busy { job, .. }) => (WorkerStateName::Busy, Some(job)),
                    Some(WorkerState::Stopping { job }) => (WorkerStateName::Stopping, Some(job)),
                    Some(WorkerState::Failed) => (WorkerStateName::Failed, None),
                    None => (WorkerStateName::Gone, None),
                };
                let counts = scheduler.counts(index).cloned().unwrap_or_default();
                WorkerInfo {
                    index,
                    state: if site_failed { WorkerStateName::Failed } else { state },
                    current_job,
                    completed: counts.completed,
                    timed_out: counts.timed_out,
                    crashed: counts.crashed,
                    restarts: counts.restarts,
                    recycled: counts.recycled,
                    php_heap_bytes: self.inner.slots.borrow().get(index as usize).map_or(0, |s| s.php_heap_bytes),
                }
            })
            .collect()
    }
}

//! The PHP workers as Web Workers: starting them, sending them jobs, and
//! feeding what they report back into the scheduler.

use crate::scheduler::{Dispatch, Scheduler, Target, WorkerState};
use crate::util::{error, set};
use futures_channel::oneshot;
use js_sys::{Array, Object, Uint8Array};
use protocol::{Job, JobEnvelope, WorkerEvent};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort, Worker, WorkerOptions, WorkerType};

/// A job waiting for or running on a worker, with the port its reply goes to.
pub struct Pending {
    pub job: Job,
    pub reply: MessagePort,
}

type ReadySender = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    scheduler: RefCell<Scheduler<Pending>>,
    workers: RefCell<Vec<Option<Worker>>>,
    ready: RefCell<Vec<Option<ReadySender>>>,
}

impl Pool {
    pub fn new(count: u32) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                scheduler: RefCell::new(Scheduler::new(count)),
                workers: RefCell::new((0..count).map(|_| None).collect()),
                ready: RefCell::new((0..count).map(|_| None).collect()),
            }),
        }
    }

    pub fn count(&self) -> u32 {
        self.inner.scheduler.borrow().worker_count()
    }

    /// Starts worker `index` with `boot` (the shared memory, the compiled
    /// modules and its config); the receiver fires when it is ready.
    pub fn spawn(
        &self,
        index: u32,
        script_url: &str,
        boot: &JsValue,
    ) -> Result<oneshot::Receiver<Result<(), String>>, JsValue> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name(&format!("php-worker-{index}"));
        let worker = Worker::new_with_options(script_url, &options)?;
        let (sender, receiver) = oneshot::channel();
        self.inner.ready.borrow_mut()[index as usize] = Some(sender);

        let pool = self.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            if let Some(message) = data.as_string() {
                // A worker that failed before its Rust module started.
                pool.boot_finished(index, Err(message));
                return;
            }
            let bytes = Uint8Array::new(&data).to_vec();
            match protocol::decode::<WorkerEvent>(&bytes) {
                Ok(event) => pool.on_event(index, event),
                Err(e) => web_sys::console::error_1(&format!("worker {index}: {e}").into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget(); // lives as long as the worker

        let pool = self.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_event: web_sys::Event| {
            pool.boot_finished(index, Err(format!("worker {index} failed to load its script")));
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();

        worker.post_message(boot)?;
        self.inner.workers.borrow_mut()[index as usize] = Some(worker);
        Ok(receiver)
    }

    fn boot_finished(&self, index: u32, outcome: Result<(), String>) {
        if let Some(sender) = self.inner.ready.borrow_mut()[index as usize].take() {
            let _ = sender.send(outcome);
        }
    }

    fn on_event(&self, index: u32, event: WorkerEvent) {
        match event {
            WorkerEvent::Ready { .. } => {
                self.boot_finished(index, Ok(()));
                let next = self.inner.scheduler.borrow_mut().worker_ready(index);
                self.run(next);
            }
            WorkerEvent::BootFailed { message, .. } => self.boot_finished(index, Err(message)),
            WorkerEvent::JobDone { id } => {
                let next = self.inner.scheduler.borrow_mut().complete(index, id);
                self.run(next);
            }
        }
    }

    pub fn submit(&self, target: Target, pending: Pending) -> Result<(), JsValue> {
        let dispatch = self.inner.scheduler.borrow_mut().submit(target, pending).map_err(error)?;
        self.run(dispatch);
        Ok(())
    }

    fn run(&self, dispatch: Option<Dispatch<Pending>>) {
        let Some(Dispatch { worker, id, job: Pending { job, reply } }) = dispatch else { return };
        let envelope = protocol::encode(&JobEnvelope { id, job });
        let message = Object::new();
        set(&message, "type", "job");
        set(&message, "job", Uint8Array::from(&envelope[..]));
        set(&message, "port", reply.clone());
        let workers = self.inner.workers.borrow();
        let posted = match workers.get(worker as usize).and_then(Option::as_ref) {
            Some(w) => w.post_message_with_transfer(&message, &Array::of1(&reply)),
            None => Err(error(format!("worker {worker} is not running"))),
        };
        if let Err(e) = posted {
            web_sys::console::error_2(&format!("could not send job {id} to worker {worker}").into(), &e);
        }
    }

    /// `[{index, state, currentJob, completed}]` for `client.workers()`.
    pub fn describe(&self) -> Array {
        let scheduler = self.inner.scheduler.borrow();
        (0..scheduler.worker_count())
            .map(|w| {
                let info = Object::new();
                set(&info, "index", w);
                let (state, job) = match scheduler.state(w) {
                    Some(WorkerState::Booting) => ("booting", JsValue::NULL),
                    Some(WorkerState::Idle) => ("idle", JsValue::NULL),
                    Some(WorkerState::Busy(id)) => ("busy", JsValue::from(id as f64)),
                    None => ("gone", JsValue::NULL),
                };
                set(&info, "state", state);
                set(&info, "currentJob", job);
                set(&info, "completed", scheduler.counts(w).map(|c| c.completed as f64).unwrap_or(0.0));
                JsValue::from(info)
            })
            .collect()
    }
}

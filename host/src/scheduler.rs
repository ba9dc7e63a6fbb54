//! The process manager's brain: which worker runs which job, in what order
//! the rest wait, and what happens when limits are crossed. Plain Rust with no
//! browser types and no clock of its own (callers pass `now` in
//! milliseconds), so every rule is unit-tested natively; `pool.rs` wires it
//! to real Web Workers and timers.

use std::collections::VecDeque;

/// The limits the page gives the pool (one type, from the protocol).
pub use protocol::manager::PoolLimits as Limits;

pub type JobId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any free worker.
    Any,
    /// Only this worker (e.g. `client.run({worker: 1})`).
    Worker(u32),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WorkerState {
    Booting,
    Idle,
    Busy { job: JobId, since: f64 },
    /// Its job ran past the request timeout; it is being stopped and replaced.
    Stopping { job: JobId },
    /// It failed to start `BOOT_ATTEMPTS` times in a row: it takes no jobs,
    /// and the others serve the site.
    Failed,
}

/// Starts a worker may fail in a row before it is given up. A start can fail
/// for a passing reason: WebKit fails the script of the first worker started
/// right after the first page, with no message.
pub const BOOT_ATTEMPTS: u32 = 3;

/// What to do when a worker that should join a running site fails to start.
#[derive(Debug, PartialEq, Eq)]
pub enum BootFailed<J> {
    /// Start it again after this many milliseconds.
    RetryAfterMs(i32),
    /// Give it up (`WorkerState::Failed`); these jobs waited for it alone.
    GiveUp(Vec<(JobId, J)>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Dispatch<J> {
    pub worker: u32,
    pub id: JobId,
    pub job: J,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rejected<J> {
    /// The queue is at `max_queue`: answer 503 with Retry-After.
    QueueFull(J),
    /// `Target::Worker` named a worker that does not exist or failed to start.
    NoSuchWorker(J, String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    pub completed: u64,
    pub timed_out: u64,
    pub crashed: u64,
    pub restarts: u64,
    /// PHP runtimes swapped for fresh ones (`recycle_due`).
    pub recycled: u64,
}

/// What a worker does after its job: take the next one, or swap its PHP
/// runtime first (send it `ToWorker::Recycle`; it stays booting until it
/// reports ready again).
#[derive(Debug, PartialEq, Eq)]
pub enum AfterJob<J> {
    Next(Option<Dispatch<J>>),
    Recycle,
}

/// What `expire` found: jobs that waited too long (answer 503), and workers
/// whose job ran too long (answer 504, stop and replace the worker).
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<J> {
    pub queued: Vec<(JobId, J)>,
    pub overdue: Vec<(u32, JobId)>,
}

struct Queued<J> {
    id: JobId,
    target: Target,
    since: f64,
    job: J,
}

pub struct Scheduler<J> {
    limits: Limits,
    states: Vec<WorkerState>,
    counts: Vec<WorkerCounts>,
    queue: VecDeque<Queued<J>>,
    next_id: JobId,
    /// Jobs each worker's current PHP runtime has served.
    served: Vec<u32>,
    /// Each worker's failed starts since it last became ready.
    boot_failures: Vec<u32>,
}

impl<J> Scheduler<J> {
    pub fn new(workers: u32, limits: Limits) -> Self {
        Scheduler {
            limits,
            states: vec![WorkerState::Booting; workers as usize],
            counts: vec![WorkerCounts::default(); workers as usize],
            queue: VecDeque::new(),
            next_id: 1,
            served: vec![0; workers as usize],
            boot_failures: vec![0; workers as usize],
        }
    }

    pub fn worker_count(&self) -> u32 {
        self.states.len() as u32
    }

    pub fn state(&self, worker: u32) -> Option<WorkerState> {
        self.states.get(worker as usize).copied()
    }

    pub fn counts(&self, worker: u32) -> Option<&WorkerCounts> {
        self.counts.get(worker as usize)
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Accepts a job: returns the dispatch if a suitable worker is idle now,
    /// otherwise queues it in arrival order, or rejects it if the queue is full.
    pub fn submit(&mut self, target: Target, job: J, now: f64) -> Result<Option<Dispatch<J>>, Rejected<J>> {
        if let Target::Worker(w) = target {
            if w >= self.worker_count() {
                let message = no_such_worker(w, self.worker_count());
                return Err(Rejected::NoSuchWorker(job, message));
            }
            if self.states[w as usize] == WorkerState::Failed {
                let message = format!("PHP worker {w} failed to start; the site is served by the other workers");
                return Err(Rejected::NoSuchWorker(job, message));
            }
        }
        let idle = match target {
            Target::Worker(w) => (self.states[w as usize] == WorkerState::Idle).then_some(w),
            Target::Any => self.states.iter().position(|s| *s == WorkerState::Idle).map(|w| w as u32),
        };
        if idle.is_none() && self.queue.len() >= self.limits.max_queue as usize {
            return Err(Rejected::QueueFull(job));
        }
        let id = self.next_id;
        self.next_id += 1;
        match idle {
            Some(worker) => Ok(Some(self.start(worker, id, job, now))),
            None => {
                self.queue.push_back(Queued { id, target, since: now, job });
                Ok(None)
            }
        }
    }

    /// A worker finished booting: it takes the oldest job it may run.
    pub fn worker_ready(&mut self, worker: u32, now: f64) -> Option<Dispatch<J>> {
        if self.states.get(worker as usize) != Some(&WorkerState::Booting) {
            return None;
        }
        self.served[worker as usize] = 0;
        self.boot_failures[worker as usize] = 0;
        self.set_idle_and_pick(worker, now)
    }

    /// A worker finished job `id`; it takes the oldest job it may run. A
    /// completion for a job that is not the worker's current one (late, or
    /// from a worker being stopped) changes nothing.
    pub fn complete(&mut self, worker: u32, id: JobId, now: f64) -> Option<Dispatch<J>> {
        match self.states.get(worker as usize) {
            Some(WorkerState::Busy { job, .. }) if *job == id => {}
            _ => return None,
        }
        self.counts[worker as usize].completed += 1;
        self.served[worker as usize] += 1;
        self.set_idle_and_pick(worker, now)
    }

    /// `complete`, for a worker whose PHP runtime's heap is now
    /// `php_heap_bytes`: if its runtime is due to be swapped (`recycle_due`)
    /// it takes no job and stays booting until `worker_ready`.
    pub fn complete_or_recycle(&mut self, worker: u32, id: JobId, now: f64, php_heap_bytes: u64) -> AfterJob<J> {
        match self.states.get(worker as usize) {
            Some(WorkerState::Busy { job, .. }) if *job == id => {}
            _ => return AfterJob::Next(None),
        }
        self.served[worker as usize] += 1;
        if !self.recycle_due(worker, php_heap_bytes) {
            self.served[worker as usize] -= 1; // `complete` counts it
            return AfterJob::Next(self.complete(worker, id, now));
        }
        let counts = &mut self.counts[worker as usize];
        counts.completed += 1;
        counts.recycled += 1;
        self.states[worker as usize] = WorkerState::Booting;
        AfterJob::Recycle
    }

    /// Whether a worker's PHP runtime should be swapped now. php-wasm's
    /// runtimes grow with use until one traps (issue 21: after about 1,600
    /// WordPress requests), so each is replaced after `max_requests` jobs,
    /// and at once when its heap passes `php_heap_limit_bytes`. A swap by
    /// count waits while jobs queue or another worker is booting, so it
    /// neither delays a waiting job nor takes the pool's warm runtimes away
    /// all at once, but never beyond twice the count.
    fn recycle_due(&self, worker: u32, php_heap_bytes: u64) -> bool {
        if php_heap_bytes >= self.limits.php_heap_limit_bytes {
            return true;
        }
        let max = self.limits.max_requests;
        let served = self.served[worker as usize];
        if max == 0 || served < max {
            return false;
        }
        let others_booting =
            self.states.iter().enumerate().any(|(w, s)| w as u32 != worker && *s == WorkerState::Booting);
        served >= max.saturating_mul(2) || (self.queue.is_empty() && !others_booting)
    }

    /// Removes queued jobs that waited longer than the queue timeout, and
    /// marks workers whose job ran past the request timeout as stopping.
    pub fn expire(&mut self, now: f64) -> Expired<J> {
        let mut queued = Vec::new();
        let limit = self.limits.queue_timeout_ms;
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for q in self.queue.drain(..) {
            if now - q.since > limit {
                queued.push((q.id, q.job));
            } else {
                kept.push_back(q);
            }
        }
        self.queue = kept;
        let mut overdue = Vec::new();
        for (w, state) in self.states.iter_mut().enumerate() {
            if let WorkerState::Busy { job, since } = *state {
                if now - since > self.limits.request_timeout_ms {
                    *state = WorkerState::Stopping { job };
                    self.counts[w].timed_out += 1;
                    overdue.push((w as u32, job));
                }
            }
        }
        Expired { queued, overdue }
    }

    /// The worker's runtime died (or was stopped): returns the job it was
    /// running, if any, and marks it booting until its replacement is ready.
    pub fn worker_lost(&mut self, worker: u32, crashed: bool) -> Option<JobId> {
        let state = self.states.get_mut(worker as usize)?;
        let job = match *state {
            WorkerState::Busy { job, .. } | WorkerState::Stopping { job } => Some(job),
            _ => None,
        };
        *state = WorkerState::Booting;
        let counts = &mut self.counts[worker as usize];
        counts.restarts += 1;
        if crashed {
            counts.crashed += 1;
        }
        job
    }

    /// A booting worker that should join the running site failed to start:
    /// start it again after a pause that grows, or, after `BOOT_ATTEMPTS`
    /// failures in a row, give it up and hand back the jobs only it could run.
    pub fn boot_failed(&mut self, worker: u32) -> BootFailed<J> {
        let Some(failures) = self.boot_failures.get_mut(worker as usize) else {
            return BootFailed::GiveUp(Vec::new());
        };
        *failures += 1;
        if *failures < BOOT_ATTEMPTS {
            return BootFailed::RetryAfterMs(250 << *failures);
        }
        self.states[worker as usize] = WorkerState::Failed;
        let (stranded, kept) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|q| q.target == Target::Worker(worker));
        self.queue = kept;
        BootFailed::GiveUp(stranded.into_iter().map(|q| (q.id, q.job)).collect())
    }

    /// The earliest time at which `expire` could find something, if any.
    pub fn next_deadline(&self) -> Option<f64> {
        let queue = self.queue.iter().map(|q| q.since + self.limits.queue_timeout_ms);
        let running = self.states.iter().filter_map(|s| match s {
            WorkerState::Busy { since, .. } => Some(since + self.limits.request_timeout_ms),
            _ => None,
        });
        queue.chain(running).reduce(f64::min)
    }

    fn set_idle_and_pick(&mut self, worker: u32, now: f64) -> Option<Dispatch<J>> {
        self.states[worker as usize] = WorkerState::Idle;
        let position = self
            .queue
            .iter()
            .position(|q| q.target == Target::Any || q.target == Target::Worker(worker))?;
        let queued = self.queue.remove(position)?;
        Some(self.start(worker, queued.id, queued.job, now))
    }

    fn start(&mut self, worker: u32, id: JobId, job: J, now: f64) -> Dispatch<J> {
        self.states[worker as usize] = WorkerState::Busy { job: id, since: now };
        Dispatch { worker, id, job }
    }
}

/// Names the workers there are, for a person: "there is no worker 1: this
/// site has 1 worker (0)".
pub fn no_such_worker(asked: u32, count: u32) -> String {
    let which = match count {
        0 => "none yet".to_string(),
        1 => "0".to_string(),
        2 => "0 and 1".to_string(),
        n => format!("0 to {}", n - 1),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("there is no worker {asked}: this site has {count} worker{plural} ({which})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(workers: u32, limits: Limits) -> Scheduler<&'static str> {
        let mut s = Scheduler::new(workers, limits);
        for w in 0..workers {
            assert!(s.worker_ready(w, 0.0).is_none());
        }
        s
    }

    fn submit(s: &mut Scheduler<&'static str>, job: &'static str, now: f64) -> Option<Dispatch<&'static str>> {
        s.submit(Target::Any, job, now).unwrap()
    }

    #[test]
    fn jobs_go_to_idle_workers_then_queue_in_order() {
        let mut s = ready(2, Limits::default());
        let a = submit(&mut s, "a", 0.0).unwrap();
        let b = submit(&mut s, "b", 0.0).unwrap();
        assert_ne!(a.worker, b.worker);
        assert!(submit(&mut s, "c", 1.0).is_none());
        assert!(submit(&mut s, "d", 2.0).is_none());
        assert_eq!(s.queued(), 2);
        let next = s.complete(b.worker, b.id, 3.0).unwrap();
        assert_eq!((next.worker, next.job), (b.worker, "c"));
        let next = s.complete(a.worker, a.id, 4.0).unwrap();
        assert_eq!((next.worker, next.job), (a.worker, "d"));
        assert_eq!(s.counts(a.worker).unwrap().completed, 1);
    }

    #[test]
    fn a_worker_that_keeps_failing_to_start_is_given_up_and_its_jobs_handed_back() {
        let mut s = Scheduler::new(2, Limits::default());
        assert!(s.worker_ready(0, 0.0).is_none());
        assert!(s.submit(Target::Worker(1), "only-on-1", 0.0).unwrap().is_none());
        assert!(s.submit(Target::Any, "any-a", 0.0).unwrap().is_some(), "worker 0 takes it");
        assert!(s.submit(Target::Any, "any-b", 0.0).unwrap().is_none());
        let mut pauses = Vec::new();
        let stranded = loop {
            match s.boot_failed(1) {
                BootFailed::RetryAfterMs(ms) => pauses.push(ms),
                BootFailed::GiveUp(jobs) => break jobs,
            }
        };
        assert_eq!(pauses.len() as u32, BOOT_ATTEMPTS - 1);
        assert!(pauses.windows(2).all(|w| w[0] < w[1]), "each pause is longer: {pauses:?}");
        assert_eq!(stranded.iter().map(|(_, job)| *job).collect::<Vec<_>>(), ["only-on-1"]);
        assert_eq!(s.state(1), Some(WorkerState::Failed));
        assert_eq!(s.queued(), 1, "the job any worker may run still waits");
        match s.submit(Target::Worker(1), "later-on-1", 1.0) {
            Err(Rejected::NoSuchWorker(_, why)) => assert!(why.contains("failed to start"), "{why}"),
            other => panic!("a failed worker took a job: {other:?}"),
        }
        assert!(s.worker_ready(1, 2.0).is_none(), "a failed worker never comes back by itself");
    }

    #[test]
    fn a_start_that_succeeds_forgives_the_failures_before_it() {
        let mut s = Scheduler::<&str>::new(1, Limits::default());
        for _ in 1..BOOT_ATTEMPTS {
            assert!(matches!(s.boot_failed(0), BootFailed::RetryAfterMs(_)));
        }
        assert!(s.worker_ready(0, 0.0).is_none());
        assert!(s.worker_lost(0, true).is_none());
        assert!(matches!(s.boot_failed(0), BootFailed::RetryAfterMs(_)), "the count starts again");
    }

    #[test]
    fn fifo_across_many_jobs_and_workers() {
        let mut s = Scheduler::new(3, Limits::default());
        let names = ["j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8", "j9"];
        let mut started = Vec::new();
        for (i, name) in names.iter().enumerate() {
            assert!(s.submit(Target::Any, *name, i as f64).unwrap().is_none());
        }
        let mut running: Vec<Dispatch<&str>> = (0..3).filter_map(|w| s.worker_ready(w, 10.0)).collect();
        while !running.is_empty() {
            let d = running.remove(0);
            started.push(d.job);
            if let Some(next) = s.complete(d.worker, d.id, 20.0) {
                running.push(next);
            }
        }
        assert_eq!(started, names, "jobs start in arrival order");
        let total: u64 = (0..3).map(|w| s.counts(w).unwrap().completed).sum();
        assert_eq!(total, 10, "no completion is lost");
    }

    #[test]
    fn targeted_jobs_wait_for_their_worker_without_blocking_others() {
        let mut s = ready(2, Limits::default());
        let a = s.submit(Target::Worker(1), "on-1", 0.0).unwrap().unwrap();
        assert_eq!(a.worker, 1);
        assert!(s.submit(Target::Worker(1), "also-on-1", 0.0).unwrap().is_none());
        // A later untargeted job may overtake it on the idle worker 0.
        let b = submit(&mut s, "any", 0.0).unwrap();
        assert_eq!(b.worker, 0);
        assert!(s.complete(0, b.id, 1.0).is_none());
        let next = s.complete(1, a.id, 1.0).unwrap();
        assert_eq!((next.worker, next.job), (1, "also-on-1"));
    }

    #[test]
    fn jobs_submitted_while_booting_start_when_ready() {
        let mut s = Scheduler::new(1, Limits::default());
        assert!(submit(&mut s, "early", 0.0).is_none());
        let d = s.worker_ready(0, 5.0).unwrap();
        assert_eq!(d.job, "early");
        assert_eq!(s.state(0), Some(WorkerState::Busy { job: d.id, since: 5.0 }));
    }

    #[test]
    fn unknown_worker_is_a_clear_error() {
        let mut s = ready(2, Limits::default());
        match s.submit(Target::Worker(5), "x", 0.0) {
            Err(Rejected::NoSuchWorker("x", message)) => {
                assert_eq!(message, "there is no worker 5: this site has 2 workers (0 and 1)")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(no_such_worker(1, 1), "there is no worker 1: this site has 1 worker (0)");
        assert_eq!(no_such_worker(9, 4), "there is no worker 9: this site has 4 workers (0 to 3)");
    }

    #[test]
    fn a_stale_completion_changes_nothing() {
        let mut s = ready(1, Limits::default());
        let a = submit(&mut s, "a", 0.0).unwrap();
        assert!(s.complete(0, a.id + 100, 1.0).is_none());
        assert_eq!(s.state(0), Some(WorkerState::Busy { job: a.id, since: 0.0 }));
    }

    #[test]
    fn a_full_queue_rejects_without_losing_queued_jobs() {
        let limits = Limits { max_queue: 2, ..Limits::default() };
        let mut s = ready(1, limits);
        let running = submit(&mut s, "running", 0.0).unwrap();
        assert!(submit(&mut s, "q1", 0.0).is_none());
        assert!(submit(&mut s, "q2", 0.0).is_none());
        assert_eq!(s.submit(Target::Any, "q3", 0.0), Err(Rejected::QueueFull("q3")));
        assert_eq!(s.queued(), 2);
        assert_eq!(s.complete(0, running.id, 1.0).unwrap().job, "q1");
    }

    #[test]
    fn queued_jobs_past_the_queue_timeout_expire() {
        let limits = Limits { queue_timeout_ms: 100.0, ..Limits::default() };
        let mut s = ready(1, limits);
        let running = submit(&mut s, "running", 0.0).unwrap();
        assert!(submit(&mut s, "old", 0.0).is_none());
        assert!(submit(&mut s, "young", 80.0).is_none());
        assert_eq!(s.next_deadline(), Some(100.0));
        let expired = s.expire(150.0);
        assert_eq!(expired.queued.iter().map(|(_, j)| *j).collect::<Vec<_>>(), vec!["old"]);
        assert!(expired.overdue.is_empty());
        assert_eq!(s.complete(0, running.id, 151.0).unwrap().job, "young");
    }

    #[test]
    fn a_job_past_the_request_timeout_stops_its_worker_until_replaced() {
        let limits = Limits { request_timeout_ms: 1000.0, ..Limits::default() };
        let mut s = ready(2, limits);
        let slow = submit(&mut s, "slow", 0.0).unwrap();
        let fast = submit(&mut s, "fast", 500.0).unwrap();
        let expired = s.expire(1200.0);
        assert_eq!(expired.overdue, vec![(slow.worker, slow.id)]);
        assert_eq!(s.state(slow.worker), Some(WorkerState::Stopping { job: slow.id }));
        // A stopping worker takes no new job and its late completion is ignored.
        assert!(submit(&mut s, "waits", 1200.0).is_none());
        assert!(s.complete(slow.worker, slow.id, 1300.0).is_none());
        assert_eq!(s.worker_lost(slow.worker, false), Some(slow.id));
        let next = s.worker_ready(slow.worker, 1400.0).unwrap();
        assert_eq!(next.job, "waits");
        assert_eq!(s.counts(slow.worker).unwrap().timed_out, 1);
        assert_eq!(s.counts(slow.worker).unwrap().restarts, 1);
        // The other worker was never disturbed.
        assert!(s.complete(fast.worker, fast.id, 1500.0).is_none());
        assert_eq!(s.counts(fast.worker).unwrap().completed, 1);
    }

    fn serve(s: &mut Scheduler<&'static str>, worker: u32, heap: u64) -> AfterJob<&'static str> {
        let d = s.submit(Target::Worker(worker), "page", 0.0).unwrap().unwrap();
        s.complete_or_recycle(worker, d.id, 1.0, heap)
    }

    #[test]
    fn a_runtime_is_recycled_after_max_requests_then_serves_again() {
        let limits = Limits { max_requests: 3, ..Limits::default() };
        let mut s = ready(1, limits);
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Recycle);
        assert_eq!(s.state(0), Some(WorkerState::Booting));
        // A job that comes while it swaps waits for it, then runs on the fresh runtime.
        assert!(submit(&mut s, "waits", 2.0).is_none());
        assert_eq!(s.worker_ready(0, 3.0).unwrap().job, "waits");
        let counts = s.counts(0).unwrap();
        assert_eq!((counts.completed, counts.recycled, counts.restarts), (3, 1, 0));
    }

    #[test]
    fn the_count_starts_again_with_each_fresh_runtime() {
        let limits = Limits { max_requests: 2, ..Limits::default() };
        let mut s = ready(1, limits);
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Recycle);
        assert!(s.worker_ready(0, 2.0).is_none());
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Recycle);
    }

    #[test]
    fn a_heap_past_its_limit_recycles_at_once() {
        let limits = Limits { max_requests: 0, php_heap_limit_bytes: 1000, ..Limits::default() };
        let mut s = ready(2, limits);
        assert_eq!(serve(&mut s, 0, 999), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 1, 1000), AfterJob::Recycle);
        // Even while another worker swaps and jobs wait.
        let busy = submit(&mut s, "busy", 2.0).unwrap();
        assert!(submit(&mut s, "queued", 2.0).is_none());
        assert_eq!(s.complete_or_recycle(busy.worker, busy.id, 3.0, 5000), AfterJob::Recycle);
    }

    #[test]
    fn workers_do_not_recycle_together_nor_while_jobs_wait() {
        let limits = Limits { max_requests: 2, ..Limits::default() };
        let mut s = ready(2, limits);
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 1, 0), AfterJob::Next(None));
        assert_eq!(serve(&mut s, 0, 0), AfterJob::Recycle);
        // Worker 1 reaches its count while worker 0 swaps: it goes on.
        assert_eq!(serve(&mut s, 1, 0), AfterJob::Next(None));
        assert!(s.worker_ready(0, 5.0).is_none());
        // Now worker 0 is busy and a job waits: worker 1 serves it first.
        let running = submit(&mut s, "on 0", 6.0).unwrap();
        assert_eq!(running.worker, 0);
        let on_1 = s.submit(Target::Worker(1), "on 1", 6.0).unwrap().unwrap();
        assert!(submit(&mut s, "waiting", 6.0).is_none());
        match s.complete_or_recycle(1, on_1.id, 7.0, 0) {
            AfterJob::Next(Some(d)) => assert_eq!(d.job, "waiting"),
            other => panic!("expected the waiting job, got {other:?}"),
        }
        // With nothing waiting and nobody booting it swaps.
        let d = s.state(1).map(|st| match st {
            WorkerState::Busy { job, .. } => job,
            _ => panic!("worker 1 should be busy"),
        });
        assert_eq!(s.complete_or_recycle(1, d.unwrap(), 8.0, 0), AfterJob::Recycle);
    }

    #[test]
    fn a_busy_pool_recycles_anyway_at_twice_the_count() {
        let limits = Limits { max_requests: 2, ..Limits::default() };
        let mut s = ready(1, limits);
        let mut running = submit(&mut s, "page", 0.0).unwrap();
        let mut served = 0;
        loop {
            // There is always a job waiting.
            assert!(submit(&mut s, "page", 0.0).is_none());
            served += 1;
            match s.complete_or_recycle(0, running.id, 1.0, 0) {
                AfterJob::Next(Some(next)) => running = next,
                AfterJob::Recycle => break,
                AfterJob::Next(None) => panic!("a job was waiting"),
            }
        }
        assert_eq!(served, 4);
    }

    #[test]
    fn a_crashed_worker_gives_back_its_job_and_is_replaced() {
        let mut s = ready(2, Limits::default());
        let a = submit(&mut s, "a", 0.0).unwrap();
        let b = submit(&mut s, "b", 0.0).unwrap();
        assert_eq!(s.worker_lost(a.worker, true), Some(a.id));
        assert_eq!(s.state(a.worker), Some(WorkerState::Booting));
        assert!(submit(&mut s, "c", 1.0).is_none(), "no idle worker while one reboots");
        let next = s.complete(b.worker, b.id, 2.0).unwrap();
        assert_eq!(next.job, "c");
        assert!(s.worker_ready(a.worker, 3.0).is_none());
        assert_eq!(s.counts(a.worker).unwrap().crashed, 1);
    }
}

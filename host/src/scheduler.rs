//! The process manager's brain: which worker runs which job, and in what
//! order the rest wait. Plain Rust with no browser types, so every rule is
//! unit-tested natively; `pool.rs` wires it to real Web Workers.

use std::collections::VecDeque;

pub type JobId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any free worker.
    Any,
    /// Only this worker (e.g. `client.run({worker: 1})`).
    Worker(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Booting,
    Idle,
    Busy(JobId),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Dispatch<J> {
    pub worker: u32,
    pub id: JobId,
    pub job: J,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    pub completed: u64,
}

struct Queued<J> {
    id: JobId,
    target: Target,
    job: J,
}

pub struct Scheduler<J> {
    states: Vec<WorkerState>,
    counts: Vec<WorkerCounts>,
    queue: VecDeque<Queued<J>>,
    next_id: JobId,
}

impl<J> Scheduler<J> {
    pub fn new(workers: u32) -> Self {
        Scheduler {
            states: vec![WorkerState::Booting; workers as usize],
            counts: vec![WorkerCounts::default(); workers as usize],
            queue: VecDeque::new(),
            next_id: 1,
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
    /// otherwise queues it in arrival order.
    pub fn submit(&mut self, target: Target, job: J) -> Result<Option<Dispatch<J>>, String> {
        if let Target::Worker(w) = target {
            if w >= self.worker_count() {
                return Err(format!("there is no worker {w}; workers are 0..{}", self.worker_count()));
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let idle = match target {
            Target::Worker(w) => (self.states[w as usize] == WorkerState::Idle).then_some(w),
            Target::Any => self.states.iter().position(|s| *s == WorkerState::Idle).map(|w| w as u32),
        };
        match idle {
            Some(worker) => Ok(Some(self.start(worker, id, job))),
            None => {
                self.queue.push_back(Queued { id, target, job });
                Ok(None)
            }
        }
    }

    /// A worker finished booting: it takes the oldest job it may run.
    pub fn worker_ready(&mut self, worker: u32) -> Option<Dispatch<J>> {
        self.set_idle_and_pick(worker)
    }

    /// A worker finished job `id`; it takes the oldest job it may run.
    pub fn complete(&mut self, worker: u32, id: JobId) -> Option<Dispatch<J>> {
        if self.states.get(worker as usize) != Some(&WorkerState::Busy(id)) {
            return None;
        }
        self.counts[worker as usize].completed += 1;
        self.set_idle_and_pick(worker)
    }

    fn set_idle_and_pick(&mut self, worker: u32) -> Option<Dispatch<J>> {
        let slot = self.states.get_mut(worker as usize)?;
        *slot = WorkerState::Idle;
        let position = self
            .queue
            .iter()
            .position(|q| q.target == Target::Any || q.target == Target::Worker(worker))?;
        let queued = self.queue.remove(position)?;
        Some(self.start(worker, queued.id, queued.job))
    }

    fn start(&mut self, worker: u32, id: JobId, job: J) -> Dispatch<J> {
        self.states[worker as usize] = WorkerState::Busy(id);
        Dispatch { worker, id, job }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(workers: u32) -> Scheduler<&'static str> {
        let mut s = Scheduler::new(workers);
        for w in 0..workers {
            assert!(s.worker_ready(w).is_none());
        }
        s
    }

    #[test]
    fn jobs_go_to_idle_workers_then_queue_in_order() {
        let mut s = ready(2);
        let a = s.submit(Target::Any, "a").unwrap().unwrap();
        let b = s.submit(Target::Any, "b").unwrap().unwrap();
        assert_ne!(a.worker, b.worker);
        assert!(s.submit(Target::Any, "c").unwrap().is_none());
        assert!(s.submit(Target::Any, "d").unwrap().is_none());
        assert_eq!(s.queued(), 2);
        let next = s.complete(b.worker, b.id).unwrap();
        assert_eq!((next.worker, next.job), (b.worker, "c"));
        let next = s.complete(a.worker, a.id).unwrap();
        assert_eq!((next.worker, next.job), (a.worker, "d"));
        assert_eq!(s.counts(a.worker).unwrap().completed, 1);
    }

    #[test]
    fn targeted_jobs_wait_for_their_worker_without_blocking_others() {
        let mut s = ready(2);
        let a = s.submit(Target::Worker(1), "on-1").unwrap().unwrap();
        assert_eq!(a.worker, 1);
        assert!(s.submit(Target::Worker(1), "also-on-1").unwrap().is_none());
        // A later untargeted job may overtake it on the idle worker 0.
        let b = s.submit(Target::Any, "any").unwrap().unwrap();
        assert_eq!(b.worker, 0);
        assert!(s.complete(0, b.id).is_none());
        let next = s.complete(1, a.id).unwrap();
        assert_eq!((next.worker, next.job), (1, "also-on-1"));
    }

    #[test]
    fn jobs_submitted_while_booting_start_when_ready() {
        let mut s = Scheduler::new(1);
        assert!(s.submit(Target::Any, "early").unwrap().is_none());
        let d = s.worker_ready(0).unwrap();
        assert_eq!(d.job, "early");
        assert_eq!(s.state(0), Some(WorkerState::Busy(d.id)));
    }

    #[test]
    fn unknown_worker_is_a_clear_error() {
        let mut s = ready(2);
        let err = s.submit(Target::Worker(5), "x").unwrap_err();
        assert!(err.contains("no worker 5"), "{err}");
    }

    #[test]
    fn a_stale_completion_changes_nothing() {
        let mut s = ready(1);
        let a = s.submit(Target::Any, "a").unwrap().unwrap();
        assert!(s.complete(0, a.id + 100).is_none());
        assert_eq!(s.state(0), Some(WorkerState::Busy(a.id)));
    }
}

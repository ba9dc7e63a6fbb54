//! The process manager's decisions about workers' lives, beside the
//! scheduler's about jobs: which role each worker has, what a worker's death
//! calls for, and how a job the pool cannot finish is answered. Plain Rust
//! with no browser types, so each rule is tested natively; `pool.rs` carries
//! the decisions out with Web Workers.

use protocol::{HttpResponse, JobResult, WorkerRole};

/// Which worker does what: the PHP workers first, then the file server
/// when the memory is shared (it must reach the same filesystem), then the
/// storage worker when, besides, the site is saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub php_workers: u32,
    pub file_server: Option<u32>,
    pub storage: Option<u32>,
}

impl Layout {
    pub fn new(php_workers: u32, shared_memory: bool, saved: bool) -> Layout {
        Layout {
            php_workers,
            file_server: shared_memory.then_some(php_workers),
            storage: (shared_memory && saved).then_some(php_workers + 1),
        }
    }

    /// Every worker, helpers included.
    pub fn slots(&self) -> u32 {
        self.php_workers + u32::from(self.file_server.is_some()) + u32::from(self.storage.is_some())
    }

    pub fn role(&self, index: u32) -> WorkerRole {
        if Some(index) == self.file_server {
            WorkerRole::Files
        } else if Some(index) == self.storage {
            WorkerRole::Storage
        } else {
            WorkerRole::Php
        }
    }

    /// The worker that formats the filesystem (opens the saved site or
    /// installs the new one): the first helper, else (no shared memory, so
    /// no helpers) the single PHP worker.
    pub fn formatter(&self) -> u32 {
        self.helpers().next().unwrap_or(0)
    }

    /// The helpers (they run no PHP), the formatter first: the storage
    /// worker, then the file server.
    pub fn helpers(&self) -> impl Iterator<Item = u32> {
        self.storage.into_iter().chain(self.file_server)
    }

    /// The workers a boot waits for: the helpers, then PHP worker 0 (the
    /// other PHP workers start after the first page).
    pub fn boot_workers(&self) -> Vec<u32> {
        self.helpers().chain([0]).collect()
    }
}

/// Where the process manager runs: in a worker of its own, so that no
/// request waits for the page's main thread (where the site's own scripts,
/// the block editor, run), except in Firefox, where a worker's own
/// `new Worker()` sometimes never returned (ESR 153: the manager hung
/// creating its first or second worker in about 1 of 4 runs of
/// e2e/firefox.test.mjs); there it runs on the page, as one would before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerPlace {
    OwnWorker,
    Page,
}

pub fn manager_place(user_agent: &str) -> ManagerPlace {
    if user_agent.contains("Firefox/") {
        ManagerPlace::Page
    } else {
        ManagerPlace::OwnWorker
    }
}

/// How many of the `deferred` PHP workers (not started, so that the first
/// page has the machine to itself) to start when a job has to wait: one
/// for each of the `waiting` jobs that the `coming` ones (started, not up
/// yet) will not take. So one request that waits during the first page
/// (WordPress's own cron request, a status poll) starts one worker, not
/// all of them; a burst starts as many as it needs.
pub fn deferred_to_start(waiting: usize, coming: usize, deferred: usize) -> usize {
    waiting.saturating_sub(coming).min(deferred)
}

/// What the pool knows when a worker dies (it reported its death, or its
/// script failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Death {
    pub role: WorkerRole,
    /// The shared heap's allocator lock names it: the heap may be half-way
    /// through a change nothing can finish.
    pub held_allocator: bool,
    /// It had not reported ready yet.
    pub booting: bool,
    /// It is already being stopped and replaced (its job timed out).
    pub being_stopped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeath {
    /// Stop the whole site: every job, now and later, gets the reason.
    StopSite,
    /// Its start failed: whoever started it decides (fatal to the site's
    /// boot; retried for a worker joining a running site).
    BootFailed,
    /// Answer what the file server held (502), then start a new one.
    ReplaceFileServer,
    /// Start a new storage worker: it resumes from the shared filesystem,
    /// and the changes waiting to be stored wait for it.
    RestartStorage,
    /// Answer its job (502, or 507 if the shared memory ran out), start a new one.
    ReplacePhp,
    /// The stop already under way terminates and replaces it.
    LeaveToStop,
}

pub fn after_death(death: Death) -> AfterDeath {
    if death.held_allocator {
        return AfterDeath::StopSite;
    }
    if death.booting {
        return AfterDeath::BootFailed;
    }
    match death.role {
        WorkerRole::Files => AfterDeath::ReplaceFileServer,
        WorkerRole::Storage => AfterDeath::RestartStorage,
        WorkerRole::Php if death.being_stopped => AfterDeath::LeaveToStop,
        WorkerRole::Php => AfterDeath::ReplacePhp,
    }
}

/// Why a job is answered by the pool instead of by PHP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GaveUp {
    QueueFull,
    WaitedTooLong,
    RanTooLong,
    WorkerCrashed,
    /// The worker died because the shared memory could hold no more.
    SharedMemoryFull,
    FileServerCrashed,
    /// The job named a worker that failed to start for good.
    WorkerFailedToStart { index: u32, why: String },
    /// The site stopped (`AfterDeath::StopSite`), for this reason.
    SiteStopped(String),
}

impl GaveUp {
    /// What a worker's last words say about the job it was running.
    pub fn from_crash(last_words: &str) -> GaveUp {
        if protocol::shared_memory::ran_out_of_heap(last_words) {
            GaveUp::SharedMemoryFull
        } else {
            GaveUp::WorkerCrashed
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            GaveUp::QueueFull | GaveUp::WaitedTooLong | GaveUp::WorkerFailedToStart { .. } => 503,
            GaveUp::RanTooLong => 504,
            GaveUp::WorkerCrashed | GaveUp::FileServerCrashed => 502,
            GaveUp::SharedMemoryFull => 507,
            GaveUp::SiteStopped(_) => 500,
        }
    }

    pub fn message(&self) -> String {
        match self {
            GaveUp::QueueFull => "Every PHP worker is busy and the queue is full; retry shortly.".into(),
            GaveUp::WaitedTooLong => "The request waited too long for a free PHP worker; retry shortly.".into(),
            GaveUp::RanTooLong => "The PHP request ran past the request timeout and was stopped.".into(),
            GaveUp::WorkerCrashed => "The PHP worker running this request crashed.".into(),
            GaveUp::SharedMemoryFull => "The site's shared memory is full, so this request could not finish (its \
                                         worker is being replaced). Delete files you do not need, or start the site \
                                         with a larger memoryMaximumMb."
                .into(),
            GaveUp::FileServerCrashed => "The file server crashed while serving this request.".into(),
            GaveUp::WorkerFailedToStart { index, why } => {
                format!("PHP worker {index} failed to start ({why}); retry without naming a worker.")
            }
            GaveUp::SiteStopped(reason) => reason.clone(),
        }
    }

    /// The answer: an HTTP response for a request (with `Retry-After` when
    /// retrying soon may work), an error for a call on the page.
    pub fn answer(&self, http: bool) -> JobResult {
        let message = self.message();
        if !http {
            return JobResult::Failed { message, errno: None };
        }
        let mut response = HttpResponse::plain_text(self.status(), message);
        if self.status() == 503 {
            response.headers.push(("retry-after".into(), "1".into()));
        }
        JobResult::Http(response)
    }
}

/// Why the site stopped after a worker died holding the allocator lock,
/// worded for what the person can do: a saved site reopens from its last
/// acknowledged change, a temporary one is gone.
pub fn site_stopped_reason(worker: u32, saved: bool) -> String {
    let cause = format!("The site stopped: PHP worker {worker} crashed inside the shared memory allocator, so the shared memory");
    if saved {
        format!(
            "{cause} can no longer be used. Every change whose response arrived is saved: reopening the site (reload \
             the page) goes on from there."
        )
    } else {
        format!("{cause} (and the files in it) can no longer be used. Reload the page to start the site again.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_waits_starts_one_more_worker_not_all() {
        assert_eq!(deferred_to_start(1, 0, 7), 1, "the cron request behind the first page");
        assert_eq!(deferred_to_start(1, 1, 6), 0, "one is already coming for it");
        assert_eq!(deferred_to_start(16, 1, 6), 6, "a burst takes them all");
        assert_eq!(deferred_to_start(3, 1, 6), 2);
        assert_eq!(deferred_to_start(2, 0, 0), 0, "none left to start");
        assert_eq!(deferred_to_start(0, 0, 3), 0);
    }

    #[test]
    fn the_manager_runs_on_the_page_only_in_firefox() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0";
        let chromium = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        let safari = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15";
        assert_eq!(manager_place(firefox), ManagerPlace::Page);
        assert_eq!(manager_place(chromium), ManagerPlace::OwnWorker);
        assert_eq!(manager_place(safari), ManagerPlace::OwnWorker);
    }

    #[test]
    fn roles_follow_the_layout() {
        let saved = Layout::new(3, true, true);
        assert_eq!((saved.slots(), saved.file_server, saved.storage, saved.formatter()), (5, Some(3), Some(4), 4));
        assert_eq!(saved.helpers().collect::<Vec<_>>(), [4, 3], "the formatter first");
        let roles: Vec<_> = (0..saved.slots()).map(|i| saved.role(i)).collect();
        use WorkerRole::*;
        assert_eq!(roles, [Php, Php, Php, Files, Storage]);

        let temporary = Layout::new(2, true, false);
        assert_eq!((temporary.slots(), temporary.storage, temporary.formatter()), (3, None, 2));
        assert_eq!(temporary.role(2), Files);

        // Without isolation: one private worker, no helpers; it formats.
        let alone = Layout::new(1, false, true);
        assert_eq!((alone.slots(), alone.file_server, alone.storage, alone.formatter()), (1, None, None, 0));
        assert_eq!(alone.role(0), Php);
        assert_eq!(alone.helpers().count(), 0);
    }

    #[test]
    fn a_boot_waits_for_the_helpers_then_worker_0_only() {
        assert_eq!(Layout::new(3, true, true).boot_workers(), [4, 3, 0]);
        assert_eq!(Layout::new(2, true, false).boot_workers(), [2, 0]);
        assert_eq!(Layout::new(1, false, true).boot_workers(), [0]);
    }

    fn death(role: WorkerRole) -> Death {
        Death { role, held_allocator: false, booting: false, being_stopped: false }
    }

    #[test]
    fn every_death_has_its_answer() {
        use WorkerRole::*;
        assert_eq!(after_death(death(Php)), AfterDeath::ReplacePhp);
        assert_eq!(after_death(death(Files)), AfterDeath::ReplaceFileServer);
        assert_eq!(after_death(death(Storage)), AfterDeath::RestartStorage);
        assert_eq!(after_death(Death { being_stopped: true, ..death(Php) }), AfterDeath::LeaveToStop);
        for role in [Php, Files, Storage] {
            // The allocator lock outranks everything: nothing may use the heap.
            let held = Death { held_allocator: true, booting: true, being_stopped: true, ..death(role) };
            assert_eq!(after_death(held), AfterDeath::StopSite, "{role:?}");
            assert_eq!(after_death(Death { booting: true, ..death(role) }), AfterDeath::BootFailed, "{role:?}");
        }
    }

    #[test]
    fn each_give_up_has_its_status_and_says_why() {
        let cases = [
            (GaveUp::QueueFull, 503),
            (GaveUp::WaitedTooLong, 503),
            (GaveUp::WorkerFailedToStart { index: 1, why: "no reason given".into() }, 503),
            (GaveUp::RanTooLong, 504),
            (GaveUp::WorkerCrashed, 502),
            (GaveUp::FileServerCrashed, 502),
            (GaveUp::SharedMemoryFull, 507),
            (GaveUp::SiteStopped(site_stopped_reason(0, true)), 500),
        ];
        for (gave_up, status) in cases {
            assert_eq!(gave_up.status(), status, "{gave_up:?}");
            let JobResult::Http(response) = gave_up.answer(true) else { panic!("{gave_up:?}: not HTTP") };
            assert_eq!(response.status, status);
            assert_eq!(String::from_utf8(response.body).unwrap(), gave_up.message());
            let retry_after = response.headers.iter().any(|(name, value)| name == "retry-after" && value == "1");
            assert_eq!(retry_after, status == 503, "{gave_up:?}");
            let JobResult::Failed { message, errno: None } = gave_up.answer(false) else { panic!("{gave_up:?}") };
            assert!(message.ends_with('.'), "a sentence for a person: {message}");
        }
    }

    #[test]
    fn a_crash_from_a_full_shared_memory_is_told_apart() {
        assert_eq!(GaveUp::from_crash("RuntimeError: unreachable"), GaveUp::WorkerCrashed);
        let oom = "RuntimeError: unreachable\n    at worker.wasm.std::alloc::rust_oom::h1 (worker_bg.wasm:0x1)";
        assert_eq!(GaveUp::from_crash(oom), GaveUp::SharedMemoryFull);
    }

    #[test]
    fn a_stopped_site_says_what_is_kept() {
        assert!(site_stopped_reason(2, true).contains("worker 2") && site_stopped_reason(2, true).contains("is saved"));
        assert!(site_stopped_reason(0, false).contains("Reload the page to start the site again."));
    }
}

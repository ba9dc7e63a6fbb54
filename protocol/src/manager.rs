//! Between the page and the process manager: a dedicated worker that holds
//! the pool of PHP workers (host/src/manager.rs), so that a request from the
//! service worker reaches a PHP worker without waiting for the page's main
//! thread, where the site's own scripts (the block editor) run.
//!
//! As everywhere, a message is `[bytes, ...attachments]`; each variant names
//! its attachments.

use crate::{Job, JobResult, ScopedRequest, WorkerConfig};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Which PHP worker may run a job.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobTarget {
    /// Any free worker.
    Any,
    /// Only this one (`client.run({worker: 1})`).
    Worker(u32),
}

/// The scheduler's limits (host/src/scheduler.rs): the page parses them
/// from its options, the manager's scheduler keeps to them.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct PoolLimits {
    /// Jobs allowed to wait when every worker is busy.
    pub max_queue: u32,
    pub queue_timeout_ms: f64,
    pub request_timeout_ms: f64,
    /// Jobs a PHP runtime serves before its worker swaps it for a fresh one
    /// (php-wasm's runtimes grow old: see `recycle_due`); 0: never by count.
    pub max_requests: u32,
    /// A PHP runtime whose heap has grown past this many bytes is swapped
    /// after its job, whatever else is going on.
    pub php_heap_limit_bytes: u64,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            max_queue: 256,
            queue_timeout_ms: 30_000.0,
            request_timeout_ms: 60_000.0,
            // Playground's process manager uses the same count.
            max_requests: 400,
            // Half of php.wasm's 2 GiB heap maximum.
            php_heap_limit_bytes: 1 << 30,
        }
    }
}

/// What the manager starts: `workers` PHP workers (and the helpers the
/// memory and the storage call for), each from `config` with its own index,
/// role and duties filled in.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PoolStart {
    pub workers: u32,
    pub limits: PoolLimits,
    /// The workers' script (worker/src-js/worker-entry.js), absolute.
    pub script_url: String,
    pub config: WorkerConfig,
    /// The saved site's slug (`None`: a temporary site).
    pub storage_slug: Option<String>,
}

/// What the storage worker found when it opened the site.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StorageOpened {
    pub restored: bool,
    /// What was damaged, when an older whole state opened instead.
    pub notice: Option<String>,
    pub open_ms: u32,
    /// A damaged image: the site was installed from the zips instead.
    pub from_zips: bool,
}

/// Page → manager.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum ToManager {
    /// Always the first. Attachments: the shared memory (or null without
    /// isolation), the memory's descriptor, the worker module, then the
    /// formatting worker's archives. The helpers start at once.
    Start(PoolStart),
    /// php.wasm is compiled. Attachment: its module. Worker 0 starts; the
    /// other PHP workers start after the first page.
    PhpModule,
    /// Run `job`. Attachment: the port the worker answers on. When no
    /// worker will, the manager answers with `FromManager::GaveUp`.
    Submit { call: u64, target: JobTarget, job: Job },
    /// The service worker sends `scope`'s requests over the attached port.
    ServeScope { scope: String },
    /// A request the service worker sent the page itself (it restarted and
    /// lost its port). Attachment: the port the worker answers on.
    Forwarded(ScopedRequest),
    /// `client.workers()`: answered by `FromManager::Workers`.
    DescribeWorkers { call: u64 },
}

/// Manager → page.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub enum FromManager {
    /// One of the workers the boot waits for is up (the helpers, worker 0).
    WorkerReady { index: u32 },
    /// The boot failed: one of those did not start. Every worker is stopped.
    BootFailed { message: String },
    /// The storage worker opened the site (before it reports ready).
    StorageOpened(StorageOpened),
    /// The manager answered call `call` itself: queue full, waited or ran
    /// too long, a crash, the site stopped, no such worker.
    GaveUp { call: u64, result: JobResult },
    /// The answer to a `Forwarded` request no worker will give; the page
    /// hands it to the service worker (`PageMessage::Reply`).
    ServiceWorkerReply { request_id: u64, result: JobResult },
    Workers { call: u64, workers: Vec<WorkerInfo> },
    /// The site stopped for good (`onSiteStopped`).
    SiteStopped { reason: String, saved: bool },
    /// PHP called `post_message_to_js(data)`. Attachment: the port the
    /// page's `onMessage` listeners answer on (`PhpMessageAnswer`).
    PhpMessage { data: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStateName {
    Booting,
    Idle,
    Busy,
    Stopping,
    Gone,
    Failed,
}

impl WorkerStateName {
    pub fn name(self) -> &'static str {
        match self {
            WorkerStateName::Booting => "booting",
            WorkerStateName::Idle => "idle",
            WorkerStateName::Busy => "busy",
            WorkerStateName::Stopping => "stopping",
            WorkerStateName::Gone => "gone",
            WorkerStateName::Failed => "failed",
        }
    }
}

/// One PHP worker, as `client.workers()` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub index: u32,
    pub state: WorkerStateName,
    pub current_job: Option<u64>,
    pub completed: u64,
    pub timed_out: u64,
    pub crashed: u64,
    pub restarts: u64,
    pub recycled: u64,
    /// Its PHP runtime's heap after its last job.
    pub php_heap_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode, HttpRequest, PhpBuild, SiteKind, WorkerRole};
    use alloc::vec;

    fn config() -> WorkerConfig {
        WorkerConfig {
            index: 0,
            format: false,
            site: SiteKind::Image,
            site_url: "http://127.0.0.1:8080/scope:1".into(),
            document_root: "/wordpress".into(),
            fs_initial_bytes: 1 << 20,
            fs_max_bytes: 1 << 30,
            php_build: PhpBuild::Jspi,
            php_version: "8.3".into(),
            php_loader: "php-8.3-jspi.js".into(),
            role: WorkerRole::Php,
            keeps_site: None,
            networking: true,
            image_fallback: vec!["http://h/wordpress/wp-6.5.zip".into()],
            fetch_if_new: Vec::new(),
        }
    }

    #[test]
    fn messages_to_the_manager_round_trip() {
        let limits = PoolLimits { max_queue: 256, queue_timeout_ms: 30_000.0, request_timeout_ms: 60_000.5, max_requests: 400, php_heap_limit_bytes: 1 << 30 };
        let request = ScopedRequest {
            request_id: 12,
            scope: "1f".into(),
            request: HttpRequest { method: "GET".into(), path_and_query: "/?p=1".into(), scope_url: "http://h/scope:1f/".into(), headers: vec![], body: vec![] },
        };
        for message in [
            ToManager::Start(PoolStart { workers: 4, limits, script_url: "http://h/worker/worker-entry.js".into(), config: config(), storage_slug: Some("my-site".into()) }),
            ToManager::Start(PoolStart { workers: 1, limits, script_url: "w.js".into(), config: config(), storage_slug: None }),
            ToManager::PhpModule,
            ToManager::Submit { call: 3, target: JobTarget::Any, job: Job::Stats },
            ToManager::Submit { call: u64::MAX, target: JobTarget::Worker(7), job: Job::ReadFile { path: "/wordpress/é.php".into() } },
            ToManager::ServeScope { scope: "1f".into() },
            ToManager::Forwarded(request),
            ToManager::DescribeWorkers { call: 9 },
        ] {
            assert_eq!(decode::<ToManager>(&encode(&message)).unwrap(), message);
        }
        assert!(decode::<ToManager>(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn messages_from_the_manager_round_trip() {
        let info = WorkerInfo {
            index: 1,
            state: WorkerStateName::Busy,
            current_job: Some(44),
            completed: 10,
            timed_out: 1,
            crashed: 2,
            restarts: 3,
            recycled: 4,
            php_heap_bytes: 1 << 31,
        };
        let opened = StorageOpened { restored: true, notice: Some("batch 3 is cut short".into()), open_ms: 90, from_zips: false };
        for message in [
            FromManager::WorkerReady { index: 2 },
            FromManager::BootFailed { message: "worker 0 failed to boot: no".into() },
            FromManager::StorageOpened(opened),
            FromManager::GaveUp { call: 5, result: JobResult::Failed { message: "queue full".into(), errno: None } },
            FromManager::ServiceWorkerReply { request_id: 6, result: JobResult::Done },
            FromManager::Workers { call: 7, workers: vec![info.clone(), WorkerInfo { state: WorkerStateName::Gone, current_job: None, ..info }] },
            FromManager::SiteStopped { reason: "worker 1 died holding the allocator".into(), saved: true },
            FromManager::PhpMessage { data: "{\"a\": 1}".into() },
        ] {
            assert_eq!(decode::<FromManager>(&encode(&message)).unwrap(), message);
        }
    }

    #[test]
    fn state_names_are_the_clients() {
        let names: Vec<&str> = [
            WorkerStateName::Booting,
            WorkerStateName::Idle,
            WorkerStateName::Busy,
            WorkerStateName::Stopping,
            WorkerStateName::Gone,
            WorkerStateName::Failed,
        ]
        .iter()
        .map(|s| s.name())
        .collect();
        assert_eq!(names, ["booting", "idle", "busy", "stopping", "gone", "failed"]);
    }
}

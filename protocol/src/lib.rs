//! Every message that crosses a `postMessage` boundary in the runtime.
//!
//! The JS glue only moves bytes (and transferable `MessagePort`s / wasm
//! objects that cannot be serialized); each side's Rust decodes them here, so
//! the three crates can never disagree on a message's shape.

#![no_std]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

pub mod heap_lock;
pub mod manager;
pub mod percent;
pub mod scope;
pub mod shared_memory;
pub mod static_files;
pub mod storage;
pub mod trace;
#[cfg(feature = "web")]
pub mod web;

/// Marks a worker's 404 for a static file the shared filesystem lacks, so
/// the service worker may serve it from the site's static assets instead.
pub const STATIC_MISS_HEADER: &str = "x-site-static-miss";

/// The largest request body the service worker passes on. A body is copied
/// whole through the service worker, the page and the worker: 60 MiB took
/// 26 s here and 200 MiB crashed the page, losing every request in flight.
pub const MAX_REQUEST_BODY_BYTES: u64 = 64 << 20;

/// The 413 message for a body of `bytes`, or `None` when it fits.
pub fn request_body_too_large(bytes: u64) -> Option<String> {
    let mib = |b: u64| b.div_ceil(1 << 20);
    (bytes > MAX_REQUEST_BODY_BYTES).then(|| {
        alloc::format!(
            "The request body is {} MiB; this site accepts at most {} MiB (the whole body passes through the browser page's memory).",
            mib(bytes),
            mib(MAX_REQUEST_BODY_BYTES)
        )
    })
}

/// `client.defineConstant`'s constants, a JSON object on the shared
/// filesystem; every PHP worker defines them before each run (worker jobs.rs).
pub const CONSTANTS_PATH: &str = "/internal/shared/consts.json";

/// Header list in arrival order; names may repeat (`Set-Cookie`).
pub type Headers = Vec<(String, String)>;

/// An HTTP request for a site, as the service worker saw it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// Path and query relative to the scope root, always starting with `/`.
    pub path_and_query: String,
    /// The full URL of the scope root (`https://host/scope:x/`), for `$_SERVER`.
    pub scope_url: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response that says `message` to a person, as plain UTF-8 text.
    pub fn plain_text(status: u16, message: impl Into<String>) -> HttpResponse {
        HttpResponse {
            status,
            headers: alloc::vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: message.into().into_bytes(),
        }
    }
}

/// Work the host hands to one PHP worker. The reply travels on the
/// `MessagePort` transferred with the job, never on the worker's main channel.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Run PHP code or a script (`client.run`).
    Run(RunRequest),
    /// Serve one HTTP request of the site.
    Http(HttpRequest),
    WriteFile { path: String, data: Vec<u8> },
    ReadFile { path: String },
    /// Creates a directory and any missing parents.
    Mkdir { path: String },
    /// Removes a file (not a directory).
    Unlink { path: String },
    /// Names in a directory, without `.` and `..`.
    ListFiles { path: String },
    FileExists { path: String },
    Stats,
    /// A zip of the whole document root.
    ExportSite,
    /// Renames a file or directory (`client.mv`).
    Rename { from: String, to: String },
    /// Removes a directory; with `recursive`, its contents first.
    Rmdir { path: String, recursive: bool },
    IsDir { path: String },
    /// Copies a file, or a directory with its contents (`client.cp`).
    Copy { from: String, to: String },
    /// The site as a new site's image: a zip of the document root and of
    /// the compiled scripts beside it, names from `/` (`SiteKind::Image`).
    ExportImage,
    /// A reopened site's SQLite integration brought up to this zip's (the
    /// one new sites get) when it is older (`JobResult::Upgraded`, else `Done`).
    UpgradeSqliteIntegration { zip: Vec<u8> },
}

/// What `client.run` runs: php-wasm's `run` options that cross to the worker.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub source: RunSource,
    /// Environment variables (`getenv`), in the caller's order.
    pub env: Vec<(String, String)>,
    /// The request body (`php://input`).
    pub body: Vec<u8>,
    /// The working directory PHP starts in (`client.chdir`).
    pub cwd: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum RunSource {
    Code(String),
    /// An absolute path of a PHP file.
    Script(String),
}

/// The shared filesystem's space, for `client.stats()`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct FsStats {
    pub capacity: u64,
    pub used: u64,
    pub high_water: u64,
    pub max: u64,
    pub inodes: u64,
    /// Bytes of the shared memory (filesystem, worker heaps and stacks).
    pub memory_bytes: u64,
    /// Bytes the shared Rust heap holds now, and the most it ever held.
    pub heap_bytes: u64,
    pub heap_peak: u64,
    /// Times a filesystem operation waited for one of the filesystem's own
    /// locks, held by another thread (fcntl and flock conflicts not counted).
    pub lock_waits: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Index of the worker that ran it.
    pub worker: u32,
    /// What PHP printed (not always UTF-8).
    pub bytes: Vec<u8>,
    pub errors: String,
    pub exit_code: i32,
    pub status: u16,
    pub headers: Headers,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Run(RunOutput),
    Http(HttpResponse),
    File(Vec<u8>),
    Names(Vec<String>),
    Bool(bool),
    Stats(FsStats),
    Done,
    /// `Job::UpgradeSqliteIntegration` replaced version `from` with `to`.
    Upgraded { from: String, to: String },
    /// The job could not be done; `errno` names the filesystem error if any.
    Failed { message: String, errno: Option<String> },
}

/// Start-up parameters of a worker. The shared memory and compiled modules
/// travel beside this as JS objects.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    pub index: u32,
    /// The first worker formats the shared filesystem and installs the
    /// site into it; the others attach.
    pub format: bool,
    pub site: SiteKind,
    /// The site's base URL without a trailing slash (WordPress's home URL).
    pub site_url: String,
    pub document_root: String,
    pub fs_initial_bytes: u64,
    pub fs_max_bytes: u64,
    pub php_build: PhpBuild,
    /// The PHP version (`8.3`): some php.ini entries depend on it.
    pub php_version: String,
    /// php-wasm's loader for the chosen PHP version and build: a file beside
    /// the worker's entry, which imports it (host/src/versions.rs names it).
    pub php_loader: String,
    pub role: WorkerRole,
    /// The saved site this worker keeps the storage of (the storage worker,
    /// or the single worker without isolation); `None`: not its business.
    pub keeps_site: Option<String>,
    /// PHP's outgoing HTTP goes out through `fetch()`; off, it fails with a
    /// clear error (worker/src/net.rs).
    pub networking: bool,
    /// With `SiteKind::Image`: the archives to install instead (as
    /// `SiteKind::WordPress`) if the image is damaged.
    pub image_fallback: Vec<String>,
    /// Where the site's archives are when the page sent none, expecting the
    /// saved site to reopen: the formatter fetches them only if it does not.
    pub fetch_if_new: Vec<String>,
}

/// The `networking` option given as a name (the page's `?networking=no`):
/// on unless `no`, `false` or `0`.
pub fn networking_from_name(name: &str) -> Option<bool> {
    match name {
        "yes" | "true" | "1" | "" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// What a worker serves.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerRole {
    /// Runs PHP: any job.
    Php,
    /// Serves static files from the shared filesystem, without PHP, so they
    /// never wait behind PHP requests. A request that turns out to need PHP
    /// goes back to the host (`WorkerEvent::NeedsPhp`).
    Files,
    /// Keeps the site's saved copy (worker/src/storage.rs): opens it (or
    /// installs the site when there is none) and stores every change.
    Storage,
}

/// Which php-wasm build runs PHP. Both are the same PHP; they differ in how
/// PHP waits for JavaScript.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhpBuild {
    /// JavaScript Promise Integration: the engine suspends wasm itself.
    Jspi,
    /// Binaryen's asyncify: slower, runs everywhere.
    Asyncify,
}

impl PhpBuild {
    /// JSPI where the browser has it (`WebAssembly.Suspending` and
    /// `WebAssembly.promising`), unless `forced` names a build. Decided on
    /// the page before any worker starts: JSPI forced where the browser
    /// lacks it is refused here, not left to fail inside a worker.
    pub fn choose(browser_has_jspi: bool, forced: Option<PhpBuild>) -> Result<PhpBuild, String> {
        match forced {
            Some(PhpBuild::Jspi) if !browser_has_jspi => Err(String::from(
                "phpBuild=jspi cannot run here: this browser lacks JSPI (WebAssembly.Suspending and \
                 WebAssembly.promising). Use phpBuild=asyncify, or leave phpBuild out to have the build chosen.",
            )),
            Some(build) => Ok(build),
            None if browser_has_jspi => Ok(PhpBuild::Jspi),
            None => Ok(PhpBuild::Asyncify),
        }
    }

    /// The option value naming this build (`?phpBuild=`), and the binary's
    /// file name in the worker's folder.
    pub fn name(self) -> &'static str {
        match self {
            PhpBuild::Jspi => "jspi",
            PhpBuild::Asyncify => "asyncify",
        }
    }

    pub fn from_name(name: &str) -> Option<PhpBuild> {
        [PhpBuild::Jspi, PhpBuild::Asyncify].into_iter().find(|b| b.name() == name)
    }
}

/// What the formatting worker installs into the document root. Archive
/// bytes travel beside the config (JS ArrayBuffers, transferred).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum SiteKind {
    /// An empty document root.
    Blank,
    /// WordPress: archives are the WordPress build and the SQLite plugin.
    WordPress,
    /// A zip of a document root, e.g. one `client.exportSite()` made.
    Archive,
    /// A site image made at build time (`Job::ExportImage`): the document
    /// root with WordPress's first run done, and its compiled scripts;
    /// names from `/`.
    Image,
}

/// What a worker reports to the host on its own channel. Its death is the
/// one report that is not one of these: a worker whose module trapped
/// cannot be trusted to encode anything, so it says so in plain JS
/// (worker-entry.js `die`, host/src/pool.rs `died`), as it does when its
/// boot fails before its module runs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent {
    /// Booted; `safe_point` is the byte address of its safe-point word in
    /// the shared memory (see shared-fs's owner.rs).
    Ready { index: u32, safe_point: u32 },
    /// The storage worker opened the saved site (`restored`) or made a new
    /// one; `notice` says what was damaged if it opened an older state.
    /// `open_ms`: how long reading it into the shared filesystem took.
    /// `from_zips`: a new site's image was damaged, so the site was
    /// installed from the WordPress zips instead.
    StorageOpened { restored: bool, notice: Option<String>, open_ms: u32, from_zips: bool },
    /// The worker finished job `id` and is free again; its PHP runtime's
    /// heap is `php_heap_bytes` (0 without PHP), for the host to decide
    /// whether it is due a fresh one (`ToWorker::Recycle`).
    JobDone { id: u64, php_heap_bytes: u64 },
    /// The file server cannot answer job `id` (its path is a PHP script):
    /// its reply port travels back with this event for a PHP worker.
    NeedsPhp { id: u64 },
    /// PHP called `post_message_to_js(data)` (and it was not the runtime's
    /// own: network, locks). Attachment: the port the page's
    /// `onMessage` listeners answer on, with a `PhpMessageAnswer`.
    PhpMessage { data: String },
}

/// Host → worker, on a `PhpMessage`'s port: what `post_message_to_js`
/// returns to PHP.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PhpMessageAnswer(pub String);

/// Service worker → host: one request to schedule. A reply port travels
/// beside it; the worker answers on that port. If the host gives up on the
/// request (queue full, timeout, crash) it answers the service worker
/// directly, naming `request_id`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ScopedRequest {
    pub request_id: u64,
    pub scope: String,
    pub request: HttpRequest,
}

/// Host → worker on the worker's own channel.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct JobEnvelope {
    pub id: u64,
    pub job: Job,
}

// Every postMessage in the runtime carries `[bytes, ...attachments]`: the
// bytes are one of the enums below, encoded here; the attachments are what
// cannot be serialized (ports, memory, compiled modules, archive buffers),
// in the order each variant names. The JS glue never looks inside.

/// The Rust stack of each worker: the first one's is the module's static
/// stack (playground/build.mjs links it with this size), the others'
/// wasm-bindgen carves from the shared memory at start. Its default is
/// 2 MiB (1 MiB for the static one); the deepest measured in a WordPress
/// session is about 73 KiB, and nothing recurses per directory level.
pub const WORKER_STACK_BYTES: u32 = 256 * 1024;

/// Host → worker, on the worker's own channel.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// Always the first message. Attachments: the shared memory (or null
    /// without isolation), the memory's descriptor, `WORKER_STACK_BYTES`,
    /// the worker module, php.wasm's module, then the site's archives.
    Boot(WorkerConfig),
    /// Attachment: the port the reply goes to.
    Job(JobEnvelope),
    /// Swap the PHP runtime for a fresh one between jobs (php-wasm's
    /// runtimes grow old), keeping the filesystem; then report `Ready`
    /// again. No attachment.
    Recycle,
}

/// Between the host page and the service worker, both ways.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum PageMessage {
    /// Page → service worker: this page serves `scope`. Attachment: the port
    /// the service worker sends the scope's requests over.
    ClaimScope { scope: String, assets_url: Option<String> },
    /// Service worker → process manager (over the claim's port; after a
    /// restart, to the page, which passes it on): schedule this request.
    /// Attachment: the port the worker answers on.
    Http(ScopedRequest),
    /// Process manager (or page) → service worker: the answer to a request
    /// no worker will answer (queue full, timeout, crash).
    Reply { request_id: u64, result: JobResult },
}

impl PageMessage {
    /// The request in a message to the process manager (`Http`), or why
    /// there is none: the manager's port and the page's fallback after a
    /// service worker restart take requests alike.
    pub fn decode_request(bytes: &[u8]) -> Result<ScopedRequest, String> {
        match decode::<PageMessage>(bytes)? {
            PageMessage::Http(scoped) => Ok(scoped),
            other => Err(alloc::format!("the service worker sent {other:?}, not a request")),
        }
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain types into a Vec cannot fail.
    postcard::to_allocvec(value).unwrap_or_default()
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| alloc::format!("malformed message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn job_round_trips() {
        let job = JobEnvelope {
            id: 7,
            job: Job::Http(HttpRequest {
                method: "POST".into(),
                path_and_query: "/a.php?x=1".into(),
                scope_url: "http://127.0.0.1:8080/scope:1/".into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"hello".to_vec(),
            }),
        };
        let bytes = encode(&job);
        assert_eq!(decode::<JobEnvelope>(&bytes).unwrap(), job);
    }

    #[test]
    fn run_and_file_jobs_round_trip() {
        let jobs = [
            Job::Run(RunRequest {
                source: RunSource::Code("<?php echo getenv('A');".into()),
                env: vec![("A".into(), "1".into())],
                body: b"x=1".to_vec(),
                cwd: "/wordpress".into(),
            }),
            Job::Run(RunRequest { source: RunSource::Script("/tmp/a.php".into()), env: vec![], body: vec![], cwd: "/".into() }),
            Job::Rename { from: "/a".into(), to: "/b".into() },
            Job::Rmdir { path: "/a".into(), recursive: true },
            Job::IsDir { path: "/a".into() },
            Job::Copy { from: "/a".into(), to: "/b".into() },
            Job::ExportImage,
            Job::UpgradeSqliteIntegration { zip: b"PK".to_vec() },
        ];
        for job in jobs {
            let envelope = ToWorker::Job(JobEnvelope { id: 2, job });
            assert_eq!(decode::<ToWorker>(&encode(&envelope)).unwrap(), envelope);
        }
    }

    #[test]
    fn worker_config_round_trips() {
        let config = WorkerConfig {
            index: 3,
            format: true,
            site: SiteKind::WordPress,
            site_url: "http://127.0.0.1:8080/scope:1".into(),
            document_root: "/wordpress".into(),
            fs_initial_bytes: 1 << 20,
            fs_max_bytes: 1 << 30,
            php_build: PhpBuild::Asyncify,
            php_version: "7.4".into(),
            php_loader: "php-7.4-asyncify.js".into(),
            role: WorkerRole::Files,
            keeps_site: None,
            networking: false,
            image_fallback: vec!["http://h/wordpress/wp-6.5.zip".into()],
            fetch_if_new: vec!["http://h/site-images/wp-6.5.img".into()],
        };
        assert_eq!(decode::<WorkerConfig>(&encode(&config)).unwrap(), config);
    }

    #[test]
    fn networking_is_turned_off_by_no_false_or_0_only() {
        for on in ["yes", "true", "1", ""] {
            assert_eq!(networking_from_name(on), Some(true), "{on}");
        }
        for off in ["no", "false", "0"] {
            assert_eq!(networking_from_name(off), Some(false), "{off}");
        }
        assert_eq!(networking_from_name("off-ish"), None);
    }

    #[test]
    fn jspi_is_chosen_where_the_browser_has_it_unless_forced() {
        assert_eq!(PhpBuild::choose(true, None), Ok(PhpBuild::Jspi));
        assert_eq!(PhpBuild::choose(false, None), Ok(PhpBuild::Asyncify));
        assert_eq!(PhpBuild::choose(true, Some(PhpBuild::Asyncify)), Ok(PhpBuild::Asyncify));
        assert_eq!(PhpBuild::choose(false, Some(PhpBuild::Asyncify)), Ok(PhpBuild::Asyncify));
        assert_eq!(PhpBuild::choose(true, Some(PhpBuild::Jspi)), Ok(PhpBuild::Jspi));
        for build in [PhpBuild::Jspi, PhpBuild::Asyncify] {
            assert_eq!(PhpBuild::from_name(build.name()), Some(build));
        }
        assert_eq!(PhpBuild::from_name("emterpreter"), None);
    }

    #[test]
    fn a_request_body_past_the_limit_is_named_with_both_sizes() {
        assert_eq!(request_body_too_large(MAX_REQUEST_BODY_BYTES), None);
        assert_eq!(request_body_too_large(0), None);
        let message = request_body_too_large(200 << 20).unwrap();
        assert!(message.starts_with("The request body is 200 MiB; this site accepts at most 64 MiB"), "{message}");
    }

    #[test]
    fn forced_jspi_without_jspi_is_refused_naming_the_fallback() {
        let message = PhpBuild::choose(false, Some(PhpBuild::Jspi)).unwrap_err();
        assert!(message.contains("lacks JSPI"), "{message}");
        assert!(message.contains("phpBuild=asyncify"), "{message}");
    }

    #[test]
    fn worker_events_round_trip() {
        for event in [
            WorkerEvent::Ready { index: 2, safe_point: 4096 },
            WorkerEvent::JobDone { id: 9, php_heap_bytes: 1 << 31 },
            WorkerEvent::NeedsPhp { id: 10 },
            WorkerEvent::PhpMessage { data: "{\"ünïcode\": [1, 2]}".into() },
            WorkerEvent::StorageOpened { restored: true, notice: Some("batch 3 is cut short".into()), open_ms: 120, from_zips: false },
            WorkerEvent::StorageOpened { restored: false, notice: Some("damaged image".into()), open_ms: 0, from_zips: true },
        ] {
            assert_eq!(decode::<WorkerEvent>(&encode(&event)).unwrap(), event);
        }
    }

    #[test]
    fn php_message_answers_round_trip() {
        for answer in [PhpMessageAnswer(String::new()), PhpMessageAnswer("ok \u{1F600}".into())] {
            assert_eq!(decode::<PhpMessageAnswer>(&encode(&answer)).unwrap(), answer);
        }
        assert!(decode::<PhpMessageAnswer>(&[0xff]).is_err());
    }

    #[test]
    fn envelopes_round_trip() {
        let boot = ToWorker::Boot(WorkerConfig {
            index: 0,
            format: true,
            site: SiteKind::Blank,
            site_url: "http://h/scope:a".into(),
            document_root: "/wordpress".into(),
            fs_initial_bytes: 1,
            fs_max_bytes: 2,
            php_build: PhpBuild::Jspi,
            php_version: "8.3".into(),
            php_loader: "php-8.3-jspi.js".into(),
            role: WorkerRole::Php,
            keeps_site: Some("my-site".into()),
            networking: true,
            image_fallback: Vec::new(),
            fetch_if_new: Vec::new(),
        });
        let job = ToWorker::Job(JobEnvelope { id: 1, job: Job::Stats });
        for message in [boot, job, ToWorker::Recycle] {
            assert_eq!(decode::<ToWorker>(&encode(&message)).unwrap(), message);
        }
        let request = HttpRequest {
            method: "GET".into(),
            path_and_query: "/".into(),
            scope_url: "http://h/scope:a/".into(),
            headers: vec![],
            body: vec![],
        };
        for message in [
            PageMessage::ClaimScope { scope: "a".into(), assets_url: Some("/wordpress/wp-6.5/".into()) },
            PageMessage::Http(ScopedRequest { request_id: 3, scope: "a".into(), request: request.clone() }),
            PageMessage::Reply { request_id: 3, result: JobResult::Failed { message: "busy".into(), errno: None } },
        ] {
            assert_eq!(decode::<PageMessage>(&encode(&message)).unwrap(), message);
        }
        assert!(decode::<PageMessage>(&[0xff, 0xff]).is_err(), "a stray message is an error, not a guess");
        let http = PageMessage::Http(ScopedRequest { request_id: 4, scope: "a".into(), request });
        assert_eq!(PageMessage::decode_request(&encode(&http)).unwrap().request_id, 4);
        let claim = encode(&PageMessage::ClaimScope { scope: "a".into(), assets_url: None });
        assert!(PageMessage::decode_request(&claim).unwrap_err().contains("not a request"));
        assert!(PageMessage::decode_request(&[0xff, 0xff]).unwrap_err().starts_with("malformed message"));
    }

    #[test]
    fn truncated_message_is_an_error() {
        let bytes = encode(&JobResult::Run(RunOutput {
            worker: 0,
            bytes: b"abc".to_vec(),
            errors: "".into(),
            exit_code: 0,
            status: 200,
            headers: vec![],
        }));
        let err = decode::<JobResult>(&bytes[..bytes.len() - 2]).unwrap_err();
        assert!(err.starts_with("malformed message"), "{err}");
    }
}

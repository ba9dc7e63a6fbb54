//! The site's saved copy in the origin private file system (OPFS).
//!
//! One worker keeps the storage: the storage worker when the memory is
//! shared, else the single PHP worker. It holds sync access handles on the
//! site's two log files (`protocol::storage::LOG_FILES`); how the log is
//! written and compacted is shared-fs's (`persist/log.rs`, `LogWriter`):
//! this holds the browser's files, where the log stands, and the waiting.
//!
//! The promise: a request whose response reached the page is stored. A PHP
//! worker that changed files asks the keeper to save and waits before it
//! replies (`store_before_reply`); the keeper saves every change made since its last
//! batch in one batch (so concurrent requests share a flush).

use std::cell::RefCell;
use std::time::Duration;

use js_sys::Uint8Array;
use shared_fs::{FileSystem, Log, LogFile, LogWriter, Sink, Source};
use wasm_bindgen::prelude::*;
use web_sys::{FileSystemReadWriteOptions, FileSystemSyncAccessHandle};

/// Bytes copied between the shared memory and a handle at a time.
const IO_CHUNK: usize = 1 << 20;
/// How long a worker waits for its changes to be stored before it answers
/// with an error instead.
const SAVE_TIMEOUT: Duration = Duration::from_secs(15);

/// One of the log's files: an OPFS sync access handle, and why the browser
/// refused its last write (shared-fs reports only `EIO`, and a person
/// should read the browser's reason).
struct Handle {
    handle: FileSystemSyncAccessHandle,
    refusal: Option<String>,
    /// The private buffer reads and writes go through (`IO_CHUNK` bytes):
    /// the shared memory's views are not accepted everywhere. Made once.
    buffer: Option<Uint8Array>,
}

fn at(offset: u64) -> FileSystemReadWriteOptions {
    let options = FileSystemReadWriteOptions::new();
    options.set_at(offset as f64);
    options
}

impl Sink for Handle {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let written = self.write_chunks(offset, bytes);
        if let Err(reason) = &written {
            self.refusal = Some(reason.clone());
        }
        written
    }
}

impl Handle {
    /// The first `len` (≤ `IO_CHUNK`) bytes of the private buffer.
    fn buffer(&mut self, len: usize) -> Uint8Array {
        self.buffer.get_or_insert_with(|| Uint8Array::new_with_length(IO_CHUNK as u32)).subarray(0, len as u32)
    }

    fn write_chunks(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        for (i, chunk) in bytes.chunks(IO_CHUNK).enumerate() {
            let buffer = self.buffer(chunk.len());
            buffer.copy_from(chunk);
            let written = self.handle.write_with_js_u8_array_and_options(&buffer, &at(offset + (i * IO_CHUNK) as u64)).map_err(|e| crate::message_of(&e))?;
            // Chromium answers a write past the quota with a short (even
            // negative) count rather than an error.
            if written != chunk.len() as f64 {
                return Err("the browser's storage for this site is full (it refused a write)".into());
            }
        }
        Ok(())
    }
}

impl Source for Handle {
    fn len(&self) -> u64 {
        self.handle.get_size().unwrap_or(0.0) as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(IO_CHUNK);
            let buffer = self.buffer(n);
            let got = self.handle.read_with_js_u8_array_and_options(&buffer, &at(offset + done as u64)).map_err(|e| crate::message_of(&e))? as usize;
            buffer.subarray(0, got as u32).copy_to(&mut buf[done..done + got]);
            done += got;
            if got < n {
                break;
            }
        }
        Ok(done)
    }
}

impl LogFile for Handle {
    fn flush(&mut self) -> Result<(), String> {
        self.handle.flush().map_err(|e| crate::message_of(&e))
    }

    fn truncate(&mut self, len: u64) -> Result<(), String> {
        self.handle.truncate_with_f64(len as f64).map_err(|e| crate::message_of(&e))
    }

    fn take_refusal(&mut self) -> Option<String> {
        self.refusal.take()
    }
}

/// `Log`'s cell, in a static (shared memory), so a replacement keeper goes
/// on where a dead one stopped. Not a mutex: a keeper that dies mid-save
/// would hold it for ever, and its replacement could never save. Only the
/// keeper touches it, and there is one keeper at a time, so it needs no
/// lock. A keeper stores the log whole once a save is done, so a
/// replacement finds the state after the last save that finished; its
/// first save is a whole image (`LogWriter`), whatever the dead keeper left
/// half-done.
struct KeeperLog(std::cell::UnsafeCell<Option<Log>>);

// SAFETY: accessed only through `KeeperLog::with`, whose callers are the
// one keeper.
unsafe impl Sync for KeeperLog {}

impl KeeperLog {
    /// # Safety
    /// Only the worker that keeps the storage may call this, and only one
    /// worker keeps it at a time: the host starts a replacement keeper only
    /// once the previous one is terminated (host/src/pool.rs
    /// `stop_then_respawn`), and a keeper never calls this re-entrantly.
    unsafe fn with<R>(&self, f: impl FnOnce(&mut Option<Log>) -> R) -> R {
        // SAFETY: exclusive by the caller's contract.
        f(unsafe { &mut *self.0.get() })
    }
}

static LOG: KeeperLog = KeeperLog(std::cell::UnsafeCell::new(None));

thread_local! {
    /// The keeper's handles (JS objects: they belong to this worker alone).
    static FILES: RefCell<Option<[Handle; 2]>> = const { RefCell::new(None) };
    /// The keeper's own rules and memory (a replacement starts afresh).
    static WRITER: RefCell<LogWriter> = RefCell::new(keeper_writer(LogWriter::default()));
    /// Turns since the last save failed (`storage_step`).
    static TURNS_SINCE_FAILURE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn keeper_writer(mut writer: LogWriter) -> LogWriter {
    writer.after_batch = || crate::fault::helper_fault_point(crate::fault::HelperFault::StorageMidBatch);
    writer
}

/// Takes the keeper's handles (an array of `FileSystemSyncAccessHandle`,
/// one per `protocol::storage::LOG_FILES` entry).
pub(crate) fn keep(handles: &js_sys::Array) -> Result<(), String> {
    let handles: Vec<Handle> = handles.iter().map(|h| Handle { handle: h.unchecked_into(), refusal: None, buffer: None }).collect();
    let handles: [Handle; 2] = handles
        .try_into()
        .map_err(|h: Vec<Handle>| format!("expected {} storage files, got {}", protocol::storage::LOG_FILES.len(), h.len()))?;
    FILES.with(|f| *f.borrow_mut() = Some(handles));
    Ok(())
}

pub(crate) fn keeps_storage() -> bool {
    FILES.with(|f| f.borrow().is_some())
}

fn with_files<R>(f: impl FnOnce(&mut [&mut dyn LogFile; 2]) -> Result<R, String>) -> Result<R, String> {
    FILES.with(|files| match files.borrow_mut().as_mut() {
        Some([a, b]) => f(&mut [a as &mut dyn LogFile, b as &mut dyn LogFile]),
        None => Err("this worker does not keep the storage".into()),
    })
}

/// Opens the saved site: `Ok(Some((fs, notice)))` if one is stored,
/// `Ok(None)` if the files are empty (a new site), `Err` if something is
/// stored and no state of it is whole (the site refuses to open).
pub(crate) fn open(config: shared_fs::Config) -> Result<Option<(FileSystem, Option<String>)>, String> {
    with_files(|files| {
        let Some((fs, log, notice)) = shared_fs::open_log(config, files, protocol::storage::LOG_FILES)? else {
            return Ok(None);
        };
        // SAFETY: `open` runs in the keeper.
        unsafe { LOG.with(|l| *l = Some(log)) };
        WRITER.with(|w| *w.borrow_mut() = keeper_writer(LogWriter::default().opened()));
        Ok(Some((fs, notice)))
    })
}

/// Stores every change since the last batch (or compacts), then flushes.
fn save_now(fs: &FileSystem) -> Result<(), String> {
    let covers = fs.last_change();
    // SAFETY: only the keeper saves (`storage_step`, or `store_before_reply` in the
    // keeper itself).
    let result = unsafe { LOG.with(|log| with_files(|files| WRITER.with(|w| w.borrow_mut().save(fs, files, log)))) };
    if let Err(why) = &result {
        if fs.save_failure().as_ref() != Some(why) {
            web_sys::console::error_1(&format!("saving the site failed: {why}").into());
        }
        // Its waiters hear it now (the reason is kept in the filesystem's
        // tracker, under a lock a dead keeper does not keep); the changes
        // stay unsaved and the next turn tries again.
        fs.mark_save_failed(covers, why);
    }
    result
}

/// How long one turn of the storage worker's loop waits for a worker to
/// want its changes stored; between turns its event loop runs.
const TURN: Duration = Duration::from_millis(500);
/// Turns between tries to store changes after a save failed.
const RETRY_TURNS: u32 = 10;

/// The storage worker's loop body: waits up to `TURN` for a worker to
/// want its changes stored, then stores whatever changed.
#[wasm_bindgen]
pub fn storage_step() -> Result<(), JsValue> {
    let fs = crate::fs()?;
    let wanted = fs.wait_save_wanted(TURN);
    // After a failure (a full quota, say), changes nobody waits for are
    // tried again every `RETRY_TURNS` turns, not every turn.
    let failing = fs.save_failure().is_some();
    let turns = TURNS_SINCE_FAILURE.with(|t| t.replace(t.get().saturating_add(1)));
    if wanted || (fs.has_unsaved_changes() && (!failing || turns >= RETRY_TURNS)) {
        TURNS_SINCE_FAILURE.with(|t| t.set(0));
        // A failure is logged (once) and told to its waiters by `save_now`.
        let _ = save_now(fs);
    }
    Ok(())
}

/// Called by a worker after a job, before it replies: makes the job's
/// changes durable. Returns the reply to send: `reply` itself, or, if they
/// could not be stored, an error in its place (`JobResult` bytes).
#[wasm_bindgen]
pub fn store_before_reply(reply: Vec<u8>) -> Result<Vec<u8>, JsValue> {
    let fs = crate::fs()?;
    let Some(change) = fs.unsaved_change() else { return Ok(reply) };
    let outcome = if keeps_storage() {
        save_now(fs)
    } else {
        fs.wait_saved(change, SAVE_TIMEOUT).map_err(|e| match (e, fs.save_failure()) {
            (shared_fs::Errno::EIO, Some(why)) => why,
            _ => format!("storage did not confirm within {} s", SAVE_TIMEOUT.as_secs()),
        })
    };
    let Err(why) = outcome else { return Ok(reply) };
    let message = format!("The request ran, but its changes could not be saved: {why}");
    let failed = match protocol::decode::<protocol::JobResult>(&reply) {
        Ok(protocol::JobResult::Http(_)) => protocol::JobResult::Http(protocol::HttpResponse::plain_text(500, message)),
        _ => protocol::JobResult::Failed { message, errno: None },
    };
    Ok(protocol::encode(&failed))
}

//! The site's saved copy in the origin private file system (OPFS).
//!
//! One worker keeps the storage: the storage worker when the memory is
//! shared, else the single PHP worker. It holds sync access handles on the
//! site's two log files (`protocol::storage::LOG_FILES`): the active one is
//! an image followed by change batches (shared-fs `persist`); compaction
//! writes a fresh image into the other one, which keeps the previous state
//! until the next compaction, so a damaged newest image still leaves one
//! whole state to open.
//!
//! The promise: a request whose response reached the page is stored. A PHP
//! worker that changed files asks the keeper to save and waits before it
//! replies (`settle`); the keeper saves every change made since its last
//! batch in one batch (so concurrent requests share a flush).

use std::cell::RefCell;
use std::time::Duration;

use js_sys::Uint8Array;
use shared_fs::{FileSystem, Opened, Sink, Source, StoredFile};
use wasm_bindgen::prelude::*;
use web_sys::{FileSystemReadWriteOptions, FileSystemSyncAccessHandle};

/// Bytes copied between the shared memory and a handle at a time.
const IO_CHUNK: usize = 1 << 20;
/// Compact when the change batches outgrow the image by this factor...
const COMPACT_FACTOR: u64 = 2;
/// ...and the log is at least this long.
const COMPACT_MIN_BYTES: u64 = 8 << 20;
/// How long a worker waits for its changes to be stored before it answers
/// with an error instead.
const SAVE_TIMEOUT: Duration = Duration::from_secs(15);

struct Handle(FileSystemSyncAccessHandle);

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::Error::try_from(e.clone()).ok().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

fn at(offset: u64) -> FileSystemReadWriteOptions {
    let options = FileSystemReadWriteOptions::new();
    options.set_at(offset as f64);
    options
}

thread_local! {
    /// Why the browser refused the last write (a full quota, say): shared-fs
    /// reports only `EIO`, and a person should read the browser's reason.
    static WRITE_REFUSED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `context` and the browser's reason for refusing a write, or the errno.
fn save_error(context: &str, errno: shared_fs::Errno) -> String {
    match WRITE_REFUSED.with(|w| w.borrow_mut().take()) {
        Some(reason) => format!("{context}: {reason}"),
        None => format!("{context}: {}", errno.name()),
    }
}

impl Sink for Handle {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let written = self.write_chunks(offset, bytes);
        if let Err(reason) = &written {
            WRITE_REFUSED.with(|w| *w.borrow_mut() = Some(reason.clone()));
        }
        written
    }
}

impl Handle {
    fn write_chunks(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        // Through a private buffer: the shared memory's views are not
        // accepted everywhere, and the copy is cheap next to the write.
        for (i, chunk) in bytes.chunks(IO_CHUNK).enumerate() {
            let buffer = Uint8Array::new_with_length(chunk.len() as u32);
            buffer.copy_from(chunk);
            let written = self.0.write_with_js_u8_array_and_options(&buffer, &at(offset + (i * IO_CHUNK) as u64)).map_err(js_error)?;
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
        self.0.get_size().unwrap_or(0.0) as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(IO_CHUNK);
            let buffer = Uint8Array::new_with_length(n as u32);
            let got = self.0.read_with_js_u8_array_and_options(&buffer, &at(offset + done as u64)).map_err(js_error)? as usize;
            buffer.subarray(0, got as u32).copy_to(&mut buf[done..done + got]);
            done += got;
            if got < n {
                break;
            }
        }
        Ok(done)
    }
}

impl Handle {
    fn flush(&self) -> Result<(), String> {
        self.0.flush().map_err(js_error)
    }

    fn truncate(&self, len: u64) -> Result<(), String> {
        self.0.truncate_with_f64(len as f64).map_err(js_error)
    }
}

/// Where the log stands. In a static (shared memory), so a replacement
/// keeper goes on where a dead one stopped (`KeeperLog`).
#[derive(Clone, Copy)]
struct Log {
    active: usize,
    generation: u64,
    next_index: u32,
    end: u64,
    image_bytes: u64,
}

/// `Log`'s cell. Not a mutex: a keeper that dies mid-save would hold it
/// for ever, and its replacement could never save. Only the keeper touches
/// it, and there is one keeper at a time, so it needs no lock. A keeper
/// stores the log whole once a save is done, so a replacement finds the
/// state after the last save that finished; its first save is a whole
/// image (`save_into`), whatever the dead keeper left half-done.
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
    /// Where the log ended when a compaction last failed (`None`: it did not).
    static COMPACTION_FAILED_AT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// Turns since the last save failed (`storage_step`).
    static TURNS_SINCE_FAILURE: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Whether this keeper knows the log's files as `LOG` says: it opened
    /// or created them, or has written a whole image since it took over.
    static LOG_IS_MINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
/// Why the last save failed, until one succeeds; waiting workers answer with it.
static SAVE_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

thread_local! {
    /// The keeper's handles (JS objects: they belong to this worker alone).
    static FILES: RefCell<Option<Vec<Handle>>> = const { RefCell::new(None) };
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes the keeper's handles (an array of `FileSystemSyncAccessHandle`,
/// one per `protocol::storage::LOG_FILES` entry).
pub(crate) fn keep(handles: &js_sys::Array) -> Result<(), String> {
    let handles: Vec<Handle> = handles.iter().map(|h| Handle(h.unchecked_into())).collect();
    if handles.len() != protocol::storage::LOG_FILES.len() {
        return Err(format!("expected {} storage files, got {}", protocol::storage::LOG_FILES.len(), handles.len()));
    }
    FILES.with(|f| *f.borrow_mut() = Some(handles));
    Ok(())
}

pub(crate) fn keeps_storage() -> bool {
    FILES.with(|f| f.borrow().is_some())
}

fn with_files<R>(f: impl FnOnce(&mut [Handle]) -> Result<R, String>) -> Result<R, String> {
    FILES.with(|files| match files.borrow_mut().as_mut() {
        Some(files) => f(files),
        None => Err("this worker does not keep the storage".into()),
    })
}

/// Opens the saved site: `Ok(Some((fs, notice)))` if one is stored,
/// `Ok(None)` if the files are empty (a new site), `Err` if something is
/// stored and no state of it is whole (the site refuses to open).
pub(crate) fn open(config: shared_fs::Config) -> Result<Option<(FileSystem, Option<String>)>, String> {
    with_files(|files| {
        let names = protocol::storage::LOG_FILES;
        let mut stored: Vec<StoredFile<'_>> =
            files.iter_mut().zip(names).map(|(h, name)| StoredFile { name, source: h as &mut dyn Source }).collect();
        let Some(Opened { fs, file, generation, next_index, end, image_end, notice }) = FileSystem::open_saved(config, &mut stored)? else {
            return Ok(None);
        };
        // Every structural invariant, before anyone uses it.
        fs.check().map_err(|e| format!("the stored filesystem is inconsistent: {e}"))?;
        // Whatever follows the last whole batch was never acknowledged.
        files[file].truncate(end)?;
        files[file].flush()?;
        let log = Log { active: file, generation, next_index, end, image_bytes: image_end };
        // SAFETY: `open` runs in the keeper.
        unsafe { LOG.with(|l| *l = Some(log)) };
        LOG_IS_MINE.with(|m| m.set(true));
        Ok(Some((fs, notice)))
    })
}

/// Writes the first image of a new site (or of one whose files held nothing).
fn save_first_image(fs: &FileSystem, log: &mut Option<Log>) -> Result<(), String> {
    with_files(|files| {
        let generation = 1;
        files[0].truncate(0)?;
        let saved = fs.save_image(&mut files[0], 0, generation).map_err(|e| save_error("saving the site", e))?;
        files[0].flush()?;
        fs.mark_saved(saved.covers);
        *log = Some(Log { active: 0, generation, next_index: 1, end: saved.end, image_bytes: saved.bytes });
        Ok(())
    })
}

/// Stores every change since the last batch (or compacts), then flushes.
fn save_now(fs: &FileSystem) -> Result<(), String> {
    let covers = fs.last_change();
    // SAFETY: only the keeper saves (`storage_step`, or `settle` in the
    // keeper itself).
    let result = unsafe { LOG.with(|log| save_into(fs, log)) };
    let mut error = lock(&SAVE_ERROR);
    if let Err(why) = &result {
        if error.as_ref() != Some(why) {
            web_sys::console::error_1(&format!("saving the site failed: {why}").into());
        }
        // Its waiters hear it now; the changes stay unsaved and the next
        // turn tries again.
        fs.mark_save_failed(covers);
    }
    *error = result.as_ref().err().cloned();
    result
}

/// Writes a whole image into the file the log is not in, which becomes the
/// log (its previous state stays in the other until the next compaction).
/// If that fails (it needs room for a whole image beside the log: a full
/// quota, say), empties that file again to give its room back, and does
/// not try again before the log has grown by `COMPACT_MIN_BYTES`.
fn compact_or_give_room_back(fs: &FileSystem, files: &mut [Handle], log: &Log) -> Result<Log, String> {
    let other = 1 - log.active;
    let compacted = (|| {
        files[other].truncate(0)?;
        let saved = fs.save_image(&mut files[other], 0, log.generation + 1).map_err(|e| save_error("compacting", e))?;
        files[other].flush()?;
        fs.mark_saved(saved.covers);
        Ok(Log { active: other, generation: log.generation + 1, next_index: 1, end: saved.end, image_bytes: saved.bytes })
    })();
    match &compacted {
        Ok(_) => {
            LOG_IS_MINE.with(|m| m.set(true));
            COMPACTION_FAILED_AT.with(|f| f.set(None));
        }
        Err(_) => {
            let _ = files[other].truncate(0);
            COMPACTION_FAILED_AT.with(|f| f.set(Some(log.end)));
        }
    }
    compacted
}

/// Appends the changes since the last save to the log as one batch.
fn append(fs: &FileSystem, file: &mut Handle, log: &mut Log) -> Result<(), String> {
    let saved = match fs.save_changes(file, log.end, log.generation, log.next_index) {
        Ok(saved) => saved,
        Err(e) => {
            let why = save_error("saving", e);
            // Cut off the half-written batch: it would only read as damage
            // when the site is next opened, and it takes quota.
            let _ = file.truncate(log.end).and_then(|()| file.flush());
            return Err(why);
        }
    };
    crate::fault::helper_fault_point(crate::fault::HelperFault::StorageMidBatch);
    if saved.bytes > 0 {
        file.flush()?;
        log.end = saved.end;
        log.next_index += 1;
    }
    fs.mark_saved(saved.covers);
    Ok(())
}

fn save_into(fs: &FileSystem, guard: &mut Option<Log>) -> Result<(), String> {
    let Some(mut log) = *guard else {
        // A new site: its first save is its image.
        let result = save_first_image(fs, guard);
        LOG_IS_MINE.with(|m| m.set(result.is_ok()));
        return result;
    };
    // A keeper that took over from a dead one writes a whole image first:
    // the dead one may have left a batch or an image half-written after
    // what `LOG` records, and its unrecorded changes are still unsaved.
    let took_over = !LOG_IS_MINE.with(|m| m.get());
    let grown = log.end > COMPACT_MIN_BYTES && log.end > COMPACT_FACTOR * log.image_bytes;
    let retry_compaction = COMPACTION_FAILED_AT.with(|f| f.get().is_none_or(|at| log.end >= at + COMPACT_MIN_BYTES));
    let result = with_files(|files| {
        let compaction_due = took_over || (grown && retry_compaction);
        if compaction_due {
            match compact_or_give_room_back(fs, files, &log) {
                Ok(compacted) => {
                    log = compacted;
                    return Ok(());
                }
                // Nothing to append to that this keeper can trust.
                Err(why) if took_over => return Err(why),
                Err(_) => {}
            }
        }
        match append(fs, &mut files[log.active], &mut log) {
            // The log may hold much that is gone (files deleted to make
            // room): an image of what is there now may fit where the
            // batch did not.
            Err(why) if grown && !compaction_due => {
                log = compact_or_give_room_back(fs, files, &log).map_err(|_| why)?;
                Ok(())
            }
            appended => appended,
        }
    });
    *guard = Some(log);
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
    let failing = lock(&SAVE_ERROR).is_some();
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
pub fn settle(reply: Vec<u8>) -> Result<Vec<u8>, JsValue> {
    let fs = crate::fs()?;
    let Some(change) = fs.unsaved_change() else { return Ok(reply) };
    let outcome = if keeps_storage() {
        save_now(fs)
    } else {
        fs.wait_saved(change, SAVE_TIMEOUT).map_err(|e| match (e, lock(&SAVE_ERROR).clone()) {
            (shared_fs::Errno::EIO, Some(why)) => why,
            _ => format!("storage did not confirm within {} s", SAVE_TIMEOUT.as_secs()),
        })
    };
    let Err(why) = outcome else { return Ok(reply) };
    let message = format!("The request ran, but its changes could not be saved: {why}");
    let failed = match protocol::decode::<protocol::JobResult>(&reply) {
        Ok(protocol::JobResult::Http(_)) => protocol::JobResult::Http(protocol::HttpResponse {
            status: 500,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: message.into_bytes(),
        }),
        _ => protocol::JobResult::Failed { message, errno: None },
    };
    Ok(protocol::encode(&failed))
}

//! The saved site's log: two files, the active one an image followed by
//! change batches. When the batches outgrow the image, a whole image is
//! written into the other file, which becomes the log; the previous state
//! stays in the first until the next compaction, so a damaged newest image
//! still leaves one whole state to open.
//!
//! The keeper (whoever holds the files) calls `LogWriter::save`; these are
//! its rules, kept here so they are tested natively with files that fail
//! or are cut short (`tests.rs`).

use super::{Sink, Source, StoredFile};
use crate::errno::Errno;
use crate::fs::FileSystem;
use crate::types::Config;

/// One of the log's files, as the keeper holds it.
pub trait LogFile: Sink + Source {
    fn flush(&mut self) -> Result<(), String>;
    fn truncate(&mut self, len: u64) -> Result<(), String>;
    /// Why the last write was refused, in the storage's words (a full
    /// quota, say), taken once: a batch's error is only `EIO`.
    fn take_refusal(&mut self) -> Option<String> {
        None
    }
}

/// Where the log stands. The keeper keeps it where a replacement keeper
/// finds it (it is written whole once a save is done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Log {
    /// Which of the two files is the log.
    pub active: usize,
    pub generation: u64,
    pub next_index: u32,
    /// Where the next batch goes.
    pub end: u64,
    pub image_bytes: u64,
}

/// Opens the newest whole state in `files` (see `FileSystem::open_saved`),
/// checks it, and cuts off what follows its last whole batch (never
/// acknowledged). `Ok(None)`: nothing is stored (a new site).
pub fn open_log(
    config: Config,
    files: &mut [&mut dyn LogFile; 2],
    names: [&str; 2],
) -> Result<Option<(FileSystem, Log, Option<String>)>, String> {
    let opened = {
        let [a, b] = files;
        let mut stored = [
            StoredFile { name: names[0], source: &mut **a as &mut dyn Source },
            StoredFile { name: names[1], source: &mut **b as &mut dyn Source },
        ];
        FileSystem::open_saved(config, &mut stored)?
    };
    let Some(opened) = opened else { return Ok(None) };
    opened.fs.check().map_err(|e| format!("the stored filesystem is inconsistent: {e}"))?;
    files[opened.file].truncate(opened.end)?;
    files[opened.file].flush()?;
    let log = Log { active: opened.file, generation: opened.generation, next_index: opened.next_index, end: opened.end, image_bytes: opened.image_end };
    Ok(Some((opened.fs, log, opened.notice)))
}

/// The keeper's own rules and memory. A new keeper (`LogWriter::new`)
/// trusts the log's files only once it opened them or wrote a whole image:
/// a keeper that died may have left a batch or an image half-written after
/// what `Log` records.
#[derive(Debug)]
pub struct LogWriter {
    /// Compact when the batches outgrow the image by this factor...
    pub compact_factor: u64,
    /// ...and the log is at least this long; a compaction that failed is
    /// tried again only once the log grew by this much.
    pub compact_min_bytes: u64,
    /// Called once a batch is written and before it is flushed: the
    /// test-only fault injection dies here (a keeper killed mid-save).
    pub after_batch: fn(),
    compaction_failed_at: Option<u64>,
    mine: bool,
}

impl Default for LogWriter {
    fn default() -> Self {
        LogWriter { compact_factor: 2, compact_min_bytes: 8 << 20, after_batch: || {}, compaction_failed_at: None, mine: false }
    }
}

impl LogWriter {
    /// A keeper that opened the files itself (`open_log`).
    pub fn opened(mut self) -> Self {
        self.mine = true;
        self
    }

    /// Stores every change since the last save (or the first image, or a
    /// compaction), flushes, and marks what it stored saved. On failure the
    /// changes stay unsaved for the next save, and `log` still describes
    /// whole files.
    pub fn save(&mut self, fs: &FileSystem, files: &mut [&mut dyn LogFile; 2], log: &mut Option<Log>) -> Result<(), String> {
        let Some(mut current) = *log else {
            // A new site: its first save is its image.
            let first = Self::write_image(fs, &mut *files[0], 1, "saving the site").map(|(end, image_bytes)| Log { active: 0, generation: 1, next_index: 1, end, image_bytes });
            self.mine = first.is_ok();
            *log = first.as_ref().ok().copied();
            return first.map(|_| ());
        };
        let took_over = !self.mine;
        let grown = current.end > self.compact_min_bytes && current.end > self.compact_factor * current.image_bytes;
        let retry_compaction = self.compaction_failed_at.is_none_or(|at| current.end >= at + self.compact_min_bytes);
        let compaction_due = took_over || (grown && retry_compaction);
        let result = (|| {
            if compaction_due {
                match self.compact(fs, files, &current) {
                    Ok(compacted) => {
                        current = compacted;
                        return Ok(());
                    }
                    // Nothing to append to that this keeper can trust.
                    Err(why) if took_over => return Err(why),
                    Err(_) => {}
                }
            }
            match self.append(fs, &mut *files[current.active], &mut current) {
                // The log may hold much that is gone (files deleted to make
                // room): an image of what is there now may fit where the
                // batch did not.
                Err(why) if grown && !compaction_due => {
                    current = self.compact(fs, files, &current).map_err(|_| why)?;
                    Ok(())
                }
                appended => appended,
            }
        })();
        *log = Some(current);
        result
    }

    /// An image of the whole filesystem as batch 0 of `generation`, at the
    /// start of `file`: (where it ends, its size).
    fn write_image(fs: &FileSystem, file: &mut dyn LogFile, generation: u64, context: &str) -> Result<(u64, u64), String> {
        file.truncate(0)?;
        let saved = fs.save_image(file, 0, generation).map_err(|e| refused(file, context, e))?;
        file.flush()?;
        fs.mark_saved(saved.covers);
        Ok((saved.end, saved.bytes))
    }

    /// Writes a whole image into the file the log is not in, which becomes
    /// the log. If that fails (it needs room for a whole image beside the
    /// log: a full quota, say), empties that file again to give its room
    /// back.
    fn compact(&mut self, fs: &FileSystem, files: &mut [&mut dyn LogFile; 2], log: &Log) -> Result<Log, String> {
        let other = 1 - log.active;
        let generation = log.generation + 1;
        match Self::write_image(fs, &mut *files[other], generation, "compacting") {
            Ok((end, image_bytes)) => {
                self.mine = true;
                self.compaction_failed_at = None;
                Ok(Log { active: other, generation, next_index: 1, end, image_bytes })
            }
            Err(why) => {
                let _ = files[other].truncate(0);
                self.compaction_failed_at = Some(log.end);
                Err(why)
            }
        }
    }

    /// Appends the changes since the last save to the log as one batch.
    fn append(&self, fs: &FileSystem, file: &mut dyn LogFile, log: &mut Log) -> Result<(), String> {
        let saved = match fs.save_changes(file, log.end, log.generation, log.next_index) {
            Ok(saved) => saved,
            Err(e) => {
                let why = refused(file, "saving", e);
                // Cut off the half-written batch: it would only read as
                // damage when the site is next opened, and it takes room.
                let _ = file.truncate(log.end).and_then(|()| file.flush());
                return Err(why);
            }
        };
        (self.after_batch)();
        if saved.bytes > 0 {
            file.flush()?;
            log.end = saved.end;
            log.next_index += 1;
        }
        fs.mark_saved(saved.covers);
        Ok(())
    }
}

/// `context` and the storage's reason for refusing a write, or the errno.
fn refused(file: &mut dyn LogFile, context: &str, errno: Errno) -> String {
    match file.take_refusal() {
        Some(reason) => format!("{context}: {reason}"),
        None => format!("{context}: {}", errno.name()),
    }
}

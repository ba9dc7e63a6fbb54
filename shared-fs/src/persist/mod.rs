//! Saving the filesystem to storage and opening it again.
//!
//! The shared filesystem stays the working copy; storage holds a file of
//! batches (`format`): an image of every inode, then batches of the inodes
//! changed since. Three rules make a stored state always one the
//! filesystem really had:
//!
//! * **A consistent cut.** Every mutating operation runs under the `gate`
//!   (shared); a save takes it exclusively while it reads what changed, so
//!   a batch holds no operation half-done. Operations already keep every
//!   structure valid between their own steps, so the cut is exactly the
//!   state at one instant, which SQLite's journal treats like a power loss.
//! * **Marks before changes.** An operation marks the inodes it will touch
//!   (under the gate, before changing them), so a batch cut after it holds
//!   them.
//! * **Whole batches or nothing.** Each batch carries its payload's CRC in
//!   a header written after the payload; opening replays batches until the
//!   first one that is not whole and says so (`Opened::notice`).
//! * **Cuts are replayed.** A batch holds only the blocks written since the
//!   last save, so a file truncated down and extended again (by truncate or
//!   by a write past its end) would show the older batches' bytes where it
//!   reads zeros. Each truncate marks the size it cuts to, and a batch cuts
//!   the file to the smallest of them before the file's records.
//!
//! Durability is per change: each change gets a sequence number; a save
//! covers every change before its cut; `wait_saved` blocks a worker until
//! its own last change is covered and the sink was flushed.

pub(crate) mod format;
mod log;
mod restore;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::inode::{Body, Inode};
use crate::space::BLOCK_SIZE;
use crate::sync::{Condvar, Mutex, RwLock, RwLockReadGuard};
use crate::types::Ino;
use format::{Header, StoredBody, StoredInode, HEADER_LEN, KIND_CHANGES, KIND_IMAGE};

pub use format::crc32;
pub use log::{open_log, Log, LogFile, LogWriter};
pub use restore::{Opened, StoredFile};

/// Where batches are written: a file with positioned writes.
pub trait Sink {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> core::result::Result<(), String>;
}

/// Where batches are read from.
pub trait Source {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset` (short only at the end of the file).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> core::result::Result<usize, String>;
}

impl Sink for Vec<u8> {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> core::result::Result<(), String> {
        let end = offset as usize + bytes.len();
        if self.len() < end {
            self.resize(end, 0);
        }
        self[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> core::result::Result<usize, String> {
        let start = (offset as usize).min(<[u8]>::len(self));
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// What one save wrote.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    /// Where the batch ends in the sink (the next one starts there).
    pub end: u64,
    /// Bytes written, header included.
    pub bytes: u64,
    /// Every change numbered up to this is in the batch; pass it to
    /// `mark_saved` once the sink is flushed.
    pub covers: u64,
}

/// What changed in one inode since the last save.
#[derive(Default)]
struct Change {
    /// Blocks written (their index); the inode record is always written.
    blocks: BTreeSet<u64>,
    /// The smallest size a truncate cut the file to since the last save.
    cut: Option<u64>,
}

/// Payload bytes buffered before a sink write.
const CHUNK: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct Tracker {
    /// Off until the first image is saved: a site that is never saved
    /// tracks nothing.
    enabled: AtomicBool,
    /// Shared by mutating operations, exclusive for a save's cut.
    gate: RwLock<()>,
    changed: Mutex<BTreeMap<Ino, Change>>,
    /// Number of the last change marked.
    last_change: AtomicU64,
    /// Every change numbered up to this is stored and flushed.
    saved: AtomicU64,
    /// Highest change number a worker waits for.
    wanted: AtomicU64,
    /// The last save that failed covered the changes up to this: their
    /// waiters are answered at once (`wait_saved`) instead of waiting out
    /// their timeout for a save that keeps failing.
    failed: AtomicU64,
    /// Why the last save failed, until one succeeds: waiters answer with it.
    /// A shared-fs lock, so a saver that dies holding it does not keep it.
    failure: Mutex<Option<String>>,
    wake: Mutex<()>,
    /// Wakes the saver (a change is wanted) and the waiters (saved moved,
    /// or a save failed).
    wake_cv: Condvar,
}

thread_local! {
    /// Number of this thread's (worker's) last change.
    static MY_LAST_CHANGE: Cell<u64> = const { Cell::new(0) };
}

/// Held by a mutating operation for its duration.
pub(crate) struct Entered<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

impl FileSystem {
    /// Called first by every mutating operation (never nested): a save's
    /// cut waits for it to finish.
    pub(crate) fn persist_enter(&self) -> Entered<'_> {
        Entered(self.tracker.gate.read())
    }

    /// Marks `ino` changed (its metadata; also `blocks`, a range of block
    /// indexes written). Called under the gate, before the change.
    pub(crate) fn mark(&self, ino: Ino, blocks: Option<(u64, u64)>) {
        self.note_change(ino, |change| {
            if let Some((first, last)) = blocks {
                change.blocks.extend(first..=last);
            }
        });
    }

    /// Marks file `ino` about to be truncated to `size` (smaller than it
    /// is). Called under the gate and the inode's lock, before the change:
    /// a worker that dies half-way leaves a truncate the repair finishes
    /// to this same size.
    pub(crate) fn mark_cut(&self, ino: Ino, size: u64) {
        self.note_change(ino, |change| change.cut = Some(change.cut.map_or(size, |cut| cut.min(size))));
    }

    fn note_change(&self, ino: Ino, f: impl FnOnce(&mut Change)) {
        let t = &self.tracker;
        if !t.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut changed = t.changed.lock();
        f(changed.entry(ino).or_default());
        let n = t.last_change.fetch_add(1, Ordering::AcqRel) + 1;
        MY_LAST_CHANGE.with(|c| c.set(n));
    }

    /// Starts tracking changes before the first image is saved (a new site
    /// being installed): a worker's change then waits for that image.
    pub fn track_changes(&self) {
        self.tracker.enabled.store(true, Ordering::Release);
    }

    /// Writes an image of every linked inode at `at` in `sink` and starts
    /// tracking changes from it. The image is batch 0 of `generation`.
    pub fn save_image(&self, sink: &mut dyn Sink, at: u64, generation: u64) -> Result<Saved> {
        let t = &self.tracker;
        let _cut = t.gate.write();
        t.enabled.store(true, Ordering::Release);
        let changed = core::mem::take(&mut *t.changed.lock());
        let covers = t.last_change.load(Ordering::Acquire);
        let mut inodes = self.table.snapshot();
        inodes.sort_by_key(|i| i.ino);
        let mut batch = BatchWriter::new(sink, at);
        let written = inodes.iter().try_for_each(|inode| self.store_inode(&mut batch, inode, None));
        let finished = written.and_then(|()| batch.finish(KIND_IMAGE, generation, 0));
        self.keep_unless_stored(changed, finished).map(|(end, bytes)| Saved { end, bytes, covers })
    }

    /// A save that failed (the storage is full, say) stored nothing its
    /// caller may count on: the changes it took go back, so the next save
    /// stores them, and `saved` does not move past them. Called under the
    /// gate, so nothing was marked meanwhile.
    fn keep_unless_stored<T>(&self, taken: BTreeMap<Ino, Change>, outcome: Result<T>) -> Result<T> {
        if outcome.is_err() {
            let mut changed = self.tracker.changed.lock();
            for (ino, change) in taken {
                let kept = changed.entry(ino).or_default();
                kept.blocks.extend(change.blocks);
                kept.cut = match (kept.cut, change.cut) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        outcome
    }

    /// Writes the inodes changed since the last save as batch `index` of
    /// `generation` at `at`. If nothing changed, writes nothing
    /// (`bytes == 0`): every change it `covers` is in earlier batches.
    pub fn save_changes(&self, sink: &mut dyn Sink, at: u64, generation: u64, index: u32) -> Result<Saved> {
        let t = &self.tracker;
        let _cut = t.gate.write();
        let changed = core::mem::take(&mut *t.changed.lock());
        let covers = t.last_change.load(Ordering::Acquire);
        if changed.is_empty() {
            return Ok(Saved { end: at, bytes: 0, covers });
        }
        let mut batch = BatchWriter::new(sink, at);
        let written = changed.iter().try_for_each(|(ino, change)| match self.inode(*ino) {
            Ok(inode) => self.store_inode(&mut batch, &inode, Some(change)),
            Err(_) => batch.gone(*ino),
        });
        let finished = written.and_then(|()| batch.finish(KIND_CHANGES, generation, index));
        self.keep_unless_stored(changed, finished).map(|(end, bytes)| Saved { end, bytes, covers })
    }

    /// One inode's record and its data (`change`: what changed since the
    /// last save; `None`: everything, for an image).
    fn store_inode(&self, batch: &mut BatchWriter<'_>, inode: &Inode, change: Option<&Change>) -> Result<()> {
        let st = inode.state.read();
        if st.dead || st.nlink == 0 {
            // Unlinked (maybe still open): not part of the tree.
            return batch.gone(inode.ino);
        }
        let body = match &st.body {
            Body::File(f) => StoredBody::File { size: f.size },
            Body::Dir(d) => StoredBody::Dir { entries: d.after(0).map(|(name, e)| (name.into(), e.ino)).collect() },
            Body::Symlink(target) => StoredBody::Symlink(target.clone()),
            Body::Special(rdev) => StoredBody::Special(*rdev),
        };
        if let (Body::File(file), Some(cut)) = (&st.body, change.and_then(|c| c.cut)) {
            // The file was smaller since the last save than it is now: what
            // the earlier batches hold past that size is stale (blocks the
            // truncate dropped, a cut block's zeroed tail), and this batch
            // holds only the blocks written since. Replay cuts the file to
            // it first, so those bytes read as zeros unless written again.
            if cut < file.size {
                batch.cut(inode.ino, cut)?;
            }
        }
        let attr = inode.attr(&st);
        let record = StoredInode { ino: inode.ino, mode: st.mode, uid: st.uid, gid: st.gid, atime: attr.atime, mtime: st.mtime, ctime: st.ctime, body };
        batch.inode(&record)?;
        if let Body::File(file) = &st.body {
            // Holes need no record: they read as zeros after a replay too.
            // A block's record holds its bytes up to EOF, zeros past its
            // fragment included, as when every block was whole.
            let mut store_block = |index: u64| match file.block_bytes(index) {
                Some((bytes, zeros)) => batch.data(inode.ino, index * BLOCK_SIZE as u64, bytes, zeros),
                None => Ok(()),
            };
            match change {
                Some(c) => c.blocks.iter().try_for_each(|&i| store_block(i))?,
                None => file.block_indexes().try_for_each(store_block)?,
            }
        }
        Ok(())
    }

    /// The saver could not store the changes up to `covers` (the save
    /// returned an error or a flush failed), for the reason `why`: their
    /// waiters give up at once with `EIO` (`save_failure` says why). The
    /// changes stay unsaved, so a later save may still store them.
    pub fn mark_save_failed(&self, covers: u64, why: &str) {
        let t = &self.tracker;
        *t.failure.lock() = Some(why.to_string());
        t.failed.fetch_max(covers, Ordering::AcqRel);
        let _g = t.wake.lock();
        t.wake_cv.notify_all();
    }

    /// Why the last save failed, if no save succeeded since.
    pub fn save_failure(&self) -> Option<String> {
        self.tracker.failure.lock().clone()
    }

    /// The number of the last change made so far: what a save starting now
    /// would cover.
    pub fn last_change(&self) -> u64 {
        self.tracker.last_change.load(Ordering::Acquire)
    }

    /// Every change numbered up to `covers` is durable (the sink holding
    /// it was flushed). Wakes workers waiting for it.
    pub fn mark_saved(&self, covers: u64) {
        let t = &self.tracker;
        *t.failure.lock() = None;
        t.saved.fetch_max(covers, Ordering::AcqRel);
        let _g = t.wake.lock();
        t.wake_cv.notify_all();
    }

    /// This worker's last change, if it is not yet durable (and saving is on).
    pub fn unsaved_change(&self) -> Option<u64> {
        let t = &self.tracker;
        let mine = MY_LAST_CHANGE.with(|c| c.get());
        (t.enabled.load(Ordering::Acquire) && mine > t.saved.load(Ordering::Acquire)).then_some(mine)
    }

    /// Asks the saver for change `n` and blocks until it is durable, or
    /// `EIO` once a save that covered it failed (`mark_save_failed`), or
    /// `ETIMEDOUT` after `timeout` (the saver is gone or stuck).
    pub fn wait_saved(&self, n: u64, timeout: Duration) -> Result<()> {
        let t = &self.tracker;
        t.wanted.fetch_max(n, Ordering::AcqRel);
        let step = Duration::from_millis(5);
        let mut waited = Duration::ZERO;
        let mut g = t.wake.lock();
        t.wake_cv.notify_all();
        while t.saved.load(Ordering::Acquire) < n {
            if t.failed.load(Ordering::Acquire) >= n {
                return Err(Errno::EIO);
            }
            if waited >= timeout {
                return Err(Errno::ETIMEDOUT);
            }
            // Bounded sleeps: no clock on wasm32-unknown-unknown.
            g = t.wake_cv.wait(g, Some(step));
            waited += step;
        }
        Ok(())
    }

    /// The saver's wait: true as soon as a worker wants a change saved that
    /// is not yet (and no failed save answered), false after `timeout`.
    pub fn wait_save_wanted(&self, timeout: Duration) -> bool {
        let t = &self.tracker;
        // A want a failed save already answered is not pending: the saver
        // would only fail again at once.
        let answered = || t.saved.load(Ordering::Acquire).max(t.failed.load(Ordering::Acquire));
        let pending = || t.wanted.load(Ordering::Acquire) > answered();
        let g = t.wake.lock();
        if pending() {
            return true;
        }
        drop(t.wake_cv.wait(g, Some(timeout)));
        pending()
    }

    /// Whether changes were made since the last save (saving is on).
    pub fn has_unsaved_changes(&self) -> bool {
        let t = &self.tracker;
        t.enabled.load(Ordering::Acquire) && t.last_change.load(Ordering::Acquire) > t.saved.load(Ordering::Acquire)
    }
}

/// Streams one batch: the payload in chunks after room for the header,
/// then the header with the payload's length and CRC.
struct BatchWriter<'a> {
    sink: &'a mut dyn Sink,
    start: u64,
    written: u64,
    crc: u32,
    buf: Vec<u8>,
}

impl<'a> BatchWriter<'a> {
    fn new(sink: &'a mut dyn Sink, start: u64) -> BatchWriter<'a> {
        BatchWriter { sink, start, written: 0, crc: 0, buf: Vec::with_capacity(CHUNK + BLOCK_SIZE + 64) }
    }

    fn inode(&mut self, r: &StoredInode) -> Result<()> {
        format::encode_inode(&mut self.buf, r);
        self.spill()
    }

    /// A data record: `bytes` then `zeros` zero bytes.
    fn data(&mut self, ino: Ino, offset: u64, bytes: &[u8], zeros: usize) -> Result<()> {
        format::encode_data_header(&mut self.buf, ino, offset, (bytes.len() + zeros) as u32);
        self.buf.extend_from_slice(bytes);
        self.buf.resize(self.buf.len() + zeros, 0);
        self.spill()
    }

    fn gone(&mut self, ino: Ino) -> Result<()> {
        format::encode_gone(&mut self.buf, ino);
        self.spill()
    }

    fn cut(&mut self, ino: Ino, size: u64) -> Result<()> {
        format::encode_cut(&mut self.buf, ino, size);
        self.spill()
    }

    fn spill(&mut self) -> Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crc = format::crc32(self.crc, &self.buf);
        let at = self.start + HEADER_LEN as u64 + self.written;
        self.sink.write_at(at, &self.buf).map_err(|_| Errno::EIO)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self, kind: u8, generation: u64, index: u32) -> Result<(u64, u64)> {
        self.flush_buf()?;
        let payload_len = u32::try_from(self.written).map_err(|_| Errno::EFBIG)?;
        let header = Header { kind, generation, index, payload_len, payload_crc: self.crc };
        self.sink.write_at(self.start, &header.encode()).map_err(|_| Errno::EIO)?;
        let bytes = HEADER_LEN as u64 + self.written;
        Ok((self.start + bytes, bytes))
    }
}

#[cfg(test)]
mod tests;

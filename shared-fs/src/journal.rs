//! What a worker was doing, so that its death in the middle of an operation
//! is harmless.
//!
//! Every mutating operation (create/mkdir/symlink, write, truncate,
//! unlink/rmdir, rename) is a fixed list of steps (`Op::steps`), taken with
//! all its inode locks held. After locking, the operation records a
//! `Journal` in its owner's record (only when the thread has an owner) and
//! bumps `Journal::step` after each step. If the owner dies between two
//! steps, `release_all(owner)` takes over the dead owner's inode write
//! locks (so nobody sees the half-done state), and
//!
//! * completes the operation from the next step (create, truncate, unlink,
//!   rename: every argument it needs is in the journal), or
//! * for write, gives back the fragments it reserved but had not yet
//!   linked into the file (the data to copy lived in the dead worker's
//!   memory). The steps of write are ordered so that every prefix is a
//!   valid file: the size grows first (the new range reads as zeros), then
//!   data is copied, then fresh fragments are linked; a block moved into a
//!   larger fragment keeps its old one until the new one is linked (the
//!   old one is freed in the linking step, so it is never in the journal).
//!
//! Kill points (`kill_points` module, tests and feature `kill-points`) sit
//! between every two steps: a thread armed for (op, step) parks forever
//! there, as a worker terminated at that instant would.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::dir::Entry;
use crate::fs::{FileSystem, Locked};
use crate::inode::{Body, Inode};
use crate::space::BlockPtr;
use crate::sync;
use crate::types::{Ino, Owner};
use std::cell::Cell;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Write,
    Truncate,
    Unlink,
    Rename,
}

#[cfg_attr(not(any(test, feature = "kill-points")), allow(dead_code))]
impl Op {
    pub(crate) const ALL: [Op; 5] = [Op::Create, Op::Write, Op::Truncate, Op::Unlink, Op::Rename];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Write => "write",
            Op::Truncate => "truncate",
            Op::Unlink => "unlink",
            Op::Rename => "rename",
        }
    }

    /// Step `i` is "done" when `FileSystem::step(op, i)` runs.
    pub(crate) fn steps(self) -> &'static [&'static str] {
        match self {
            Op::Create => &["locked", "allocated", "in-table", "linked", "parent-updated"],
            Op::Write => &["locked", "reserved", "size", "copied", "filled", "linked", "times"],
            Op::Truncate => &["locked", "detached", "tail-zeroed", "size", "freed", "times"],
            Op::Unlink => &["locked", "unnamed", "nlink", "destroyed", "parent-updated"],
            Op::Rename => &["locked", "src-removed", "dst-removed", "dst-destroyed", "inserted", "parents", "times"],
        }
    }
}

#[derive(Clone)]
pub(crate) struct RenamePlan {
    pub parent: Ino,
    pub name: Box<[u8]>,
    pub new_parent: Ino,
    pub new_name: Box<[u8]>,
    pub src: Entry,
    pub dst: Option<Entry>,
    pub moves_dir: bool,
    pub src_inode: Arc<Inode>,
}

pub(crate) enum Plan {
    Create { name: Box<[u8]>, inode: Arc<Inode> },
    /// Fragments reserved for the write and not yet owned by the file.
    Write { reserved: Vec<BlockPtr> },
    /// Blocks cut off the file and not yet given back.
    Truncate { size: u64, detached: Vec<BlockPtr> },
    Unlink { parent: Ino, name: Box<[u8]>, child: Ino, want_dir: bool },
    Rename(RenamePlan),
}

pub(crate) struct Journal {
    /// Address of the filesystem it belongs to.
    fs: usize,
    pub op: Op,
    /// Inodes the operation holds write-locked, ascending.
    locked: Vec<Arc<Inode>>,
    pub plan: Plan,
}

/// One owner's journal: the operation in flight and its last step done.
/// Lives beside the lock layer (`sync`), not inside it, so that layer knows
/// nothing of operations.
pub(crate) struct JournalSlot {
    journal: Mutex<Option<Journal>>,
    /// A plain store per step, no mutex.
    step: AtomicUsize,
}

impl JournalSlot {
    fn journal(&self) -> MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every owner's slot, created on first use and never freed (as many as
/// owner ids ever used).
static SLOTS: Mutex<Vec<(Owner, &'static JournalSlot)>> = Mutex::new(Vec::new());

thread_local! {
    /// This thread's owner and its slot, looked up once per owner change.
    static CURRENT: Cell<Option<(Owner, &'static JournalSlot)>> = const { Cell::new(None) };
}

fn slot(owner: Owner) -> &'static JournalSlot {
    let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, s)) = slots.iter().find(|(o, _)| *o == owner) {
        return s;
    }
    let s: &'static JournalSlot =
        Box::leak(Box::new(JournalSlot { journal: Mutex::new(None), step: AtomicUsize::new(0) }));
    slots.push((owner, s));
    s
}

/// The current thread's owner (`set_current_owner`) and its slot, if any.
fn current() -> Option<(Owner, &'static JournalSlot)> {
    let owner = sync::current_owner()?;
    CURRENT.with(|c| match c.get() {
        Some((o, s)) if o == owner => Some((o, s)),
        _ => {
            let found = (owner, slot(owner));
            c.set(Some(found));
            Some(found)
        }
    })
}

/// Clears the journal when the operation returns (normally or by error).
pub(crate) struct Scope(Option<&'static JournalSlot>);

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            *s.journal() = None;
        }
    }
}

impl FileSystem {
    /// Records that `op` has done `step` holding write locks on `locked`.
    pub(crate) fn journal_begin(&self, op: Op, step: usize, locked: &[Arc<Inode>], plan: impl FnOnce() -> Plan) -> Scope {
        let slot = current().map(|(_, s)| s);
        if let Some(s) = slot {
            *s.journal() = Some(Journal { fs: self as *const _ as usize, op, locked: locked.to_vec(), plan: plan() });
            s.step.store(step, Ordering::Release);
        }
        Scope(slot)
    }

    /// Changes the journaled plan (e.g. the blocks now reserved).
    pub(crate) fn journal_update(&self, f: impl FnOnce(&mut Plan)) {
        if let Some((_, s)) = current() {
            if let Some(j) = s.journal().as_mut() {
                f(&mut j.plan);
            }
        }
    }

    /// Marks `step` of `op` done; a kill point.
    pub(crate) fn step(&self, op: Op, step: usize) {
        if let Some((owner, s)) = current() {
            // Meaningful only while a journal is open; harmless otherwise.
            s.step.store(step, Ordering::Release);
            #[cfg(any(test, feature = "kill-points"))]
            crate::kill_points::hit(owner, op, step);
            let _ = owner;
        }
        let _ = op;
    }

    /// Finishes or undoes the operation `dead` was in. Returns its name and step.
    ///
    /// # Safety
    /// `dead` never runs again.
    pub(crate) unsafe fn repair(&self, dead: Owner) -> Option<(&'static str, usize)> {
        let rec = slot(dead);
        let journal = rec.journal().take()?;
        if journal.fs != self as *const _ as usize {
            *rec.journal() = Some(journal); // another filesystem's business
            return None;
        }
        let mut guards = Vec::new();
        for inode in &journal.locked {
            // Ascending, like every operation; these are locks nobody else
            // can hold, so taking them over never waits.
            match inode.state.steal_write(dead) {
                Some(g) => guards.push((inode.ino, g)),
                None => return None, // not ours: the journal predates locking (cannot happen)
            }
        }
        let mut locked = Locked::from_guards(guards);
        let last = rec.step.load(Ordering::Acquire);
        let from = last + 1;
        let ino = journal.locked.first().map(|i| i.ino).unwrap_or(0);
        match journal.plan {
            Plan::Create { name, inode } => {
                if let Ok(st) = locked.get(ino) {
                    self.create_commit(st, &name, &inode, from, self.now());
                }
            }
            Plan::Write { reserved } => self.space.free(reserved),
            Plan::Truncate { size, mut detached } => {
                if let Ok(st) = locked.get(ino) {
                    self.truncate_commit(st, size, &mut detached, from, self.now());
                }
            }
            Plan::Unlink { parent, name, child, want_dir } => {
                let _ = self.unlink_commit(&mut locked, parent, &name, child, want_dir, from, self.now());
            }
            Plan::Rename(plan) => {
                let _ = self.rename_commit(&mut locked, &plan, from, self.now());
            }
        }
        Some((journal.op.name(), last))
    }

    /// The truncate steps from `from` on (1..=5 of `Op::Truncate`).
    pub(crate) fn truncate_commit(&self, st: &mut crate::inode::State, size: u64, detached: &mut Vec<BlockPtr>, from: usize, now: crate::types::Timespec) {
        if let Body::File(file) = &mut st.body {
            file.set_size_steps(&self.space, size, detached, from, &mut |step, blocks| {
                self.journal_update(|p| {
                    if let Plan::Truncate { detached, .. } = p {
                        detached.clear();
                        detached.extend_from_slice(blocks);
                    }
                });
                self.step(Op::Truncate, step);
            });
        }
        if from <= 5 {
            st.touch_modified(now);
            self.step(Op::Truncate, 5);
        }
    }
}

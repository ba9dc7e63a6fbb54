//! Test hook (tests and feature `kill-points`): make a thread "die" at a
//! named step of an operation by parking it there forever, holding whatever
//! it holds, as a worker terminated at that instant would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::journal::Op;
use crate::types::Owner;

static ANY_ARMED: AtomicBool = AtomicBool::new(false);
/// (owner, op, step, reached)
static ARMED: Mutex<Vec<(Owner, Op, usize, bool)>> = Mutex::new(Vec::new());

fn op_by_name(op: &str) -> Option<Op> {
    Op::ALL.into_iter().find(|o| o.name() == op)
}

/// Operation names with kill points: create (also mkdir, symlink), write,
/// truncate, unlink (also rmdir), rename.
pub fn ops() -> Vec<&'static str> {
    Op::ALL.iter().map(|o| o.name()).collect()
}

/// The named steps of `op`; a kill point follows each.
pub fn steps(op: &str) -> &'static [&'static str] {
    op_by_name(op).map_or(&[], |o| o.steps())
}

/// The next time a thread whose current owner is `owner` finishes step
/// `step` of `op`, it parks forever.
pub fn arm(owner: Owner, op: &str, step: usize) {
    let op = op_by_name(op).expect("unknown op");
    let mut a = ARMED.lock().unwrap();
    a.retain(|e| e.0 != owner);
    a.push((owner, op, step, false));
    ANY_ARMED.store(true, Ordering::SeqCst);
}

/// Whether `owner` has parked at its kill point.
pub fn reached(owner: Owner) -> bool {
    ARMED.lock().unwrap().iter().any(|e| e.0 == owner && e.3)
}

pub(crate) fn hit(owner: Owner, op: Op, step: usize) {
    if !ANY_ARMED.load(Ordering::Relaxed) {
        return;
    }
    {
        let mut a = ARMED.lock().unwrap();
        match a.iter_mut().find(|e| e.0 == owner && e.1 == op && e.2 == step && !e.3) {
            Some(e) => e.3 = true,
            None => return,
        }
    }
    loop {
        std::thread::park();
    }
}

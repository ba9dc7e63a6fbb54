//! Test hook (tests and feature `kill-points`): make a thread "die" at a
//! named step of an operation, holding whatever it holds, as a worker
//! terminated (or trapped) at that instant would. The thread either parks
//! there forever (`Action::Park`, the native kill tests) or panics
//! (`Action::Panic`: with `panic = "abort"` on wasm that is a trap, which is
//! how the worker's fault-injection build kills a real worker mid-operation).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::journal::Op;
use crate::types::Owner;

/// What an armed thread does when it reaches its kill point.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Park forever (a worker stopped there).
    Park,
    /// Panic (a trap under `panic = "abort"`).
    Panic,
}

static ANY_ARMED: AtomicBool = AtomicBool::new(false);
/// (owner, op, step, action, reached)
static ARMED: Mutex<Vec<(Owner, Op, usize, Action, bool)>> = Mutex::new(Vec::new());

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
    arm_with(owner, op, step, Action::Park);
}

/// Like `arm`, with what the thread does there. Panics if `op` is unknown.
pub fn arm_with(owner: Owner, op: &str, step: usize, action: Action) {
    let op = op_by_name(op).expect("unknown op");
    let mut a = ARMED.lock().unwrap();
    a.retain(|e| e.0 != owner);
    a.push((owner, op, step, action, false));
    ANY_ARMED.store(true, Ordering::SeqCst);
}

/// Whether `owner` is parked at its kill point.
pub fn reached(owner: Owner) -> bool {
    ARMED.lock().unwrap().iter().any(|e| e.0 == owner && e.4)
}

pub(crate) fn hit(owner: Owner, op: Op, step: usize) {
    if !ANY_ARMED.load(Ordering::Relaxed) {
        return;
    }
    let action = {
        let mut a = ARMED.lock().unwrap();
        let Some(i) = a.iter().position(|e| e.0 == owner && e.1 == op && e.2 == step && !e.4) else { return };
        a[i].4 = true;
        let action = a[i].3;
        if action == Action::Panic {
            // The owner dies here; whoever reuses its id starts unarmed.
            a.remove(i);
            ANY_ARMED.store(!a.is_empty(), Ordering::SeqCst);
        }
        action
        // `ARMED` is unlocked here, before the panic: a trap never unlocks
        // it, and every later kill point of every worker would wait on it.
    };
    match action {
        Action::Park => loop {
            std::thread::park();
        },
        Action::Panic => panic!("kill point: {} after step {step} ({})", op.name(), op.steps()[step]),
    }
}

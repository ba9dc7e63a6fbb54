//! Worker death at every step of create, write, truncate, unlink and rename:
//! the victim parks forever at the kill point (holding its locks), the
//! "host" calls `release_all`, other owners then work on the same files and
//! directories, and `check()` must be clean.

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use crate::kill_points;
use crate::*;

const ROOT: Ino = FileSystem::ROOT;
static NEXT_OWNER: AtomicU32 = AtomicU32::new(10_000);

struct Tree {
    d: Ino,
    e: Ino,
    f: Ino,
    g: Ino,
}

fn setup() -> (&'static FileSystem, Tree) {
    let fs: &'static FileSystem =
        Box::leak(Box::new(FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 64 << 20, clock: zero_clock }).unwrap()));
    let d = fs.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap().ino;
    let e = fs.mkdir(ROOT, b"e", 0o755, 0, 0).unwrap().ino;
    let f = fs.create(d, b"f", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, &[1u8; 6000]).unwrap();
    let g = fs.create(d, b"g", 0o644, 0, 0).unwrap().ino;
    fs.write(g, 0, &[2u8; 9000]).unwrap();
    let sub = fs.mkdir(d, b"sub", 0o755, 0, 0).unwrap().ino;
    fs.create(sub, b"x", 0o644, 0, 0).unwrap();
    fs.mkdir(d, b"empty", 0o755, 0, 0).unwrap();
    (fs, Tree { d, e, f, g })
}

fn victim_op(fs: &FileSystem, t: &Tree, op: &str, variant: u8) {
    let r = match (op, variant) {
        ("create", 0) => fs.create(t.d, b"new", 0o644, 0, 0).map(drop),
        ("create", _) => fs.mkdir(t.d, b"newdir", 0o755, 0, 0).map(drop),
        ("write", 0) => fs.write(t.f, 3000, &[7u8; 10_000]).map(drop),
        ("write", _) => fs.write(t.g, 20_000, &[8u8; 100]).map(drop),
        ("truncate", 0) => fs.setattr(t.g, &SetAttr { size: Some(5000), ..Default::default() }).map(drop),
        ("truncate", _) => fs.setattr(t.f, &SetAttr { size: Some(100_000), ..Default::default() }).map(drop),
        ("unlink", 0) => fs.unlink(t.d, b"f"),
        ("unlink", _) => fs.rmdir(t.d, b"empty"),
        ("rename", 0) => fs.rename(t.d, b"f", t.d, b"g"),
        ("rename", _) => fs.rename(t.d, b"sub", t.e, b"sub2"),
        _ => unreachable!(),
    };
    r.expect("victim op");
}

/// Other owners working on the same objects after the death.
fn survivors(fs: &'static FileSystem, t: &Tree) {
    let (d, e) = (t.d, t.e);
    let threads: Vec<_> = (0..3u32)
        .map(|i| {
            thread::spawn(move || {
                set_current_owner(NEXT_OWNER.fetch_add(1, Ordering::Relaxed));
                let mut buf = [0u8; 64];
                for n in 0..40u32 {
                    let name = format!("w{i}-{n}");
                    let a = fs.create(d, name.as_bytes(), 0o644, 0, 0).unwrap();
                    fs.write(a.ino, (n as u64) * 100, &[i as u8; 5000]).unwrap();
                    for target in [&b"f"[..], b"g", b"new"] {
                        if let Ok(x) = fs.lookup(d, target) {
                            let _ = fs.write(x.ino, 100, &[9u8; 300]);
                            let _ = fs.read(x.ino, 0, &mut buf);
                            let _ = fs.setattr(x.ino, &SetAttr { size: Some(4000 + n as u64), ..Default::default() });
                        }
                    }
                    let moved = format!("m{i}-{n}");
                    fs.rename(d, name.as_bytes(), e, moved.as_bytes()).unwrap();
                    if n % 2 == 0 {
                        fs.unlink(e, moved.as_bytes()).unwrap();
                    }
                    let dn = format!("dir{i}-{n}");
                    fs.mkdir(e, dn.as_bytes(), 0o755, 0, 0).unwrap();
                    fs.rmdir(e, dn.as_bytes()).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("survivor");
    }
}

fn kill_at(op: &'static str, step: usize, variant: u8) -> Released {
    let (fs, t) = setup();
    let owner = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
    let victim = Tree { d: t.d, e: t.e, f: t.f, g: t.g };
    thread::spawn(move || {
        set_current_owner(owner);
        kill_points::arm(owner, op, step);
        victim_op(fs, &victim, op, variant);
        panic!("{op} step {step} variant {variant}: kill point not reached");
    });
    let mut waited = 0;
    while !kill_points::reached(owner) {
        thread::sleep(Duration::from_millis(1));
        waited += 1;
        assert!(waited < 10_000, "{op}/{step}/{variant}: victim never reached its kill point");
    }
    // SAFETY: the victim is parked at its kill point forever.
    let released = unsafe { fs.release_all(owner) };
    assert!(released.internal > 0 || released.repaired.is_some(), "{op}/{step}: the victim held nothing?");
    // The outcome the repair promises.
    let present = |dir: Ino, name: &[u8]| fs.lookup(dir, name).is_ok();
    match (op, variant) {
        ("create", 0) => assert_eq!(present(t.d, b"new"), step >= 1, "create/{step}"),
        ("create", _) => assert_eq!(present(t.d, b"newdir"), step >= 1, "mkdir/{step}"),
        ("write", 0) => {
            let size = fs.getattr(t.f).unwrap().size;
            assert_eq!(size, if step >= 2 { 13_000 } else { 6000 }, "write/{step}");
        }
        ("truncate", 0) => assert_eq!(fs.getattr(t.g).unwrap().size, if step >= 1 { 5000 } else { 9000 }),
        ("unlink", 0) => assert_eq!(present(t.d, b"f"), step == 0, "unlink/{step}"),
        ("unlink", _) => assert_eq!(present(t.d, b"empty"), step == 0, "rmdir/{step}"),
        ("rename", 0) => {
            assert_eq!(present(t.d, b"f"), step == 0, "rename/{step}");
            assert_eq!(fs.lookup(t.d, b"g").unwrap().ino, if step == 0 { t.g } else { t.f });
        }
        ("rename", _) => assert_eq!(present(t.e, b"sub2"), step >= 1, "rename dir/{step}"),
        _ => {}
    }
    fs.check().unwrap_or_else(|e| panic!("{op}/{step}/{variant} right after release_all: {e}"));
    survivors(fs, &t);
    fs.check().unwrap_or_else(|e| panic!("{op}/{step}/{variant} after survivors: {e}"));
    released
}

fn kill_every_step_of(op: &'static str) -> usize {
    let steps = kill_points::steps(op);
    assert!(!steps.is_empty());
    for step in 0..steps.len() {
        for variant in 0..2 {
            kill_at(op, step, variant);
        }
    }
    steps.len()
}

#[test]
fn kill_create_at_every_step() {
    assert_eq!(kill_every_step_of("create"), 5);
}

#[test]
fn kill_write_at_every_step() {
    assert_eq!(kill_every_step_of("write"), 7);
}

#[test]
fn kill_truncate_at_every_step() {
    assert_eq!(kill_every_step_of("truncate"), 6);
}

#[test]
fn kill_unlink_at_every_step() {
    assert_eq!(kill_every_step_of("unlink"), 5);
}

#[test]
fn kill_rename_at_every_step() {
    assert_eq!(kill_every_step_of("rename"), 7);
}

#[test]
fn every_op_has_kill_points() {
    let total: usize = kill_points::ops().iter().map(|op| kill_points::steps(op).len()).sum();
    assert_eq!(total, 30);
}

/// Dying while holding byte-range locks and flocks, and while queued.
#[test]
fn release_all_frees_user_locks_and_wakes_waiters() {
    let (fs, t) = setup();
    let dead = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
    let alive = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
    let whole = LockRange { start: 0, len: 0 };
    fs.setlk(t.f, dead, whole, LockType::Write).unwrap();
    fs.flock(t.g, 1, dead, FlockOp::Exclusive, false).unwrap();
    let waiter = thread::spawn(move || fs.setlkw(t.f, alive, whole, LockType::Read, None));
    while fs.lock_table().iter().all(|l| l.waiters == 0) {
        thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: `dead` makes no further calls in this test.
    let r = unsafe { fs.release_all(dead) };
    assert_eq!(r.locks, 2);
    assert_eq!(waiter.join().unwrap(), Ok(()));
    fs.flock(t.g, 2, alive, FlockOp::Exclusive, true).unwrap();
}

//! Byte-range locks, flock, safe points: one test per rule, then threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;
const A: Owner = 1;
const B: Owner = 2;
const C: Owner = 3;
const D: Owner = 4;

fn r(start: u64, len: u64) -> LockRange {
    LockRange { start, len }
}

fn setup() -> (Arc<FileSystem>, Ino) {
    let fs = fs();
    let f = fs.create(ROOT, b"db.sqlite", 0o644, 0, 0).unwrap().ino;
    (Arc::new(fs), f)
}

fn conflict(range: LockRange, kind: LockType, owner: Owner) -> Option<Conflict> {
    Some(Conflict { range, kind, owner })
}

/// Waits until some lock on the table has `n` waiters in total.
fn wait_for_waiters(fs: &FileSystem, n: usize) {
    let t0 = Instant::now();
    loop {
        let mut table = fs.lock_table();
        table.sort_by_key(|l| (l.start, l.owner));
        table.dedup_by_key(|l| (l.ino, l.start, l.owner, l.description));
        if table.iter().map(|l| l.waiters).max().unwrap_or(0) >= n {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "waiters never queued");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn shared_and_exclusive() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 10), LockType::Read).unwrap();
    fs.setlk(f, B, r(0, 10), LockType::Read).unwrap();
    assert_eq!(fs.setlk(f, C, r(5, 1), LockType::Write), Err(Errno::EAGAIN));
    // The same owner never conflicts with itself.
    assert_eq!(fs.getlk(f, A, r(0, 10), LockType::Read).unwrap(), None);
    fs.setlk(f, C, r(10, 10), LockType::Write).unwrap();
    assert_eq!(fs.setlk(f, A, r(15, 1), LockType::Read), Err(Errno::EAGAIN));
}

#[test]
fn unlocking_the_middle_splits() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 100), LockType::Write).unwrap();
    fs.setlk(f, A, r(40, 20), LockType::Unlock).unwrap();
    assert_eq!(fs.getlk(f, B, r(0, 100), LockType::Read).unwrap(), conflict(r(0, 40), LockType::Write, A));
    assert_eq!(fs.getlk(f, B, r(40, 60), LockType::Read).unwrap(), conflict(r(60, 40), LockType::Write, A));
    fs.setlk(f, B, r(40, 20), LockType::Write).unwrap();
    assert_eq!(fs.setlk(f, B, r(39, 2), LockType::Write), Err(Errno::EAGAIN));
}

#[test]
fn same_type_overlapping_or_adjacent_merge() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 10), LockType::Read).unwrap();
    fs.setlk(f, A, r(10, 10), LockType::Read).unwrap();
    fs.setlk(f, A, r(15, 10), LockType::Read).unwrap();
    assert_eq!(fs.getlk(f, B, r(0, 100), LockType::Write).unwrap(), conflict(r(0, 25), LockType::Read, A));
    let mine: Vec<_> = fs.lock_table().into_iter().filter(|l| l.owner == A).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].start, mine[0].len, mine[0].kind), (0, 25, HeldKind::Read));
    // A different type does not merge with an adjacent lock.
    fs.setlk(f, A, r(25, 5), LockType::Write).unwrap();
    assert_eq!(fs.lock_table().len(), 2);
}

#[test]
fn upgrade_in_place_splits_around() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 100), LockType::Read).unwrap();
    fs.setlk(f, A, r(20, 10), LockType::Write).unwrap();
    fs.setlk(f, B, r(0, 20), LockType::Read).unwrap();
    fs.setlk(f, B, r(30, 70), LockType::Read).unwrap();
    assert_eq!(fs.setlk(f, B, r(25, 1), LockType::Read), Err(Errno::EAGAIN));
    assert_eq!(fs.getlk(f, C, r(0, 0), LockType::Read).unwrap(), conflict(r(20, 10), LockType::Write, A));
    let mut kinds: Vec<_> = fs.lock_table().into_iter().filter(|l| l.owner == A).map(|l| (l.start, l.len, l.kind)).collect();
    kinds.sort();
    assert_eq!(kinds, vec![(0, 20, HeldKind::Read), (20, 10, HeldKind::Write), (30, 70, HeldKind::Read)]);
}

#[test]
fn downgrade_lets_readers_in_and_wakes_them() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 100), LockType::Write).unwrap();
    assert_eq!(fs.setlk(f, B, r(0, 10), LockType::Read), Err(Errno::EAGAIN));
    let fs2 = fs.clone();
    let waiter = thread::spawn(move || fs2.setlkw(f, B, r(0, 10), LockType::Read, None));
    wait_for_waiters(&fs, 1);
    fs.setlk(f, A, r(0, 100), LockType::Read).unwrap();
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert_eq!(fs.setlk(f, C, r(50, 1), LockType::Write), Err(Errno::EAGAIN));
}

#[test]
fn zero_length_means_to_eof_and_beyond() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(50, 0), LockType::Write).unwrap();
    assert_eq!(fs.setlk(f, B, r(1 << 40, 1), LockType::Read), Err(Errno::EAGAIN));
    fs.setlk(f, B, r(0, 50), LockType::Write).unwrap();
    // A locked first, so A's lock comes first (Linux list order).
    assert_eq!(fs.getlk(f, C, r(0, 0), LockType::Read).unwrap(), conflict(r(50, 0), LockType::Write, A));
    assert_eq!(fs.getlk(f, C, r(0, 50), LockType::Read).unwrap(), conflict(r(0, 50), LockType::Write, B));
    assert_eq!(fs.getlk(f, C, r(60, 1), LockType::Read).unwrap(), conflict(r(50, 0), LockType::Write, A));
    // Unlocking a tail of a to-EOF lock leaves a bounded lock.
    fs.setlk(f, A, r(70, 0), LockType::Unlock).unwrap();
    assert_eq!(fs.getlk(f, C, r(60, 0), LockType::Read).unwrap(), conflict(r(50, 20), LockType::Write, A));
    assert_eq!(fs.getlk(f, C, r(70, 0), LockType::Write).unwrap(), None);
}

#[test]
fn bad_ranges_and_files() {
    let (fs, f) = setup();
    assert_eq!(fs.setlk(f, A, r(1 << 63, 1), LockType::Read), Err(Errno::EINVAL));
    assert_eq!(fs.setlk(f, A, r(2, u64::MAX >> 1), LockType::Read), Err(Errno::EOVERFLOW));
    assert_eq!(fs.getlk(f, A, r(0, 1), LockType::Unlock), Err(Errno::EINVAL));
    assert_eq!(fs.setlk(999_999, A, r(0, 1), LockType::Read), Err(Errno::ENOENT));
    // The largest range that fits reports as "to EOF", like Linux's OFFSET_MAX.
    fs.setlk(f, A, r(10, (1 << 63) - 10), LockType::Read).unwrap();
    assert_eq!(fs.getlk(f, B, r(0, 0), LockType::Write).unwrap(), conflict(r(10, 0), LockType::Read, A));
}

#[test]
fn getlk_order_is_by_owner_then_start() {
    let (fs, f) = setup();
    fs.setlk(f, B, r(20, 10), LockType::Read).unwrap();
    fs.setlk(f, A, r(0, 10), LockType::Read).unwrap();
    fs.setlk(f, B, r(0, 5), LockType::Read).unwrap();
    // B took its first lock first, so B's locks come first, sorted by start.
    assert_eq!(fs.getlk(f, C, r(0, 100), LockType::Write).unwrap(), conflict(r(0, 5), LockType::Read, B));
    fs.setlk(f, B, r(0, 0), LockType::Unlock).unwrap();
    assert_eq!(fs.getlk(f, C, r(0, 100), LockType::Write).unwrap(), conflict(r(0, 10), LockType::Read, A));
    assert_eq!(fs.getlk(f, C, r(0, 100), LockType::Read).unwrap(), None);
}

#[test]
fn closing_any_descriptor_releases_the_owners_range_locks_on_that_file() {
    let (fs, f) = setup();
    let g = fs.create(ROOT, b"other", 0o644, 0, 0).unwrap().ino;
    fs.setlk(f, A, r(0, 10), LockType::Write).unwrap();
    fs.setlk(g, A, r(0, 10), LockType::Write).unwrap();
    fs.setlk(f, B, r(20, 10), LockType::Write).unwrap();
    fs.flock(f, 7, A, FlockOp::Exclusive, true).unwrap();
    fs.close_release(f, A);
    fs.setlk(f, C, r(0, 10), LockType::Write).unwrap();
    assert_eq!(fs.setlk(f, C, r(20, 1), LockType::Write), Err(Errno::EAGAIN), "other owners keep theirs");
    assert_eq!(fs.setlk(g, C, r(0, 1), LockType::Write), Err(Errno::EAGAIN), "other files keep theirs");
    assert_eq!(fs.flock(f, 8, C, FlockOp::Shared, true), Err(Errno::EWOULDBLOCK), "flock is not a range lock");
}

#[test]
fn flock_is_per_description_and_independent_of_range_locks() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 0), LockType::Write).unwrap();
    // A range lock does not stop flock, and vice versa.
    fs.flock(f, 1, B, FlockOp::Exclusive, true).unwrap();
    fs.setlk(f, A, r(0, 0), LockType::Unlock).unwrap();
    fs.setlk(f, C, r(0, 0), LockType::Write).unwrap();
    // Two descriptions of the same owner conflict.
    assert_eq!(fs.flock(f, 2, B, FlockOp::Shared, true), Err(Errno::EWOULDBLOCK));
    // Same description: re-lock and convert.
    fs.flock(f, 1, B, FlockOp::Exclusive, true).unwrap();
    fs.flock(f, 1, B, FlockOp::Shared, true).unwrap();
    fs.flock(f, 2, B, FlockOp::Shared, true).unwrap();
    fs.flock(f, 3, A, FlockOp::Shared, true).unwrap();
    assert_eq!(fs.flock(f, 1, B, FlockOp::Exclusive, true), Err(Errno::EWOULDBLOCK));
    // The failed conversion dropped the shared lock first (as Linux does).
    assert!(!fs.lock_table().iter().any(|l| l.description == Some(1)));
    fs.flock(f, 2, B, FlockOp::Unlock, true).unwrap();
    fs.flock(f, 3, A, FlockOp::Unlock, true).unwrap();
    fs.flock(f, 1, B, FlockOp::Exclusive, true).unwrap();
    // A blocking flock waits for the unlock.
    let fs2 = fs.clone();
    let t = thread::spawn(move || fs2.flock(f, 9, D, FlockOp::Shared, false));
    wait_for_waiters(&fs, 1);
    fs.flock(f, 1, B, FlockOp::Unlock, false).unwrap();
    assert_eq!(t.join().unwrap(), Ok(()));
}

#[test]
fn edeadlk_for_two_owners() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 1), LockType::Write).unwrap();
    fs.setlk(f, B, r(1, 1), LockType::Write).unwrap();
    let fs2 = fs.clone();
    let b = thread::spawn(move || fs2.setlkw(f, B, r(0, 1), LockType::Write, None));
    wait_for_waiters(&fs, 1);
    assert_eq!(fs.setlkw(f, A, r(1, 1), LockType::Write, None), Err(Errno::EDEADLK));
    // No cycle without the wait: a timed wait on something else is fine.
    fs.setlk(f, A, r(0, 1), LockType::Unlock).unwrap();
    assert_eq!(b.join().unwrap(), Ok(()));
}

#[test]
fn edeadlk_for_a_longer_cycle_across_files() {
    let (fs, f) = setup();
    let g = fs.create(ROOT, b"g", 0o644, 0, 0).unwrap().ino;
    fs.setlk(f, A, r(0, 1), LockType::Write).unwrap();
    fs.setlk(f, B, r(1, 1), LockType::Write).unwrap();
    fs.setlk(g, C, r(0, 1), LockType::Read).unwrap();
    let (fs2, fs3) = (fs.clone(), fs.clone());
    // A waits for B, B waits for C (on another file), C asks for A's byte.
    let a = thread::spawn(move || fs2.setlkw(f, A, r(1, 1), LockType::Read, None));
    wait_for_waiters(&fs, 1);
    let b = thread::spawn(move || fs3.setlkw(g, B, r(0, 1), LockType::Write, None));
    let t0 = Instant::now();
    while fs.lock_table().iter().filter(|l| l.waiters > 0).count() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(fs.setlkw(f, C, r(0, 1), LockType::Write, None), Err(Errno::EDEADLK));
    assert_eq!(fs.setlk(f, C, r(0, 1), LockType::Write), Err(Errno::EAGAIN), "non-blocking is plain EAGAIN");
    // SAFETY: owner C makes no further calls in this test.
    unsafe { fs.release_all(C) };
    assert_eq!(b.join().unwrap(), Ok(()));
    // SAFETY: owner B makes no further calls in this test.
    unsafe { fs.release_all(B) };
    assert_eq!(a.join().unwrap(), Ok(()));
}

#[test]
fn timeout_gives_etimedout() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 10), LockType::Write).unwrap();
    let t0 = Instant::now();
    assert_eq!(fs.setlkw(f, B, r(5, 1), LockType::Read, Some(Duration::from_millis(60))), Err(Errno::ETIMEDOUT));
    assert!(t0.elapsed() >= Duration::from_millis(60));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(fs.lock_table().iter().all(|l| l.waiters == 0), "the request left the queue");
    assert_eq!(fs.flock_timeout(f, 1, A, FlockOp::Exclusive, false, Some(Duration::from_millis(1))), Ok(()));
    assert_eq!(fs.flock_timeout(f, 2, B, FlockOp::Exclusive, false, Some(Duration::from_millis(20))), Err(Errno::ETIMEDOUT));
}

#[test]
fn waiters_are_granted_in_fifo_order() {
    let (fs, f) = setup();
    fs.setlk(f, A, r(0, 10), LockType::Write).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for (i, owner) in [B, C, D, 5, 6].into_iter().enumerate() {
        let (fs2, tx) = (fs.clone(), tx.clone());
        threads.push(thread::spawn(move || {
            fs2.setlkw(f, owner, r(0, 10), LockType::Write, None).unwrap();
            tx.send(owner).unwrap();
            thread::sleep(Duration::from_millis(5));
            fs2.setlk(f, owner, r(0, 10), LockType::Unlock).unwrap();
        }));
        wait_for_waiters(&fs, i + 1);
    }
    fs.setlk(f, A, r(0, 10), LockType::Unlock).unwrap();
    let order: Vec<Owner> = (0..5).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(order, vec![B, C, D, 5, 6]);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn kill_request_interrupts_a_wait_and_safe_points_refuse_entry() {
    let (fs, f) = setup();
    let victim: Owner = 4242;
    fs.setlk(f, A, r(0, 0), LockType::Write).unwrap();
    let (fs2, (tx, rx)) = (fs.clone(), mpsc::channel());
    let worker = thread::spawn(move || {
        let guard = fs2.enter(victim).unwrap();
        assert_eq!(fs2.enter(victim).err(), Some(Errno::EBUSY));
        tx.send(()).unwrap();
        let r = fs2.setlkw(f, victim, r(0, 1), LockType::Read, None);
        drop(guard);
        r
    });
    rx.recv().unwrap();
    wait_for_waiters(&fs, 1);
    assert_eq!(fs.safe_point_state(victim), SafePointState::Inside);
    assert_eq!(fs.request_kill(victim), SafePointState::KillPending);
    assert_eq!(worker.join().unwrap(), Err(Errno::EINTR));
    assert_eq!(fs.safe_point_state(victim), SafePointState::Killed, "left after the kill request");
    assert_eq!(fs.enter(victim).err(), Some(Errno::EINTR));
    // SAFETY: the victim thread has returned (joined above).
    unsafe { fs.release_all(victim) };
    assert_eq!(fs.safe_point_state(victim), SafePointState::Outside, "id reusable");
    // Outside: killed at once.
    assert_eq!(fs.request_kill(victim), SafePointState::Killed);
    assert_eq!(fs.request_kill(victim), SafePointState::Killed);
    // SAFETY: the victim thread has returned (joined above).
    unsafe { fs.release_all(victim) };
    drop(fs.enter(victim).unwrap());
}

#[test]
fn lock_table_shows_paths_owners_and_waiters() {
    let (fs, f) = setup();
    let dir = fs.mkdir(ROOT, b"wp-content", 0o755, 0, 0).unwrap().ino;
    let g = fs.create(dir, b"database.sqlite", 0o644, 0, 0).unwrap().ino;
    fs.setlk(g, A, r(0, 0), LockType::Write).unwrap();
    fs.flock(f, 77, B, FlockOp::Shared, true).unwrap();
    let fs2 = fs.clone();
    let t = thread::spawn(move || fs2.setlkw(g, C, r(100, 1), LockType::Read, None));
    wait_for_waiters(&fs, 1);
    let mut table = fs.lock_table();
    table.sort_by_key(|l| l.ino);
    assert_eq!(table.len(), 2);
    assert_eq!(table[0].path.as_deref(), Some(&b"/db.sqlite"[..]));
    assert_eq!((table[0].kind, table[0].owner, table[0].description), (HeldKind::FlockShared, B, Some(77)));
    assert_eq!(table[1].path.as_deref(), Some(&b"/wp-content/database.sqlite"[..]));
    assert_eq!((table[1].kind, table[1].owner, table[1].start, table[1].len, table[1].waiters), (HeldKind::Write, A, 0, 0, 1));
    // SAFETY: owner A makes no further calls in this test.
    unsafe { fs.release_all(A) };
    assert_eq!(t.join().unwrap(), Ok(()));
}

/// The counter lives in the file; the lock is the only thing keeping
/// read-modify-write cycles from interleaving.
fn counter_under(lock: impl Fn(&FileSystem, Ino, Owner, bool) + Send + Sync + 'static) {
    const THREADS: u32 = 4;
    const ROUNDS: u64 = 400;
    let (fs, f) = setup();
    fs.write(f, 0, &0u64.to_le_bytes()).unwrap();
    let lock = Arc::new(lock);
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (fs, lock) = (fs.clone(), lock.clone());
            thread::spawn(move || {
                let owner = 100 + i;
                set_current_owner(owner);
                for _ in 0..ROUNDS {
                    lock(&fs, f, owner, true);
                    let mut buf = [0u8; 8];
                    fs.read(f, 0, &mut buf).unwrap();
                    let v = u64::from_le_bytes(buf) + 1;
                    thread::yield_now(); // widen the race window
                    fs.write(f, 0, &v.to_le_bytes()).unwrap();
                    lock(&fs, f, owner, false);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut buf = [0u8; 8];
    fs.read(f, 0, &mut buf).unwrap();
    assert_eq!(u64::from_le_bytes(buf), THREADS as u64 * ROUNDS);
    fs.check().unwrap();
}

#[test]
fn counter_under_exclusive_range_lock_loses_nothing() {
    counter_under(|fs, f, owner, take| {
        let kind = if take { LockType::Write } else { LockType::Unlock };
        fs.setlkw(f, owner, r(0, 8), kind, None).unwrap();
    });
}

#[test]
fn counter_under_flock_loses_nothing() {
    counter_under(|fs, f, owner, take| {
        let op = if take { FlockOp::Exclusive } else { FlockOp::Unlock };
        fs.flock(f, owner as u64, owner, op, false).unwrap();
    });
}

#[test]
fn readers_under_shared_locks_overlap() {
    let (fs, f) = setup();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            let (fs, inside, most) = (fs.clone(), inside.clone(), most.clone());
            thread::spawn(move || {
                fs.setlkw(f, 200 + i, r(0, 100), LockType::Read, None).unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Writers are shut out while readers are in.
                assert_eq!(fs.setlk(f, 999, r(50, 1), LockType::Write), Err(Errno::EAGAIN));
                thread::sleep(Duration::from_millis(100));
                inside.fetch_sub(1, Ordering::SeqCst);
                fs.setlk(f, 200 + i, r(0, 100), LockType::Unlock).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) >= 2, "shared holders never overlapped");
    fs.setlk(f, 999, r(50, 1), LockType::Write).unwrap();
}

//! `flock()`: php.wasm's own is a no-op compiled into the binary, so php.ini
//! disables it and a preloaded PHP function (`flock-polyfill.php`, its
//! messages sorted by `php_messages.rs`) asks the worker for each call. This is the worker's side: which
//! open file description a PHP stream is, which descriptions the worker
//! holds a flock with, and when they are released.
//!
//! One `Flocks` per worker (a thread-local in `fs_calls.rs`).

use crate::errno_abi::php_flock::{LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN};
use shared_fs::{Errno, FileSystem, FlockOp, Ino, Owner};

/// The polyfill's answer (it compares the reply with these strings).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// `LOCK_NB` and another description holds a conflicting lock.
    WouldBlock,
    /// Any other error: PHP's `flock()` returns false.
    Error,
}

impl Reply {
    pub fn as_str(self) -> &'static str {
        match self {
            Reply::Ok => "ok",
            Reply::WouldBlock => "EWOULDBLOCK",
            Reply::Error => "error",
        }
    }
}

/// Bits of a description id: worker | request | PHP resource id, below 2^53
/// so the id is exact as a JS number too.
const REQUEST_BITS: u32 = 25;
const RESOURCE_BITS: u32 = 20;

/// A worker's flock bookkeeping. Few files are open at once, so plain
/// vectors (which keep their room: no allocation per open or close once
/// warm) beat maps here.
#[derive(Debug, Default)]
pub struct Flocks {
    /// Requests this worker finished: PHP's resource ids restart with every
    /// request, so a description id includes the request.
    request: u64,
    /// The descriptions this worker holds a flock with, by inode.
    held: Vec<(Ino, Vec<u64>)>,
    /// This worker's open descriptors, by inode.
    open: Vec<(Ino, u32)>,
}

impl Flocks {
    pub const fn new() -> Flocks {
        Flocks { request: 0, held: Vec::new(), open: Vec::new() }
    }

    /// The open file description PHP stream `resource` of this request is:
    /// distinct across workers (`owner`, 8 bits used), requests (25 bits,
    /// wrapping) and the request's resources (20 bits, wrapping).
    pub fn description(&self, owner: Owner, resource: u64) -> u64 {
        let request = self.request % (1 << REQUEST_BITS);
        let resource = resource % (1 << RESOURCE_BITS);
        ((((owner as u64) << REQUEST_BITS) | request) << RESOURCE_BITS) | resource
    }

    /// PHP's `flock($stream, $operation)`, `$operation` in PHP's values
    /// (`errno_abi::php_flock`): `ino` is the stream's inode (from its
    /// `fstat`), `resource` its resource id, `shared` whether its path is a
    /// shared-fs file (a private one is nobody else's business: php.wasm's
    /// no-op answer stands).
    pub fn flock(&mut self, fs: &FileSystem, owner: Owner, shared: bool, ino: Ino, resource: u64, operation: u32) -> Reply {
        if !shared {
            return Reply::Ok;
        }
        let description = self.description(owner, resource);
        let result = parse(operation).and_then(|(op, nonblocking)| {
            fs.flock(ino, description, owner, op, nonblocking)?;
            Ok(op)
        });
        match result {
            Ok(FlockOp::Unlock) => {
                if let Some(i) = self.held.iter().position(|(i, _)| *i == ino) {
                    self.held[i].1.retain(|d| *d != description);
                    if self.held[i].1.is_empty() {
                        self.held.swap_remove(i);
                    }
                }
                Reply::Ok
            }
            Ok(_) => {
                match self.held.iter_mut().find(|(i, _)| *i == ino) {
                    Some((_, descriptions)) if !descriptions.contains(&description) => descriptions.push(description),
                    Some(_) => {}
                    None => self.held.push((ino, vec![description])),
                }
                Reply::Ok
            }
            Err(Errno::EWOULDBLOCK) => Reply::WouldBlock,
            Err(_) => Reply::Error,
        }
    }

    /// A descriptor of `ino` was opened (or duplicated) by this worker.
    pub fn opened(&mut self, ino: Ino) {
        match self.open.iter_mut().find(|(i, _)| *i == ino) {
            Some((_, n)) => *n += 1,
            None => self.open.push((ino, 1)),
        }
    }

    /// A descriptor of `ino` is closing. A closed PHP stream cannot be told
    /// apart from the worker's other descriptors of the same file, so its
    /// flocks on that file go when the last of them closes.
    pub fn closed(&mut self, fs: &FileSystem, owner: Owner, ino: Ino) {
        let left = match self.open.iter().position(|(i, _)| *i == ino) {
            Some(at) => {
                self.open[at].1 -= 1;
                let left = self.open[at].1;
                if left == 0 {
                    self.open.swap_remove(at);
                }
                left
            }
            None => 0,
        };
        if left == 0 {
            if let Some(at) = self.held.iter().position(|(i, _)| *i == ino) {
                let (ino, descriptions) = self.held.swap_remove(at);
                unlock(fs, owner, ino, &descriptions);
            }
        }
    }

    /// The request ended: every stream it opened is gone with it, so are its
    /// flocks; the next request's descriptions are new ones.
    pub fn request_ended(&mut self, fs: &FileSystem, owner: Owner) {
        for (ino, descriptions) in self.held.drain(..) {
            unlock(fs, owner, ino, &descriptions);
        }
        self.request += 1;
    }

    /// The descriptions this worker holds a flock with on `ino`.
    #[cfg(test)]
    pub fn held(&self, ino: Ino) -> &[u64] {
        self.held.iter().find(|(i, _)| *i == ino).map_or(&[], |(_, d)| d)
    }
}

fn unlock(fs: &FileSystem, owner: Owner, ino: Ino, descriptions: &[u64]) {
    for &d in descriptions {
        // Dropping one's own lock cannot fail but for a file already gone.
        let _ = fs.flock(ino, d, owner, FlockOp::Unlock, false);
    }
}

/// PHP's `LOCK_SH`, `LOCK_EX` or `LOCK_UN` (the low two bits, as PHP's
/// flock() reads them), optionally with `LOCK_NB`.
fn parse(operation: u32) -> Result<(FlockOp, bool), Errno> {
    let op = match operation & LOCK_UN {
        LOCK_SH => FlockOp::Shared,
        LOCK_EX => FlockOp::Exclusive,
        LOCK_UN => FlockOp::Unlock,
        _ => return Err(Errno::EINVAL),
    };
    Ok((op, operation & LOCK_NB != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::test_fs;

    const EX_NB: u32 = LOCK_EX | LOCK_NB;

    fn file(fs: &FileSystem, name: &str) -> Ino {
        fs.create(FileSystem::ROOT, name.as_bytes(), 0o644, 0, 0).unwrap().ino
    }

    /// A worker that opened `ino` `n` times.
    fn worker_with(ino: Ino, n: usize) -> Flocks {
        let mut w = Flocks::new();
        for _ in 0..n {
            w.opened(ino);
        }
        w
    }

    #[test]
    fn the_polyfill_compares_with_these_replies() {
        let polyfill = include_str!("flock-polyfill.php");
        for reply in [Reply::Ok, Reply::WouldBlock] {
            assert!(polyfill.contains(&format!("$reply === '{}'", reply.as_str())), "{reply:?}");
        }
    }

    #[test]
    fn description_ids_differ_across_workers_requests_and_resources() {
        let mut ids = std::collections::HashSet::new();
        for owner in [0, 1, 7, 255] {
            let mut w = Flocks::new();
            for _request in 0..3 {
                for resource in [1, 2, 5, (1 << 20) - 1] {
                    let id = w.description(owner, resource);
                    assert!(id < 1 << 53, "exact as a JS number");
                    assert!(ids.insert(id), "{owner} {resource}");
                }
                w.request_ended(&test_fs(), owner);
            }
        }
        // The same stream in the same request is the same description.
        let w = Flocks::new();
        assert_eq!(w.description(3, 9), w.description(3, 9));
        assert_eq!(w.description(3, 9), (3 * (1 << 25)) * (1 << 20) + 9);
    }

    #[test]
    fn lock_nb_on_a_held_lock_would_block_until_it_is_released() {
        let fs = test_fs();
        let ino = file(&fs, "f");
        let (mut a, mut b) = (worker_with(ino, 1), worker_with(ino, 1));
        assert_eq!(a.flock(&fs, 0, true, ino, 5, LOCK_EX), Reply::Ok);
        assert_eq!(b.flock(&fs, 1, true, ino, 5, EX_NB), Reply::WouldBlock);
        assert_eq!(b.flock(&fs, 1, true, ino, 5, LOCK_SH | LOCK_NB), Reply::WouldBlock);
        assert!(b.held(ino).is_empty(), "a refused lock is not held");
        assert_eq!(a.flock(&fs, 0, true, ino, 5, LOCK_UN), Reply::Ok);
        assert!(a.held(ino).is_empty());
        assert_eq!(b.flock(&fs, 1, true, ino, 5, EX_NB), Reply::Ok);
        assert_eq!(b.held(ino), &[b.description(1, 5)]);
    }

    #[test]
    fn lock_un_is_phps_3_and_releases_at_once() {
        let fs = test_fs();
        let ino = file(&fs, "f");
        let (mut a, mut b) = (worker_with(ino, 1), worker_with(ino, 1));
        assert_eq!(LOCK_UN, LOCK_SH | LOCK_EX);
        assert_eq!(a.flock(&fs, 0, true, ino, 1, LOCK_SH), Reply::Ok);
        assert_eq!(b.flock(&fs, 1, true, ino, 1, EX_NB), Reply::WouldBlock);
        assert_eq!(a.flock(&fs, 0, true, ino, 1, LOCK_UN | LOCK_NB), Reply::Ok);
        assert!(a.held(ino).is_empty());
        assert_eq!(b.flock(&fs, 1, true, ino, 1, EX_NB), Reply::Ok);
        assert_eq!(a.flock(&fs, 0, true, ino, 1, LOCK_UN), Reply::Ok, "unlocking what is not held is fine");
    }

    #[test]
    fn two_streams_of_one_worker_are_two_descriptions() {
        let fs = test_fs();
        let ino = file(&fs, "f");
        let mut w = worker_with(ino, 2);
        assert_eq!(w.flock(&fs, 0, true, ino, 1, LOCK_EX), Reply::Ok);
        assert_eq!(w.flock(&fs, 0, true, ino, 2, EX_NB), Reply::WouldBlock, "flock conflicts between descriptions");
        assert_eq!(w.flock(&fs, 0, true, ino, 1, LOCK_SH), Reply::Ok, "converting one's own lock");
        assert_eq!(w.flock(&fs, 0, true, ino, 2, LOCK_SH | LOCK_NB), Reply::Ok);
        assert_eq!(w.held(ino).len(), 2);
    }

    #[test]
    fn released_on_the_workers_last_close_of_the_file_only() {
        let fs = test_fs();
        let (ino, other) = (file(&fs, "f"), file(&fs, "g"));
        let mut w = worker_with(ino, 2);
        w.opened(other);
        let mut rival = worker_with(ino, 1);
        assert_eq!(w.flock(&fs, 0, true, ino, 1, LOCK_EX), Reply::Ok);
        w.closed(&fs, 0, other);
        assert_eq!(w.held(ino).len(), 1, "closing another file keeps it");
        w.closed(&fs, 0, ino);
        assert_eq!(w.held(ino).len(), 1, "another descriptor of the file is still open");
        assert_eq!(rival.flock(&fs, 1, true, ino, 1, EX_NB), Reply::WouldBlock);
        w.closed(&fs, 0, ino);
        assert!(w.held(ino).is_empty());
        assert_eq!(rival.flock(&fs, 1, true, ino, 1, EX_NB), Reply::Ok);
        // A later open starts counting afresh.
        w.opened(ino);
        assert_eq!(w.flock(&fs, 0, true, ino, 2, LOCK_SH | LOCK_NB), Reply::WouldBlock);
    }

    #[test]
    fn a_close_of_a_worker_without_flocks_touches_nobody_elses() {
        let fs = test_fs();
        let ino = file(&fs, "f");
        let (mut a, mut b) = (worker_with(ino, 1), worker_with(ino, 1));
        assert_eq!(a.flock(&fs, 0, true, ino, 1, LOCK_EX), Reply::Ok);
        b.closed(&fs, 1, ino);
        assert_eq!(b.flock(&fs, 1, true, ino, 2, EX_NB), Reply::WouldBlock);
    }

    #[test]
    fn released_at_request_end_and_ids_move_on() {
        let fs = test_fs();
        let (f, g) = (file(&fs, "f"), file(&fs, "g"));
        let mut w = worker_with(f, 1);
        w.opened(g);
        let mut rival = Flocks::new();
        assert_eq!(w.flock(&fs, 0, true, f, 4, LOCK_EX), Reply::Ok);
        assert_eq!(w.flock(&fs, 0, true, g, 5, LOCK_SH), Reply::Ok);
        let before = w.description(0, 4);
        w.request_ended(&fs, 0);
        assert!(w.held(f).is_empty() && w.held(g).is_empty());
        assert_ne!(w.description(0, 4), before);
        assert_eq!(rival.flock(&fs, 1, true, f, 4, EX_NB), Reply::Ok);
        assert_eq!(rival.flock(&fs, 1, true, g, 5, EX_NB), Reply::Ok);
    }

    #[test]
    fn private_files_bad_operations_and_missing_files() {
        let fs = test_fs();
        let ino = file(&fs, "f");
        let mut w = Flocks::new();
        assert_eq!(w.flock(&fs, 0, false, 12345, 1, LOCK_EX), Reply::Ok, "a private file: php.wasm's no-op");
        assert!(w.held(12345).is_empty());
        assert_eq!(w.flock(&fs, 0, true, ino, 1, 0), Reply::Error);
        assert_eq!(w.flock(&fs, 0, true, ino, 1, LOCK_NB), Reply::Error);
        assert_eq!(w.flock(&fs, 0, true, ino, 1, 8), Reply::Error, "libc's LOCK_UN is no PHP operation");
        assert_eq!(w.flock(&fs, 0, true, 0, 1, LOCK_EX), Reply::Error, "no such inode (fstat failed)");
        assert!(fs.lock_table().is_empty());
    }
}

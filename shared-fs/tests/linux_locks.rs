//! The same lock sequences on shared-fs and on a real Linux file through
//! `fcntl(F_SETLK/F_SETLKW/F_GETLK)`, one child process per owner (this test
//! binary re-run with `SHARED_FS_LOCK_CHILD`), so owners differ exactly as
//! POSIX processes do. Outcomes must be equal.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::*;
use shared_fs::*;

const CHILD_ENV: &str = "SHARED_FS_LOCK_CHILD";

/// Child side: one line per command on stdin, one `@@` line per answer.
/// Not a test of its own: ignored so it never counts as a pass, and run by
/// `Proc::spawn` with `--ignored`; without its variable it fails.
#[test]
#[ignore = "helper process for the lock tests (Proc::spawn runs it with SHARED_FS_LOCK_CHILD)"]
fn lock_child() {
    let path = std::env::var(CHILD_ENV)
        .unwrap_or_else(|_| panic!("lock_child is the lock tests' child process, not a test: it needs {CHILD_ENV}"));
    let cpath = std::ffi::CString::new(path).unwrap();
    // SAFETY: plain libc calls on a file we own.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR) };
    // A second open file description, for flock.
    let fd2 = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR) };
    assert!(fd >= 0 && fd2 >= 0);
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        let w: Vec<&str> = line.split_whitespace().collect();
        let answer = match w[0] {
            "pid" => format!("pid {}", std::process::id()),
            "quit" => break,
            "flock" => {
                let op = match w[2] {
                    "SH" => libc::LOCK_SH,
                    "EX" => libc::LOCK_EX,
                    _ => libc::LOCK_UN,
                } | libc::LOCK_NB;
                // SAFETY: plain flock on our descriptors.
                match unsafe { libc::flock(if w[1] == "0" { fd } else { fd2 }, op) } {
                    0 => "ok".to_string(),
                    _ => format!("err {}", std::io::Error::last_os_error().raw_os_error().unwrap()),
                }
            }
            cmd => {
                let mut fl: libc::flock = unsafe { std::mem::zeroed() };
                fl.l_type = match w[1] {
                    "R" => libc::F_RDLCK,
                    "W" => libc::F_WRLCK,
                    _ => libc::F_UNLCK,
                } as _;
                fl.l_whence = libc::SEEK_SET as _;
                fl.l_start = w[2].parse().unwrap();
                fl.l_len = w[3].parse().unwrap();
                let op = match cmd {
                    "set" => libc::F_SETLK,
                    "setw" => libc::F_SETLKW,
                    _ => libc::F_GETLK,
                };
                // SAFETY: fl is a valid struct flock.
                let rc = unsafe { libc::fcntl(fd, op, &mut fl) };
                if rc != 0 {
                    format!("err {}", std::io::Error::last_os_error().raw_os_error().unwrap())
                } else if op != libc::F_GETLK {
                    "ok".to_string()
                } else if fl.l_type == libc::F_UNLCK as _ {
                    "none".to_string()
                } else {
                    let t = if fl.l_type == libc::F_RDLCK as _ { "R" } else { "W" };
                    format!("lock {t} {} {} {}", fl.l_start, fl.l_len, fl.l_pid)
                }
            }
        };
        println!("@@{answer}");
    }
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
}

impl Proc {
    fn spawn(path: &str) -> Proc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "lock_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut p = Proc { child, stdin, stdout, pid: 0 };
        p.send("pid");
        p.pid = p.recv().strip_prefix("pid ").unwrap().parse().unwrap();
        p
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> String {
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "child died");
            // The harness may print "test lock_child ... " before it on the same line.
            if let Some(at) = line.find("@@") {
                return line[at + 2..].trim_end().to_string();
            }
        }
    }

    fn call(&mut self, cmd: &str) -> String {
        self.send(cmd);
        self.recv()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.send("quit");
        let _ = self.child.wait();
    }
}

struct Both {
    procs: Vec<Proc>,
    fs: &'static FileSystem,
    ino: Ino,
    _dir: TempFile,
}

struct TempFile(String);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn kind_str(k: LockType) -> &'static str {
    match k {
        LockType::Read => "R",
        LockType::Write => "W",
        LockType::Unlock => "U",
    }
}

impl Both {
    fn new(owners: usize, tag: &str) -> Both {
        let path = std::env::temp_dir().join(format!("shared-fs-locks-{}-{tag}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let path = path.to_str().unwrap().to_string();
        let procs = (0..owners).map(|_| Proc::spawn(&path)).collect();
        let fs: &'static FileSystem = Box::leak(Box::new(fs()));
        let ino = fs.create(FileSystem::ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        Both { procs, fs, ino, _dir: TempFile(path) }
    }

    fn owner_of_pid(&self, pid: &str) -> Owner {
        let pid: u32 = pid.parse().unwrap();
        self.procs.iter().position(|p| p.pid == pid).expect("pid of a child") as Owner
    }

    /// Linux's answer in shared-fs terms.
    fn linux(&mut self, owner: usize, cmd: &str) -> String {
        let a = self.procs[owner].call(cmd);
        let w: Vec<&str> = a.split_whitespace().collect();
        match w[0] {
            "lock" => format!("lock {} {} {} owner {}", w[1], w[2], w[3], self.owner_of_pid(w[4])),
            "err" => format!("err {}", w[1]),
            _ => a,
        }
    }

    fn ours_set(&self, owner: usize, kind: LockType, start: u64, len: u64) -> String {
        match self.fs.setlk(self.ino, owner as Owner, LockRange { start, len }, kind) {
            Ok(()) => "ok".into(),
            Err(e) => format!("err {}", e.0),
        }
    }

    fn ours_get(&self, owner: usize, kind: LockType, start: u64, len: u64) -> String {
        match self.fs.getlk(self.ino, owner as Owner, LockRange { start, len }, kind) {
            Ok(None) => "none".into(),
            Ok(Some(c)) => format!("lock {} {} {} owner {}", kind_str(c.kind), c.range.start, c.range.len, c.owner),
            Err(e) => format!("err {}", e.0),
        }
    }
}

#[test]
fn random_sequences_match_linux_fcntl() {
    let mut compared = 0;
    for seed in 1..=6u64 {
        let owners = 2 + (seed % 2) as usize;
        let mut b = Both::new(owners, &format!("rand{seed}"));
        let mut rng = Rng::new(seed);
        for step in 0..400 {
            let owner = rng.below(owners as u64) as usize;
            let start = rng.below(24);
            let len = if rng.chance(15) { 0 } else { 1 + rng.below(8) };
            let get = rng.chance(35);
            let kind = match rng.below(if get { 2 } else { 3 }) {
                0 => LockType::Read,
                1 => LockType::Write,
                _ => LockType::Unlock,
            };
            let cmd = format!("{} {} {start} {len}", if get { "get" } else { "set" }, kind_str(kind));
            let linux = b.linux(owner, &cmd);
            let ours = if get { b.ours_get(owner, kind, start, len) } else { b.ours_set(owner, kind, start, len) };
            assert_eq!(ours, linux, "seed {seed} step {step}: owner {owner} `{cmd}`");
            compared += 1;
        }
        // Full probe of the final state from every owner's point of view.
        for owner in 0..owners {
            for start in 0..34 {
                for kind in [LockType::Read, LockType::Write] {
                    let cmd = format!("get {} {start} 1", kind_str(kind));
                    assert_eq!(b.ours_get(owner, kind, start, 1), b.linux(owner, &cmd), "seed {seed} probe {owner} `{cmd}`");
                    compared += 1;
                }
            }
        }
    }
    println!("compared {compared} outcomes with Linux");
}

#[test]
fn scripted_rules_match_linux_fcntl() {
    // (owner, command) pairs covering split, merge, upgrade, downgrade, to-EOF.
    let script: &[(usize, &str)] = &[
        (0, "set W 0 100"),
        (0, "set U 40 20"),
        (1, "get R 0 100"),
        (1, "get R 40 100"),
        (1, "set R 40 20"),
        (0, "set R 0 10"),
        (0, "set R 10 10"),
        (1, "get W 0 0"),
        (0, "set W 5 3"),
        (1, "get R 0 0"),
        (1, "set W 200 0"),
        (0, "get R 1000 1"),
        (0, "get R 150 1"),
        (1, "set U 300 0"),
        (0, "get R 1000 1"),
        (0, "get W 250 10"),
        (0, "set U 0 0"),
        (1, "get W 0 0"),
        (0, "get W 0 0"),
        (1, "set R 0 9223372036854775807"),
        (0, "get W 5 1"),
    ];
    let mut b = Both::new(2, "script");
    for &(owner, cmd) in script {
        let w: Vec<&str> = cmd.split_whitespace().collect();
        let kind = match w[1] {
            "R" => LockType::Read,
            "W" => LockType::Write,
            _ => LockType::Unlock,
        };
        let (start, len) = (w[2].parse().unwrap(), w[3].parse().unwrap());
        let ours = if w[0] == "get" { b.ours_get(owner, kind, start, len) } else { b.ours_set(owner, kind, start, len) };
        assert_eq!(ours, b.linux(owner, cmd), "owner {owner} `{cmd}`");
    }
}

/// F_SETLKW deadlock detection, two and three owners, against Linux.
#[test]
fn deadlock_detection_matches_linux() {
    for n in [2usize, 3] {
        let mut b = Both::new(n, &format!("deadlk{n}"));
        let fs = b.fs;
        let ino = b.ino;
        let mut ours_waiters = Vec::new();
        // Owner i holds byte i; owners 0..n-1 wait for byte i+1 in turn.
        for i in 0..n {
            assert_eq!(b.linux(i, &format!("set W {i} 1")), "ok");
            assert_eq!(b.ours_set(i, LockType::Write, i as u64, 1), "ok");
        }
        for i in 0..n - 1 {
            b.procs[i].send(&format!("setw W {} 1", i + 1));
            ours_waiters.push(thread::spawn(move || {
                fs.setlkw(ino, i as Owner, LockRange { start: i as u64 + 1, len: 1 }, LockType::Write, None)
            }));
            thread::sleep(Duration::from_millis(100)); // let both block
        }
        // The last owner closes the cycle.
        let linux = b.linux(n - 1, "setw W 0 1");
        let ours = match fs.setlkw(ino, (n - 1) as Owner, LockRange { start: 0, len: 1 }, LockType::Write, None) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err {}", e.0),
        };
        assert_eq!(ours, linux, "{n}-cycle");
        assert_eq!(ours, format!("err {}", Errno::EDEADLK.0));
        // Unwind: the last owner lets go, the chain is granted back to front.
        assert_eq!(b.linux(n - 1, &format!("set U {} 1", n - 1)), "ok");
        fs.setlk(ino, (n - 1) as Owner, LockRange { start: n as u64 - 1, len: 1 }, LockType::Unlock).unwrap();
        for i in (0..n - 1).rev() {
            assert_eq!(b.procs[i].recv(), "ok");
            assert_eq!(ours_waiters.pop().unwrap().join().unwrap(), Ok(()));
            if i > 0 {
                assert_eq!(b.linux(i, &format!("set U {i} 2")), "ok");
                fs.setlk(ino, i as Owner, LockRange { start: i as u64, len: 2 }, LockType::Unlock).unwrap();
            }
        }
    }
}

/// Non-blocking flock on two open file descriptions per process, and its
/// independence from byte-range locks, against Linux.
#[test]
fn flock_sequences_match_linux() {
    let mut b = Both::new(2, "flock");
    let mut rng = Rng::new(99);
    for step in 0..400 {
        let owner = rng.below(2) as usize;
        let desc = rng.below(2);
        if rng.chance(20) {
            // Interleave range locks: they must not affect flock.
            let kind = if rng.chance(50) { LockType::Write } else { LockType::Unlock };
            let cmd = format!("set {} 0 0", kind_str(kind));
            assert_eq!(b.ours_set(owner, kind, 0, 0), b.linux(owner, &cmd), "step {step} `{cmd}`");
            continue;
        }
        let (op, word) = match rng.below(3) {
            0 => (FlockOp::Shared, "SH"),
            1 => (FlockOp::Exclusive, "EX"),
            _ => (FlockOp::Unlock, "UN"),
        };
        let cmd = format!("flock {desc} {word}");
        let ours = match b.fs.flock(b.ino, owner as u64 * 10 + desc, owner as Owner, op, true) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("err {}", e.0),
        };
        assert_eq!(ours, b.linux(owner, &cmd), "step {step}: owner {owner} `{cmd}`");
    }
}

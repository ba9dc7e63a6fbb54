//! fcntl's byte-range locks: `F_GETLK`, `F_SETLK` and `F_SETLKW` on
//! php.wasm's `struct flock`, which is what SQLite locks its database with.
//! php-wasm's own fcntl answers them with a no-op (which corrupts SQLite
//! under concurrency); here they become shared-fs locks owned by the worker
//! (a process, in POSIX terms).

use crate::errno_abi::fcntl::{F_GETLK, F_RDLCK, F_SETLK, F_SETLKW, F_UNLCK, F_WRLCK};
use crate::errno_abi::flock_struct::{L_LEN, L_PID, L_START, L_TYPE, L_WHENCE, SIZE};
use crate::errno_abi::seek::{SEEK_CUR, SEEK_END, SEEK_SET};
use shared_fs::{Errno, FileSystem, Ino, LockRange, LockType, Owner};

/// The bytes of a `struct flock`, as the caller's memory holds them.
pub type FlockBytes = [u8; SIZE];

/// Whether fcntl command `cmd` is a lock command (answered by `lock`).
pub fn is_lock_command(cmd: i32) -> bool {
    matches!(cmd, F_GETLK | F_SETLK | F_SETLKW)
}

/// What php.wasm's fcntl does for a command other than a lock (the JSPI
/// build hands its own fcntl over as something JS cannot call, so the
/// adapter stands in for it): `arg` is the command's int argument, if any.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OtherCommand {
    /// Return this (0, or a negative Emscripten errno).
    Answer(i32),
    /// Duplicate the descriptor onto the lowest free number from this one.
    Duplicate { lowest: i32 },
    /// Return the description's flags.
    Flags,
    /// Add these to the description's flags, then return 0.
    AddFlags(i32),
}

impl OtherCommand {
    pub fn of(cmd: i32, arg: i32) -> OtherCommand {
        use crate::errno_abi::fcntl::{F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_SETFD, F_SETFL};
        let einval = -crate::errno_abi::emscripten_errno(Errno::EINVAL);
        match cmd {
            F_DUPFD | F_DUPFD_CLOEXEC if arg < 0 => OtherCommand::Answer(einval),
            F_DUPFD | F_DUPFD_CLOEXEC => OtherCommand::Duplicate { lowest: arg },
            // Emscripten has no close-on-exec; locks on private files
            // (nobody else can see them) always succeed.
            F_GETFD | F_SETFD => OtherCommand::Answer(0),
            _ if is_lock_command(cmd) => OtherCommand::Answer(0),
            F_GETFL => OtherCommand::Flags,
            F_SETFL => OtherCommand::AddFlags(arg),
            _ => OtherCommand::Answer(einval),
        }
    }

    /// `[kind, value]` for the adapter: 0 answer, 1 duplicate, 2 flags, 3 add flags.
    pub fn encode(self) -> [i32; 2] {
        match self {
            OtherCommand::Answer(value) => [0, value],
            OtherCommand::Duplicate { lowest } => [1, lowest],
            OtherCommand::Flags => [2, 0],
            OtherCommand::AddFlags(flags) => [3, flags],
        }
    }
}

/// The fields of a `struct flock`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
}

impl Flock {
    pub fn decode(b: &FlockBytes) -> Flock {
        let i16_at = |at: usize| i16::from_le_bytes([b[at], b[at + 1]]);
        let i64_at = |at: usize| i64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        Flock {
            l_type: i16_at(L_TYPE),
            l_whence: i16_at(L_WHENCE),
            l_start: i64_at(L_START),
            l_len: i64_at(L_LEN),
            l_pid: i32::from_le_bytes(b[L_PID..L_PID + 4].try_into().unwrap()),
        }
    }

    pub fn encode(&self, b: &mut FlockBytes) {
        b[L_TYPE..L_TYPE + 2].copy_from_slice(&self.l_type.to_le_bytes());
        b[L_WHENCE..L_WHENCE + 2].copy_from_slice(&self.l_whence.to_le_bytes());
        b[L_START..L_START + 8].copy_from_slice(&self.l_start.to_le_bytes());
        b[L_LEN..L_LEN + 8].copy_from_slice(&self.l_len.to_le_bytes());
        b[L_PID..L_PID + 4].copy_from_slice(&self.l_pid.to_le_bytes());
    }
}

fn set_type(b: &mut FlockBytes, l_type: i16) {
    b[L_TYPE..L_TYPE + 2].copy_from_slice(&l_type.to_le_bytes());
}

/// Runs lock command `cmd` for `owner` on `file` through a descriptor at
/// `position` (for `SEEK_CUR`), with `flock` the caller's struct, which
/// `F_GETLK` rewrites: `l_type` alone (`F_UNLCK`) when the lock could be
/// placed, otherwise the first conflicting lock from `SEEK_SET`, its owner
/// as `l_pid` (worker + 1: a pid is never 0).
///
/// `file` is `None` for a file of the worker's own (php-wasm's private
/// MEMFS): nobody else sees it, so as php-wasm's own fcntl does, every lock
/// is granted and `F_GETLK` finds none, whatever the struct says.
pub fn lock(fs: &FileSystem, owner: Owner, file: Option<Ino>, cmd: i32, position: f64, flock: &mut FlockBytes) -> Result<(), Errno> {
    if !is_lock_command(cmd) {
        return Err(Errno::EINVAL);
    }
    let Some(ino) = file else {
        if cmd == F_GETLK {
            set_type(flock, F_UNLCK);
        }
        return Ok(());
    };
    let request = Flock::decode(flock);
    let range = range(fs, ino, &request, position)?;
    let kind = lock_type(request.l_type)?;
    match cmd {
        F_GETLK => {
            match fs.getlk(ino, owner, range, kind)? {
                Some(c) => Flock {
                    l_type: if c.kind == LockType::Write { F_WRLCK } else { F_RDLCK },
                    l_whence: SEEK_SET as i16,
                    l_start: c.range.start as i64,
                    l_len: c.range.len as i64,
                    l_pid: (c.owner as i32).wrapping_add(1),
                }
                .encode(flock),
                None => set_type(flock, F_UNLCK),
            }
            Ok(())
        }
        F_SETLK => fs.setlk(ino, owner, range, kind),
        _ => fs.setlkw(ino, owner, range, kind, None),
    }
}

/// The absolute byte range `request` names: `l_start` counts from
/// `l_whence`'s origin (byte 0, the descriptor's `position`, or the end of
/// the file); a negative `l_len` covers the `-l_len` bytes before that
/// start; `l_len` 0 means to the end of the file, however it grows.
/// `EINVAL` for another `l_whence` or a range starting before byte 0.
pub fn range(fs: &FileSystem, ino: Ino, request: &Flock, position: f64) -> Result<LockRange, Errno> {
    let origin: i128 = match request.l_whence as i32 {
        SEEK_SET => 0,
        SEEK_CUR => position as i64 as i128,
        SEEK_END => fs.getattr(ino)?.size as i128,
        _ => return Err(Errno::EINVAL),
    };
    let mut start = origin + request.l_start as i128;
    let mut len = request.l_len as i128;
    if len < 0 {
        start += len;
        len = -len;
    }
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    let clamp = |v: i128| v.min(u64::MAX as i128) as u64;
    Ok(LockRange { start: clamp(start), len: clamp(len) })
}

/// `l_type` as a shared-fs lock type; `EINVAL` for anything else.
pub fn lock_type(l_type: i16) -> Result<LockType, Errno> {
    match l_type {
        F_RDLCK => Ok(LockType::Read),
        F_WRLCK => Ok(LockType::Write),
        F_UNLCK => Ok(LockType::Unlock),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn other_commands_answer_as_php_wasm_does() {
        use super::OtherCommand;
        use crate::errno_abi::fcntl::*;
        let einval = -crate::errno_abi::emscripten_errno(shared_fs::Errno::EINVAL);
        assert_eq!(OtherCommand::of(F_DUPFD, 5), OtherCommand::Duplicate { lowest: 5 });
        assert_eq!(OtherCommand::of(F_DUPFD_CLOEXEC, 0), OtherCommand::Duplicate { lowest: 0 });
        assert_eq!(OtherCommand::of(F_DUPFD, -1), OtherCommand::Answer(einval));
        assert_eq!(OtherCommand::of(F_GETFD, 0), OtherCommand::Answer(0));
        assert_eq!(OtherCommand::of(F_SETFD, 1), OtherCommand::Answer(0));
        assert_eq!(OtherCommand::of(F_SETLKW, 0), OtherCommand::Answer(0), "a lock on a private file");
        assert_eq!(OtherCommand::of(F_GETFL, 0), OtherCommand::Flags);
        assert_eq!(OtherCommand::of(F_SETFL, 0o2000), OtherCommand::AddFlags(0o2000));
        assert_eq!(OtherCommand::of(9999, 0), OtherCommand::Answer(einval));
    }


    use super::*;
    use crate::mount::test_fs;

    fn bytes(l_type: i16, l_whence: i32, l_start: i64, l_len: i64) -> FlockBytes {
        let mut b = [0xAA; SIZE];
        Flock { l_type, l_whence: l_whence as i16, l_start, l_len, l_pid: 0 }.encode(&mut b);
        b
    }

    fn file_of(fs: &FileSystem, size: usize) -> Ino {
        let ino = fs.create(FileSystem::ROOT, b"db", 0o644, 0, 0).unwrap().ino;
        fs.write(ino, 0, &vec![7; size]).unwrap();
        ino
    }

    fn range_of(fs: &FileSystem, ino: Ino, whence: i32, start: i64, len: i64, position: f64) -> Result<LockRange, Errno> {
        range(fs, ino, &Flock::decode(&bytes(F_WRLCK, whence, start, len)), position)
    }

    #[test]
    fn the_struct_round_trips_in_php_wasm_layout() {
        let b = bytes(F_WRLCK, SEEK_END, -3, 1 << 40);
        assert_eq!(&b[0..4], &[1, 0, 2, 0]);
        assert_eq!(&b[8..16], &(-3i64).to_le_bytes());
        assert_eq!(&b[16..24], &(1i64 << 40).to_le_bytes());
        assert_eq!(Flock::decode(&b), Flock { l_type: F_WRLCK, l_whence: SEEK_END as i16, l_start: -3, l_len: 1 << 40, l_pid: 0 });
    }

    #[test]
    fn whence_counts_from_the_start_the_position_or_the_end() {
        let fs = test_fs();
        let ino = file_of(&fs, 100);
        assert_eq!(range_of(&fs, ino, SEEK_SET, 10, 5, 40.0), Ok(LockRange { start: 10, len: 5 }));
        assert_eq!(range_of(&fs, ino, SEEK_CUR, 10, 5, 40.0), Ok(LockRange { start: 50, len: 5 }));
        assert_eq!(range_of(&fs, ino, SEEK_CUR, -40, 0, 40.0), Ok(LockRange { start: 0, len: 0 }));
        assert_eq!(range_of(&fs, ino, SEEK_END, 0, 0, 40.0), Ok(LockRange { start: 100, len: 0 }));
        assert_eq!(range_of(&fs, ino, SEEK_END, -10, 10, 0.0), Ok(LockRange { start: 90, len: 10 }));
        // The end is the file's size now, as another worker left it.
        fs.write(ino, 100, &[1; 28]).unwrap();
        assert_eq!(range_of(&fs, ino, SEEK_END, 2, 1, 0.0), Ok(LockRange { start: 130, len: 1 }));
    }

    #[test]
    fn a_negative_length_covers_the_bytes_before_the_start() {
        let fs = test_fs();
        let ino = file_of(&fs, 100);
        assert_eq!(range_of(&fs, ino, SEEK_SET, 10, -4, 0.0), Ok(LockRange { start: 6, len: 4 }));
        assert_eq!(range_of(&fs, ino, SEEK_SET, 10, -10, 0.0), Ok(LockRange { start: 0, len: 10 }));
        assert_eq!(range_of(&fs, ino, SEEK_END, 0, -100, 0.0), Ok(LockRange { start: 0, len: 100 }));
        assert_eq!(range_of(&fs, ino, SEEK_CUR, 0, -5, 20.0), Ok(LockRange { start: 15, len: 5 }));
    }

    #[test]
    fn a_range_before_byte_0_or_an_unknown_whence_is_einval() {
        let fs = test_fs();
        let ino = file_of(&fs, 100);
        assert_eq!(range_of(&fs, ino, SEEK_SET, -1, 5, 0.0), Err(Errno::EINVAL));
        assert_eq!(range_of(&fs, ino, SEEK_SET, 3, -4, 0.0), Err(Errno::EINVAL));
        assert_eq!(range_of(&fs, ino, SEEK_CUR, -11, 1, 10.0), Err(Errno::EINVAL));
        assert_eq!(range_of(&fs, ino, SEEK_END, -101, 1, 0.0), Err(Errno::EINVAL));
        assert_eq!(range_of(&fs, ino, 3, 0, 0, 0.0), Err(Errno::EINVAL));
        assert_eq!(range_of(&fs, ino, -1, 0, 0, 0.0), Err(Errno::EINVAL));
        // Through `lock`, nothing is placed and the struct is left alone.
        let mut b = bytes(F_WRLCK, SEEK_SET, 3, -4);
        let before = b;
        assert_eq!(lock(&fs, 0, Some(ino), F_SETLK, 0.0, &mut b), Err(Errno::EINVAL));
        assert_eq!(b, before);
        assert!(fs.lock_table().is_empty());
        let mut b = bytes(9, SEEK_SET, 0, 0);
        assert_eq!(lock(&fs, 0, Some(ino), F_SETLK, 0.0, &mut b), Err(Errno::EINVAL), "unknown l_type");
        let not_a_lock = crate::errno_abi::fcntl::F_GETFL;
        assert_eq!(lock(&fs, 0, Some(ino), not_a_lock, 0.0, &mut b), Err(Errno::EINVAL));
        assert_eq!(lock(&fs, 0, None, not_a_lock, 0.0, &mut b), Err(Errno::EINVAL));
    }

    #[test]
    fn f_getlk_reports_the_conflicting_lock_with_its_worker_as_pid() {
        let fs = test_fs();
        let ino = file_of(&fs, 100);
        // Worker 2 write-locks bytes 10..30, expressed from the end.
        let mut held = bytes(F_WRLCK, SEEK_END, -90, 20);
        lock(&fs, 2, Some(ino), F_SETLK, 0.0, &mut held).unwrap();

        // Worker 0 asks about a read lock on 0..16 from its position 5.
        let mut ask = bytes(F_RDLCK, SEEK_CUR, -5, 16);
        ask[L_PID..L_PID + 4].copy_from_slice(&77i32.to_le_bytes());
        lock(&fs, 0, Some(ino), F_GETLK, 5.0, &mut ask).unwrap();
        assert_eq!(Flock::decode(&ask), Flock { l_type: F_WRLCK, l_whence: SEEK_SET as i16, l_start: 10, l_len: 20, l_pid: 3 });
        assert_eq!(&ask[4..8], &[0xAA; 4], "padding untouched");

        // Its own lock never conflicts with itself; a free range leaves all but l_type alone.
        let mut own = bytes(F_WRLCK, SEEK_SET, 10, 20);
        lock(&fs, 2, Some(ino), F_GETLK, 0.0, &mut own).unwrap();
        assert_eq!(own, bytes(F_UNLCK, SEEK_SET, 10, 20));
        let mut free = bytes(F_WRLCK, SEEK_CUR, 0, 0);
        lock(&fs, 0, Some(ino), F_GETLK, 30.0, &mut free).unwrap();
        assert_eq!(Flock::decode(&free).l_type, F_UNLCK);
        assert_eq!(Flock::decode(&free).l_whence, SEEK_CUR as i16, "only l_type rewritten");

        // A shared lock held by worker 1 is reported as F_RDLCK to a writer.
        let mut read = bytes(F_RDLCK, SEEK_SET, 50, 0);
        lock(&fs, 1, Some(ino), F_SETLK, 0.0, &mut read).unwrap();
        let mut ask = bytes(F_WRLCK, SEEK_SET, 60, 1);
        lock(&fs, 0, Some(ino), F_GETLK, 0.0, &mut ask).unwrap();
        assert_eq!(Flock::decode(&ask), Flock { l_type: F_RDLCK, l_whence: 0, l_start: 50, l_len: 0, l_pid: 2 });
    }

    #[test]
    fn f_setlk_conflicts_with_eagain_and_unlock_frees() {
        let fs = test_fs();
        let ino = file_of(&fs, 10);
        let mut w = bytes(F_WRLCK, SEEK_SET, 0, 0);
        lock(&fs, 0, Some(ino), F_SETLK, 0.0, &mut w).unwrap();
        let mut other = bytes(F_RDLCK, SEEK_SET, 5, 1);
        assert_eq!(lock(&fs, 1, Some(ino), F_SETLK, 0.0, &mut other), Err(Errno::EAGAIN));
        let mut un = bytes(F_UNLCK, SEEK_SET, 0, 0);
        lock(&fs, 0, Some(ino), F_SETLK, 0.0, &mut un).unwrap();
        lock(&fs, 1, Some(ino), F_SETLKW, 0.0, &mut other).unwrap();
        assert_eq!(fs.lock_table().len(), 1);
    }

    #[test]
    fn f_setlkw_waits_for_the_other_worker() {
        let fs = std::sync::Arc::new(test_fs());
        let ino = file_of(&fs, 10);
        let mut w = bytes(F_WRLCK, SEEK_SET, 0, 0);
        lock(&fs, 0, Some(ino), F_SETLK, 0.0, &mut w).unwrap();
        let waiter = {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let mut b = bytes(F_WRLCK, SEEK_SET, 0, 1);
                lock(&fs, 1, Some(ino), F_SETLKW, 0.0, &mut b)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished());
        fs.close_release(ino, 0);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn a_private_file_grants_everything_and_reports_no_lock() {
        let fs = test_fs();
        let mut b = bytes(F_WRLCK, 7, -100, -5);
        let mut expected = b;
        assert_eq!(lock(&fs, 0, None, F_SETLKW, 0.0, &mut b), Ok(()));
        assert_eq!(b, expected);
        lock(&fs, 0, None, F_GETLK, 0.0, &mut b).unwrap();
        expected[..2].copy_from_slice(&F_UNLCK.to_le_bytes());
        assert_eq!(b, expected);
    }
}

//! php.wasm's ABI, in one place: its libc is musl compiled by Emscripten,
//! with Emscripten's own errno numbering, fixed at compile time into
//! php.wasm. shared-fs speaks Linux errno numbers; the mount adapter throws
//! `FS.ErrnoError(emscripten_errno(e))` or returns `-emscripten_errno(e)`.
//! The adapter (`src-js/shared-fs-mount.js`) gets what it needs of this
//! file from `adapter_abi` (fs_calls.rs), never from numbers of its own.

use shared_fs::Errno;

/// Emscripten's number for a shared-fs error; EIO for anything unmapped.
pub fn emscripten_errno(e: Errno) -> i32 {
    match e.name() {
        "EPERM" => 63,
        "ENOENT" => 44,
        "EINTR" => 27,
        "EIO" => 29,
        "EBADF" => 8,
        "EAGAIN" => 6,
        "ENOMEM" => 48,
        "EACCES" => 2,
        "EBUSY" => 10,
        "EEXIST" => 20,
        "EXDEV" => 75,
        "ENOTDIR" => 54,
        "EISDIR" => 31,
        "EINVAL" => 28,
        "ENFILE" => 41,
        "EFBIG" => 22,
        "ENOSPC" => 51,
        "EROFS" => 69,
        "EMLINK" => 34,
        "ERANGE" => 68,
        "EDEADLK" => 16,
        "ENAMETOOLONG" => 37,
        "ENOLCK" => 46,
        "ENOSYS" => 52,
        "ENOTEMPTY" => 55,
        "ELOOP" => 32,
        "EOVERFLOW" => 61,
        "EOPNOTSUPP" => 138,
        "ETIMEDOUT" => 73,
        "ESTALE" => 72,
        _ => 29,
    }
}

/// `fcntl(2)` commands and `l_type` values of php.wasm's musl (its
/// `F_GETLK` is musl's 64-bit-offset one).
pub mod fcntl {
    pub const F_DUPFD: i32 = 0;
    pub const F_GETFD: i32 = 1;
    pub const F_SETFD: i32 = 2;
    pub const F_GETFL: i32 = 3;
    pub const F_SETFL: i32 = 4;
    pub const F_GETLK: i32 = 12;
    pub const F_SETLK: i32 = 13;
    pub const F_SETLKW: i32 = 14;
    pub const F_DUPFD_CLOEXEC: i32 = 1030;

    pub const F_RDLCK: i16 = 0;
    pub const F_WRLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
}

/// `lseek(2)` / `l_whence`.
pub mod seek {
    pub const SEEK_SET: i32 = 0;
    pub const SEEK_CUR: i32 = 1;
    pub const SEEK_END: i32 = 2;
}

/// The operations of PHP's `flock()` (PHP's own constants, which its
/// flock() maps to libc's: `LOCK_UN` is 3 here, 8 in libc): the action is
/// `operation & 3`, `LOCK_NB` a flag beside it.
pub mod php_flock {
    pub const LOCK_SH: u32 = 1;
    pub const LOCK_EX: u32 = 2;
    pub const LOCK_UN: u32 = 3;
    pub const LOCK_NB: u32 = 4;
}

/// `struct flock` (musl, wasm32): `short l_type, l_whence; off_t l_start,
/// l_len; pid_t l_pid`, 8-byte aligned; little-endian.
pub mod flock_struct {
    pub const SIZE: usize = 32;
    pub const L_TYPE: usize = 0;
    pub const L_WHENCE: usize = 2;
    pub const L_START: usize = 8;
    pub const L_LEN: usize = 16;
    pub const L_PID: usize = 24;
}

/// The records Emscripten's `getdents64` writes: `struct dirent64` (musl,
/// wasm32: `u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char
/// d_name[256]`), every record the same size; `d_off` and the directory
/// stream's position count in records of that size.
pub mod dirent {
    pub const SIZE: usize = 280;
    pub const D_INO: usize = 0;
    pub const D_OFF: usize = 8;
    pub const D_RECLEN: usize = 16;
    pub const D_TYPE: usize = 18;
    pub const D_NAME: usize = 19;
    /// `d_name`'s room, its NUL included.
    pub const NAME_ROOM: usize = 256;

    pub const DT_CHR: u8 = 2;
    pub const DT_DIR: u8 = 4;
    pub const DT_REG: u8 = 8;
    pub const DT_LNK: u8 = 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errors_map_to_emscripten_numbers() {
        assert_eq!(emscripten_errno(Errno::ENOENT), 44);
        assert_eq!(emscripten_errno(Errno::EEXIST), 20);
        assert_eq!(emscripten_errno(Errno::ENOTEMPTY), 55);
        assert_eq!(emscripten_errno(Errno::ENOSPC), 51);
        assert_eq!(emscripten_errno(Errno::EWOULDBLOCK), 6);
        assert_eq!(emscripten_errno(Errno(9999)), 29);
    }

    #[test]
    fn every_shared_fs_errno_has_its_own_emscripten_number() {
        let mut seen = std::collections::HashMap::new();
        for n in 1..200 {
            let e = Errno(n);
            if e.name() == "E?" {
                continue;
            }
            let number = emscripten_errno(e);
            assert!(number != 29 || e == Errno::EIO, "{} is not mapped", e.name());
            assert_eq!(seen.insert(number, e.name()), None, "{} shares {number}", e.name());
        }
    }
}

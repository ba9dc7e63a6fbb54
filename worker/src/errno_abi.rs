//! shared-fs speaks Linux errno numbers; php.wasm's libc (Emscripten) uses
//! its own numbering, fixed at compile time into php.wasm. The mount adapter
//! throws `FS.ErrnoError(emscripten_errno(e))`.

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
        "EMFILE" => 33,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errors_map_to_emscripten_numbers() {
        assert_eq!(emscripten_errno(Errno::ENOENT), 44);
        assert_eq!(emscripten_errno(Errno::EEXIST), 20);
        assert_eq!(emscripten_errno(Errno::ENOTEMPTY), 55);
        assert_eq!(emscripten_errno(Errno::ENOSPC), 51);
        assert_eq!(emscripten_errno(Errno(9999)), 29);
    }
}

//! Rules for single names (path components).

use crate::errno::{Errno, Result};

/// Longest name, as Linux `NAME_MAX`.
pub const NAME_MAX: usize = 255;
/// Longest path including its terminating NUL, as Linux `PATH_MAX`; so a
/// path of `PATH_MAX` bytes or more is `ENAMETOOLONG`.
pub const PATH_MAX: usize = 4096;

/// Checks one component: empty is `ENOENT`, too long `ENAMETOOLONG`, and a
/// `/` or NUL inside (impossible through a path) `EINVAL`.
pub(crate) fn check_component(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

pub(crate) fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

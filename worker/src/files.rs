//! Whole-file helpers over shared-fs paths, for jobs, archives and site
//! installs (PHP itself goes through the mount adapter instead).

use shared_fs::oflags::{O_CREAT, O_TRUNC, O_WRONLY};
use shared_fs::{Errno, FileSystem};

pub fn read_file(fs: &FileSystem, path: &str) -> Result<Vec<u8>, Errno> {
    let attr = fs.open_path(FileSystem::ROOT, path.as_bytes(), 0, 0)?;
    let mut data = vec![0u8; attr.size as usize];
    let read = fs.read(attr.ino, 0, &mut data);
    fs.release(attr.ino);
    data.truncate(read?);
    Ok(data)
}

/// Creates or replaces `path` with `data`; `mode` applies to a new file.
pub fn write_file(fs: &FileSystem, path: &str, data: &[u8], mode: Option<u32>) -> Result<(), Errno> {
    let attr = fs.open_path(FileSystem::ROOT, path.as_bytes(), O_WRONLY | O_CREAT | O_TRUNC, mode.unwrap_or(0o644))?;
    let written = fs.write(attr.ino, 0, data);
    fs.release(attr.ino);
    match written? {
        n if n == data.len() => Ok(()),
        _ => Err(Errno::ENOSPC),
    }
}

/// `mv from to`.
pub fn rename_path(fs: &FileSystem, from: &str, to: &str) -> Result<(), Errno> {
    let (dir, name) = fs.resolve_parent(FileSystem::ROOT, from.as_bytes())?;
    let (new_dir, new_name) = fs.resolve_parent(FileSystem::ROOT, to.as_bytes())?;
    fs.rename(dir, &name, new_dir, &new_name)
}

/// `rm -r path` (a symlink itself, never what it points to).
pub fn remove_all(fs: &FileSystem, path: &str) -> Result<(), Errno> {
    let (dir, name) = fs.resolve_parent(FileSystem::ROOT, path.as_bytes())?;
    crate::jobs::remove_tree(fs, dir, &name)
}

/// `mkdir -p` (a path's bytes need not be UTF-8).
pub fn mkdir_all(fs: &FileSystem, path: impl AsRef<[u8]>) -> Result<(), Errno> {
    let mut dir = FileSystem::ROOT;
    for name in path.as_ref().split(|&b| b == b'/').filter(|n| !n.is_empty()) {
        dir = match fs.lookup(dir, name) {
            Ok(attr) => attr.ino,
            Err(Errno::ENOENT) => match fs.mkdir(dir, name, 0o755, 0, 0) {
                Ok(attr) => attr.ino,
                // Another worker made it between our lookup and mkdir.
                Err(Errno::EEXIST) => fs.lookup(dir, name)?.ino,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

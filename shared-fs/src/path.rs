//! Path resolution and `open(2)`-style opening.
//!
//! Paths are byte strings, absolute or relative to a directory `cwd`.
//! Symlinks are followed like Linux does: at most `MAX_SYMLINK_HOPS` per
//! resolution (else `ELOOP`), a trailing slash requires a directory and
//! forces following the last symlink, and ".." is physical (the parent of
//! the directory actually reached). No permission checks are made.

use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::names::{check_component, is_dot_or_dotdot, NAME_MAX, PATH_MAX};
use crate::types::oflags::*;
use crate::types::{Attr, FileKind, Ino, SetAttr};

/// Linux `MAXSYMLINKS`.
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// Lost races in `open_path` (the file vanished between lookup and pin)
/// before giving up.
const OPEN_RETRIES: usize = 100;

impl FileSystem {
    /// Resolves `path` to an inode; `follow_last` decides whether a final
    /// symlink is followed (a trailing slash always follows).
    pub fn resolve(&self, cwd: Ino, path: &[u8], follow_last: bool) -> Result<Attr> {
        let mut hops = 0;
        self.walk(cwd, path, follow_last, &mut hops)
    }

    /// Resolves all but the last component and returns (directory, last
    /// name). Trailing slashes are ignored; a path with no last component
    /// ("/") yields (root, "."), so creating it fails with `EEXIST`.
    pub fn resolve_parent(&self, cwd: Ino, path: &[u8]) -> Result<(Ino, Vec<u8>)> {
        let mut hops = 0;
        self.walk_parent(cwd, path, &mut hops)
    }

    /// Opens like `openat(cwd, path, flags, mode)` and pins the result (the
    /// caller later calls `release(attr.ino)`). A created file gets
    /// `mode & 0o7777` and uid/gid 0 (no umask: the caller applies it).
    /// The access mode is only used to refuse writing a directory; no
    /// permission checks are made.
    pub fn open_path(&self, cwd: Ino, path: &[u8], flags: u32, mode: u32) -> Result<Attr> {
        check_path(path)?;
        if flags & O_CREAT != 0 && flags & O_DIRECTORY != 0 {
            return Err(Errno::EINVAL); // as Linux 6.4+
        }
        let write_access = flags & O_ACCMODE != O_RDONLY;
        for _ in 0..OPEN_RETRIES {
            let (attr, created) = if flags & O_CREAT != 0 {
                if path.ends_with(b"/") {
                    // As Linux: errors of the directory part come first,
                    // and "./" or "../" exist (so O_EXCL says EEXIST).
                    let (_, last) = self.resolve_parent(cwd, path)?;
                    if !is_dot_or_dotdot(&last) {
                        return Err(Errno::EISDIR);
                    }
                }
                self.create_or_find(cwd, path, flags, mode)?
            } else {
                (self.resolve(cwd, path, flags & O_NOFOLLOW == 0)?, false)
            };
            match attr.kind {
                FileKind::Dir if write_access || flags & (O_CREAT | O_TRUNC) != 0 => return Err(Errno::EISDIR),
                FileKind::Dir => {}
                // O_DIRECTORY is checked before O_NOFOLLOW's ELOOP, as Linux.
                _ if flags & O_DIRECTORY != 0 => return Err(Errno::ENOTDIR),
                FileKind::Symlink => return Err(Errno::ELOOP), // only reached with O_NOFOLLOW
                _ => {}
            }
            match self.open(attr.ino) {
                Ok(()) => {}
                Err(Errno::ENOENT) => continue, // removed after lookup: resolve again
                Err(e) => return Err(e),
            }
            if flags & O_TRUNC != 0 && !created && attr.kind == FileKind::File {
                let truncate = SetAttr { size: Some(0), ..SetAttr::default() };
                match self.setattr(attr.ino, &truncate) {
                    Ok(attr) => return Ok(attr),
                    Err(e) => {
                        self.release(attr.ino);
                        return Err(e);
                    }
                }
            }
            return self.getattr(attr.ino).inspect_err(|_| self.release(attr.ino));
        }
        Err(Errno::EAGAIN)
    }

    /// The `O_CREAT` part of open: returns the attributes and whether this
    /// call created the file. A final symlink is followed (and its target
    /// created if missing), as Linux does, unless `O_EXCL` or `O_NOFOLLOW`.
    fn create_or_find(&self, cwd: Ino, path: &[u8], flags: u32, mode: u32) -> Result<(Attr, bool)> {
        let mut hops = 0;
        let (mut dir, mut name) = self.walk_parent(cwd, path, &mut hops)?;
        for _ in 0..OPEN_RETRIES {
            match self.lookup(dir, &name) {
                Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
                Ok(attr) if attr.kind == FileKind::Symlink && flags & O_NOFOLLOW == 0 => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::ELOOP);
                    }
                    let target = self.readlink(attr.ino)?;
                    if target.ends_with(b"/") {
                        // Errors of the target's directory part come first.
                        self.walk_parent(dir, &target, &mut hops)?;
                        return Err(Errno::EISDIR);
                    }
                    (dir, name) = self.walk_parent(dir, &target, &mut hops)?;
                }
                Ok(attr) => return Ok((attr, false)),
                Err(Errno::ENOENT) => match self.create(dir, &name, mode, 0, 0) {
                    Ok(attr) => return Ok((attr, true)),
                    Err(Errno::EEXIST) => continue, // lost a race with another creator
                    Err(e) => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        Err(Errno::EAGAIN)
    }

    fn walk_parent(&self, cwd: Ino, path: &[u8], hops: &mut u32) -> Result<(Ino, Vec<u8>)> {
        check_path(path)?;
        let trimmed = trim_trailing_slashes(path);
        let (dir_part, last) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        if last.is_empty() {
            return Ok((Self::ROOT, b".".to_vec())); // the path was all slashes
        }
        check_component(last)?;
        let dir = if dir_part.is_empty() {
            self.dir_inode(cwd)?.ino
        } else {
            let attr = self.walk(cwd, dir_part, true, hops)?;
            if attr.kind != FileKind::Dir {
                return Err(Errno::ENOTDIR);
            }
            attr.ino
        };
        Ok((dir, last.to_vec()))
    }

    fn walk(&self, cwd: Ino, path: &[u8], follow_last: bool, hops: &mut u32) -> Result<Attr> {
        check_path(path)?;
        let must_be_dir = path.ends_with(b"/");
        let follow_last = follow_last || must_be_dir;
        let mut dir = if path.starts_with(b"/") { Self::ROOT } else { self.dir_inode(cwd)?.ino };
        // Components still to walk, in reverse; symlink targets are spliced in.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        push_components(&mut pending, path)?;
        let mut last: Option<Attr> = None;
        while let Some(name) = pending.pop() {
            let is_last = pending.is_empty();
            let attr = self.lookup(dir, &name)?;
            match attr.kind {
                FileKind::Symlink if !is_last || follow_last => {
                    *hops += 1;
                    if *hops > MAX_SYMLINK_HOPS {
                        return Err(Errno::ELOOP);
                    }
                    let target = self.readlink(attr.ino)?;
                    if target.starts_with(b"/") {
                        dir = Self::ROOT;
                    }
                    if target.ends_with(b"/") {
                        // A target ending in "/" must name a directory:
                        // walking "." after it demands one (else ENOTDIR).
                        pending.push(b".".to_vec());
                    }
                    if push_components(&mut pending, &target)? == 0 {
                        last = None; // target "/" names the directory itself
                    }
                    continue;
                }
                FileKind::Dir => dir = attr.ino,
                _ if !is_last => return Err(Errno::ENOTDIR),
                _ => {}
            }
            last = Some(attr);
        }
        let attr = match last {
            Some(attr) => attr,
            None => self.getattr(dir)?,
        };
        if must_be_dir && attr.kind != FileKind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(attr)
    }
}

fn check_path(path: &[u8]) -> Result<()> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &path[..end]
}

/// Pushes the components of `path` onto the stack so that the first is on
/// top; skips empty ones (repeated slashes). "." stays, so that "file/."
/// fails with `ENOTDIR`. Returns how many were pushed.
fn push_components(stack: &mut Vec<Vec<u8>>, path: &[u8]) -> Result<usize> {
    let before = stack.len();
    for comp in path.split(|&b| b == b'/').rev() {
        if comp.is_empty() {
            continue;
        }
        if comp.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        stack.push(comp.to_vec());
    }
    Ok(stack.len() - before)
}

//! Resolving paths under the mount in one call instead of one lookup per
//! component (`FS.lookupPath`), and where `llseek` puts a descriptor.

use crate::errno_abi::seek::{SEEK_CUR, SEEK_END, SEEK_SET};
use shared_fs::{Attr, Errno, FileKind, FileSystem, Ino};

/// What Emscripten asked `FS.lookupPath` for.
#[derive(Copy, Clone, Debug, Default)]
pub struct WalkOptions {
    /// Resolve the path's directory, not its last component.
    pub parent: bool,
    /// Follow a symlink in the last component.
    pub follow: bool,
    /// A missing last component is an answer (a path, no node), not ENOENT.
    pub noent_okay: bool,
}

/// How a walk ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Left to Emscripten's own walk, so its rules stay the only ones for
    /// what is unusual here: `.` or `..`, a symlink on the way, or no
    /// component to walk (the mount point itself).
    Emscripten,
    /// The first `n` components were all found (`found` got each).
    Found(usize),
    /// The first `n` components name a missing last one in an existing
    /// directory (`noent_okay` only): the answer is a path without a node.
    MissingLast(usize),
}

/// Walks `path` (components separated by `/`, relative to directory
/// `start`) as `FS.lookupPath` with `opts` would, calling `found` with each
/// component's index and attributes in turn. Errors are lookup's (ENOTDIR,
/// ENOENT, ...) but for a missing last component with `noent_okay`.
pub fn walk(fs: &FileSystem, start: Ino, path: &str, opts: WalkOptions, found: &mut dyn FnMut(usize, &Attr)) -> Result<Walk, Errno> {
    let components = path.split('/').filter(|c| !c.is_empty());
    if components.clone().any(|c| c == "." || c == "..") {
        return Ok(Walk::Emscripten);
    }
    let n = match components.clone().count().checked_sub(opts.parent as usize) {
        Some(n) if n > 0 => n,
        _ => return Ok(Walk::Emscripten),
    };
    let mut dir = start;
    for (i, name) in components.take(n).enumerate() {
        // The path's last component; with `parent`, every walked one is on
        // the way (Emscripten stops before the last, so it follows a
        // symlink naming the directory, and only the last may be missing).
        let last = i + 1 == n && !opts.parent;
        let attr = match fs.lookup(dir, name.as_bytes()) {
            Ok(a) => a,
            Err(Errno::ENOENT) if last && opts.noent_okay => return Ok(Walk::MissingLast(n)),
            Err(e) => return Err(e),
        };
        if attr.kind == FileKind::Symlink && (!last || opts.follow) {
            return Ok(Walk::Emscripten);
        }
        found(i, &attr);
        dir = attr.ino;
    }
    Ok(Walk::Found(n))
}

/// Where `llseek(offset, whence)` puts a descriptor of `ino` now at
/// `position`: `offset` from the start, from `position` or from the end
/// of the file (its size now, whoever wrote last); EINVAL before byte 0 or
/// for another `whence`.
pub fn seek(fs: &FileSystem, ino: Ino, offset: f64, whence: i32, position: f64) -> Result<f64, Errno> {
    let at = match whence {
        SEEK_SET => offset,
        SEEK_CUR => offset + position,
        SEEK_END => offset + fs.getattr(ino)?.size as f64,
        _ => return Err(Errno::EINVAL),
    };
    if at < 0.0 {
        return Err(Errno::EINVAL);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::test_fs;

    /// `/a/b/file`, `/a/link -> b` and `/a/b/dangling -> nowhere`.
    fn tree() -> (FileSystem, Ino, Ino, Ino) {
        let fs = test_fs();
        let a = fs.mkdir(FileSystem::ROOT, b"a", 0o755, 0, 0).unwrap().ino;
        let b = fs.mkdir(a, b"b", 0o755, 0, 0).unwrap().ino;
        let file = fs.create(b, b"file", 0o644, 0, 0).unwrap().ino;
        fs.symlink(a, b"link", b"b", 0, 0).unwrap();
        fs.symlink(b, b"dangling", b"nowhere", 0, 0).unwrap();
        (fs, a, b, file)
    }

    /// Each component found: (index, inode, mode).
    type Seen = Vec<(usize, Ino, u32)>;

    fn run(fs: &FileSystem, path: &str, opts: WalkOptions) -> (Result<Walk, Errno>, Seen) {
        let mut seen = Vec::new();
        let walk = walk(fs, FileSystem::ROOT, path, opts, &mut |i, a| seen.push((i, a.ino, a.mode)));
        (walk, seen)
    }

    const PLAIN: WalkOptions = WalkOptions { parent: false, follow: false, noent_okay: false };
    const FOLLOW: WalkOptions = WalkOptions { follow: true, ..PLAIN };
    const PARENT: WalkOptions = WalkOptions { parent: true, ..PLAIN };
    const NOENT_OKAY: WalkOptions = WalkOptions { noent_okay: true, ..PLAIN };

    #[test]
    fn walks_every_component_with_its_inode_and_mode() {
        let (fs, a, b, file) = tree();
        let (walk, seen) = run(&fs, "a//b/file/", FOLLOW);
        assert_eq!(walk, Ok(Walk::Found(3)));
        assert_eq!(seen, [(0, a, 0o040755), (1, b, 0o040755), (2, file, 0o100644)]);
    }

    #[test]
    fn dot_dotdot_and_nothing_to_walk_are_left_to_emscripten() {
        let (fs, ..) = tree();
        for path in ["a/./b", "a/b/..", "..", "", "/", "//"] {
            assert_eq!(run(&fs, path, FOLLOW), (Ok(Walk::Emscripten), vec![]), "{path:?}");
        }
        // The mount point's own entries, as a parent: nothing to walk either.
        assert_eq!(run(&fs, "a", PARENT), (Ok(Walk::Emscripten), vec![]));
        assert_eq!(run(&fs, "", PARENT).0, Ok(Walk::Emscripten));
    }

    #[test]
    fn parent_walks_all_but_the_last_component() {
        let (fs, a, b, _) = tree();
        let (walk, seen) = run(&fs, "a/b/new-file", PARENT);
        assert_eq!(walk, Ok(Walk::Found(2)));
        assert_eq!(seen, [(0, a, 0o040755), (1, b, 0o040755)]);
        // The last component need not exist, nor be anything.
        assert_eq!(run(&fs, "a/b/dangling", PARENT).0, Ok(Walk::Found(2)));
        // A symlink naming the directory is followed (by Emscripten), as
        // creating `a/link/new` must create it in `a/b`.
        assert_eq!(run(&fs, "a/link/new", PARENT).0, Ok(Walk::Emscripten));
        assert_eq!(run(&fs, "a/b/dangling/x", PARENT).0, Ok(Walk::Emscripten));
    }

    #[test]
    fn symlinks_are_left_to_emscripten_unless_last_and_not_followed() {
        let (fs, a, ..) = tree();
        assert_eq!(run(&fs, "a/link/file", PLAIN).0, Ok(Walk::Emscripten), "on the way");
        assert_eq!(run(&fs, "a/link", FOLLOW).0, Ok(Walk::Emscripten), "last, followed");
        let (walk, seen) = run(&fs, "a/link", PLAIN);
        assert_eq!(walk, Ok(Walk::Found(2)), "last, not followed (lstat, readlink, unlink)");
        assert_eq!(seen[1].2 & shared_fs::S_IFMT, shared_fs::S_IFLNK);
        assert_eq!(seen[0].1, a);
    }

    #[test]
    fn a_missing_last_component_is_enoent_or_a_path_without_node() {
        let (fs, a, b, _) = tree();
        assert_eq!(run(&fs, "a/b/missing", FOLLOW).0, Err(Errno::ENOENT));
        let (walk, seen) = run(&fs, "a/b/missing", NOENT_OKAY);
        assert_eq!(walk, Ok(Walk::MissingLast(3)));
        assert_eq!(seen, [(0, a, 0o040755), (1, b, 0o040755)]);
        // With parent, a missing directory is an error whatever noent_okay says.
        assert_eq!(run(&fs, "a/gone/x", WalkOptions { parent: true, noent_okay: true, ..PLAIN }).0, Err(Errno::ENOENT));
        assert_eq!(run(&fs, "a/gone/x", PARENT).0, Err(Errno::ENOENT));
    }

    #[test]
    fn errors_on_the_way_are_lookups_errors() {
        let (fs, ..) = tree();
        assert_eq!(run(&fs, "a/missing/x", NOENT_OKAY).0, Err(Errno::ENOENT), "only the last may be missing");
        assert_eq!(run(&fs, "a/b/file/x", NOENT_OKAY).0, Err(Errno::ENOTDIR));
        let long = format!("a/{}", "n".repeat(300));
        assert_eq!(run(&fs, &long, NOENT_OKAY).0, Err(Errno::ENAMETOOLONG));
    }

    #[test]
    fn seek_from_the_start_the_position_or_the_current_end() {
        let (fs, _, _, file) = tree();
        fs.write(file, 0, &[1; 100]).unwrap();
        assert_eq!(seek(&fs, file, 7.0, SEEK_SET, 50.0), Ok(7.0));
        assert_eq!(seek(&fs, file, 7.0, SEEK_CUR, 50.0), Ok(57.0));
        assert_eq!(seek(&fs, file, -50.0, SEEK_CUR, 50.0), Ok(0.0));
        assert_eq!(seek(&fs, file, -5.0, SEEK_END, 0.0), Ok(95.0));
        assert_eq!(seek(&fs, file, 10.0, SEEK_END, 0.0), Ok(110.0), "past the end is fine");
        fs.write(file, 100, &[2; 20]).unwrap();
        assert_eq!(seek(&fs, file, 0.0, SEEK_END, 0.0), Ok(120.0), "another worker's write counts");
        assert_eq!(seek(&fs, file, -1.0, SEEK_SET, 50.0), Err(Errno::EINVAL));
        assert_eq!(seek(&fs, file, -51.0, SEEK_CUR, 50.0), Err(Errno::EINVAL));
        assert_eq!(seek(&fs, file, -121.0, SEEK_END, 0.0), Err(Errno::EINVAL));
        assert_eq!(seek(&fs, file, 0.0, 3, 0.0), Err(Errno::EINVAL));
        assert_eq!(seek(&fs, 999, 0.0, SEEK_END, 0.0), Err(Errno::ENOENT));
        assert_eq!(seek(&fs, 999, 3.0, SEEK_CUR, 4.0), Ok(7.0), "only the end needs the file");
    }
}

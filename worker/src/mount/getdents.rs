//! `getdents64` on a shared-fs directory stream, answered in one call per
//! batch of records: Emscripten's own would look every entry up again
//! (another worker may have removed it since the listing, failing the whole
//! call) and cross into the module once per entry.
//!
//! A directory stream's entries are a snapshot: taken by its first
//! getdents, kept until the stream closes (a rewind re-reads the same
//! snapshot, as Emscripten's listing does), every entry reported with the
//! inode and type it had then, whatever happened to it since, as Linux
//! reports what the directory held when it was read.
//!
//! The records are those Emscripten's getdents64 writes (`errno_abi::dirent`):
//! fixed-size, the stream's position counting whole records.

use crate::errno_abi::dirent::{DT_CHR, DT_DIR, DT_LNK, DT_REG, D_INO, D_NAME, D_OFF, D_RECLEN, D_TYPE, NAME_ROOM, SIZE};
use shared_fs::{Errno, FileKind, FileSystem, Ino};

/// One directory's entries as a stream's first getdents saw them.
#[derive(Debug)]
struct Snapshot {
    dir: Ino,
    /// Every name, one after another (`entries` say where).
    names: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    ino: Ino,
    d_type: u8,
    name_end: usize,
}

/// A worker's directory streams' snapshots, by descriptor (few are open at
/// once).
#[derive(Debug, Default)]
pub struct Listings {
    by_fd: Vec<(u32, Snapshot)>,
}

impl Listings {
    pub const fn new() -> Listings {
        Listings { by_fd: Vec::new() }
    }

    /// `getdents64(fd, buffer, count)` on directory `dir` open as `fd` at
    /// byte `position` of the stream: writes the records that fit in
    /// `count` bytes to the start of `out` (grown as needed) and returns
    /// how many bytes they take and the stream's new position. 0 bytes at
    /// the end of the directory.
    pub fn getdents(&mut self, fs: &FileSystem, fd: u32, dir: Ino, position: f64, count: f64, out: &mut Vec<u8>) -> Result<(usize, f64), Errno> {
        let at = match self.by_fd.iter().position(|(f, s)| *f == fd && s.dir == dir) {
            Some(at) => at,
            None => {
                let snapshot = snapshot(fs, dir)?;
                self.closed(fd);
                self.by_fd.push((fd, snapshot));
                self.by_fd.len() - 1
            }
        };
        let snapshot = &self.by_fd[at].1;
        // Emscripten's arithmetic: whole records from the one the position
        // falls in, as many as fit; the position moves past them.
        let first = (position / SIZE as f64).floor() as i64;
        let end = (snapshot.entries.len() as i64).min(first + (count / SIZE as f64).floor() as i64);
        let records = (end - first).max(0) as usize;
        if out.len() < records * SIZE {
            out.resize(records * SIZE, 0);
        }
        for (k, record) in out[..records * SIZE].chunks_exact_mut(SIZE).enumerate() {
            let idx = first as usize + k;
            let entry = &snapshot.entries[idx];
            let name_start = if idx == 0 { 0 } else { snapshot.entries[idx - 1].name_end };
            let name = &snapshot.names[name_start..entry.name_end];
            record.fill(0);
            record[D_INO..D_INO + 8].copy_from_slice(&entry.ino.to_le_bytes());
            record[D_OFF..D_OFF + 8].copy_from_slice(&(((idx + 1) * SIZE) as i64).to_le_bytes());
            record[D_RECLEN..D_RECLEN + 2].copy_from_slice(&(SIZE as u16).to_le_bytes());
            record[D_TYPE] = entry.d_type;
            record[D_NAME..D_NAME + name.len()].copy_from_slice(name);
        }
        Ok((records * SIZE, (first.max(end) * SIZE as i64) as f64))
    }

    /// Descriptor `fd` closed: its snapshot goes.
    pub fn closed(&mut self, fd: u32) {
        if let Some(at) = self.by_fd.iter().position(|(f, _)| *f == fd) {
            self.by_fd.swap_remove(at);
        }
    }
}

/// The directory's entries now, `.` and `..` included, in shared-fs order.
/// Names are as Emscripten hands them to PHP: valid UTF-8 (invalid bytes
/// replaced) and cut, on a character boundary, to what `d_name` holds.
fn snapshot(fs: &FileSystem, dir: Ino) -> Result<Snapshot, Errno> {
    let mut s = Snapshot { dir, names: Vec::new(), entries: Vec::new() };
    fs.readdir(dir, 0, &mut |entry| {
        let name = String::from_utf8_lossy(&entry.name);
        let mut len = name.len().min(NAME_ROOM - 1);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        s.names.extend_from_slice(&name.as_bytes()[..len]);
        s.entries.push(Entry { ino: entry.ino, d_type: d_type(entry.kind), name_end: s.names.len() });
        true
    })?;
    Ok(s)
}

/// The `d_type` Emscripten reports: character devices, directories and
/// symlinks as such, everything else as a regular file.
fn d_type(kind: FileKind) -> u8 {
    match kind {
        FileKind::CharDev => DT_CHR,
        FileKind::Dir => DT_DIR,
        FileKind::Symlink => DT_LNK,
        _ => DT_REG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::test_fs;

    /// Musl's readdir buffer: 7 records a call.
    const BUFFER: f64 = 2048.0;

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Record {
        ino: Ino,
        off: i64,
        d_type: u8,
        name: String,
    }

    fn decode(bytes: &[u8]) -> Vec<Record> {
        bytes
            .chunks_exact(SIZE)
            .map(|r| {
                assert_eq!(u16::from_le_bytes([r[D_RECLEN], r[D_RECLEN + 1]]) as usize, SIZE);
                let name = &r[D_NAME..];
                let len = name.iter().position(|b| *b == 0).expect("NUL-terminated");
                Record {
                    ino: u64::from_le_bytes(r[D_INO..D_INO + 8].try_into().unwrap()),
                    off: i64::from_le_bytes(r[D_OFF..D_OFF + 8].try_into().unwrap()),
                    d_type: r[D_TYPE],
                    name: String::from_utf8(name[..len].to_vec()).unwrap(),
                }
            })
            .collect()
    }

    /// What readdir(3) sees: getdents calls until 0 bytes, from position 0.
    fn list(l: &mut Listings, fs: &FileSystem, fd: u32, dir: Ino) -> Vec<Record> {
        let (mut position, mut out, mut all) = (0.0, Vec::new(), Vec::new());
        loop {
            let (n, next) = l.getdents(fs, fd, dir, position, BUFFER, &mut out).unwrap();
            if n == 0 {
                assert_eq!(next, position);
                return all;
            }
            let records = decode(&out[..n]);
            assert_eq!(next, records.last().unwrap().off as f64, "the position moves past the last record");
            all.extend(records);
            position = next;
        }
    }

    fn names(records: &[Record]) -> Vec<&str> {
        records.iter().map(|r| r.name.as_str()).collect()
    }

    fn dir_with(fs: &FileSystem, n: usize) -> Ino {
        let dir = fs.mkdir(FileSystem::ROOT, b"d", 0o755, 0, 0).unwrap().ino;
        for i in 0..n {
            fs.create(dir, format!("entry-{i}").as_bytes(), 0o644, 0, 0).unwrap();
        }
        dir
    }

    #[test]
    fn lists_every_entry_with_its_inode_and_type_in_batches() {
        let fs = test_fs();
        let dir = dir_with(&fs, 20);
        fs.mkdir(dir, b"sub", 0o755, 0, 0).unwrap();
        fs.symlink(dir, b"link", b"sub", 0, 0).unwrap();
        let sub = fs.lookup(dir, b"sub").unwrap().ino;
        let records = list(&mut Listings::new(), &fs, 3, dir);
        assert_eq!(records.len(), 24);
        assert_eq!(&names(&records)[..3], &[".", "..", "entry-0"]);
        assert_eq!(records[0], Record { ino: dir, off: 280, d_type: DT_DIR, name: ".".into() });
        assert_eq!(records[1], Record { ino: FileSystem::ROOT, off: 560, d_type: DT_DIR, name: "..".into() });
        for r in &records {
            let expected = match r.name.as_str() {
                "." | ".." => (r.ino, DT_DIR),
                "link" => (fs.lookup(dir, b"link").unwrap().ino, DT_LNK),
                "sub" => (sub, DT_DIR),
                name => (fs.lookup(dir, name.as_bytes()).unwrap().ino, DT_REG),
            };
            assert_eq!((r.ino, r.d_type), expected, "{}", r.name);
        }
        // The offsets count records.
        assert!(records.iter().enumerate().all(|(i, r)| r.off == ((i + 1) * SIZE) as i64));
    }

    #[test]
    fn the_snapshot_answers_while_the_directory_changes() {
        let fs = test_fs();
        let dir = dir_with(&fs, 30);
        let mut l = Listings::new();
        let mut out = Vec::new();
        // The first batch takes the snapshot.
        let (n, position) = l.getdents(&fs, 4, dir, 0.0, BUFFER, &mut out).unwrap();
        let first = decode(&out[..n]);
        assert_eq!(first.len(), 7);
        // Another worker removes a listed entry, replaces one and adds one.
        let gone = fs.lookup(dir, b"entry-20").unwrap().ino;
        fs.unlink(dir, b"entry-20").unwrap();
        fs.unlink(dir, b"entry-21").unwrap();
        fs.mkdir(dir, b"entry-21", 0o755, 0, 0).unwrap();
        fs.create(dir, b"new", 0o644, 0, 0).unwrap();
        let (n, _) = l.getdents(&fs, 4, dir, position, 1e9, &mut out).unwrap();
        let rest = decode(&out[..n]);
        assert_eq!(first.len() + rest.len(), 32, "nothing lost, nothing added");
        let entry = |name: &str| rest.iter().find(|r| r.name == name).unwrap();
        assert_eq!((entry("entry-20").ino, entry("entry-20").d_type), (gone, DT_REG));
        assert_eq!(entry("entry-21").d_type, DT_REG, "as it was when listed");
        assert!(rest.iter().all(|r| r.name != "new"));
        // A rewind reads the same snapshot; a new stream sees the change.
        assert_eq!(names(&list(&mut l, &fs, 4, dir)), names(&[first, rest].concat()));
        let fresh = list(&mut l, &fs, 5, dir);
        assert_eq!(fresh.len(), 32);
        assert!(fresh.iter().any(|r| r.name == "new") && fresh.iter().all(|r| r.name != "entry-20"));
        // Closing drops it: the descriptor, reused, lists afresh.
        l.closed(4);
        assert_eq!(names(&list(&mut l, &fs, 4, dir)), names(&fresh));
    }

    #[test]
    fn a_descriptor_reused_for_another_directory_lists_that_one() {
        let fs = test_fs();
        let dir = dir_with(&fs, 2);
        let other = fs.mkdir(FileSystem::ROOT, b"e", 0o755, 0, 0).unwrap().ino;
        let mut l = Listings::new();
        assert_eq!(list(&mut l, &fs, 6, dir).len(), 4);
        assert_eq!(names(&list(&mut l, &fs, 6, other)), [".", ".."]);
    }

    #[test]
    fn positions_and_buffer_sizes_as_emscripten_counts_them() {
        let fs = test_fs();
        let dir = dir_with(&fs, 8); // 10 entries
        let mut l = Listings::new();
        let mut out = Vec::new();
        // A position inside a record starts at that record.
        let (n, next) = l.getdents(&fs, 1, dir, 3.0 * 280.0 + 17.0, 2.0 * 280.0 + 279.0, &mut out).unwrap();
        let got = decode(&out[..n]);
        assert_eq!(names(&got), ["entry-1", "entry-2"]);
        assert_eq!(next, 5.0 * 280.0);
        // A buffer smaller than a record: nothing, and the position stays on its record.
        assert_eq!(l.getdents(&fs, 1, dir, 3.0 * 280.0 + 17.0, 279.0, &mut out).unwrap(), (0, 3.0 * 280.0));
        // Past the end: nothing; the position is rounded to a record.
        assert_eq!(l.getdents(&fs, 1, dir, 12.0 * 280.0 + 1.0, BUFFER, &mut out).unwrap(), (0, 12.0 * 280.0));
        assert_eq!(l.getdents(&fs, 1, dir, 10.0 * 280.0, BUFFER, &mut out).unwrap(), (0, 10.0 * 280.0));
    }

    #[test]
    fn names_are_utf8_cut_to_what_d_name_holds() {
        let fs = test_fs();
        let dir = fs.mkdir(FileSystem::ROOT, b"d", 0o755, 0, 0).unwrap().ino;
        fs.create(dir, "é".repeat(127).as_bytes(), 0o644, 0, 0).unwrap(); // 254 bytes
        fs.create(dir, b"bad\xffname", 0o644, 0, 0).unwrap();
        fs.create(dir, &[b'\xff'; 255], 0o644, 0, 0).unwrap(); // 765 bytes once replaced
        let records = list(&mut Listings::new(), &fs, 1, dir);
        let got: Vec<&str> = names(&records)[2..].to_vec();
        assert!(got.contains(&"é".repeat(127).as_str()));
        assert!(got.contains(&"bad\u{fffd}name"));
        assert!(got.contains(&"\u{fffd}".repeat(85).as_str()), "cut at 255 bytes on a character");
    }

    #[test]
    fn a_file_or_a_missing_directory_is_an_error_and_leaves_nothing() {
        let fs = test_fs();
        let f = fs.create(FileSystem::ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        let mut l = Listings::new();
        let mut out = Vec::new();
        assert_eq!(l.getdents(&fs, 1, f, 0.0, BUFFER, &mut out).unwrap_err(), Errno::ENOTDIR);
        assert_eq!(l.getdents(&fs, 1, 999, 0.0, BUFFER, &mut out).unwrap_err(), Errno::ENOENT);
        assert!(l.by_fd.is_empty());
    }
}

//! Zip archives in and out of the shared filesystem: a site is unpacked into
//! it once at boot, and exported from it as a zip a person can boot again.
//! Reads stored and deflated entries (what WordPress builds and our exports
//! use); writes deflated entries with Unix modes. No zip64: archives and
//! entries stay below 4 GiB, which the 32-bit shared memory implies anyway.

use miniz_oxide::deflate::compress_to_vec;
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use shared_fs::oflags::{O_CREAT, O_TRUNC, O_WRONLY};
use shared_fs::{Errno, FileKind, FileSystem, Ino, SetAttr, Timespec, S_IFDIR, S_IFLNK, S_IFMT};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
const MADE_BY_UNIX: u16 = 3 << 8 | 20;
/// General-purpose flag bit 11: the entry's name is UTF-8.
const UTF8_NAME: u16 = 0x0800;

#[derive(Debug, PartialEq, Eq)]
pub enum ArchiveError {
    Malformed(String),
    Fs { path: String, errno: Errno },
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Malformed(why) => write!(f, "not a usable zip archive: {why}"),
            ArchiveError::Fs { path, errno } => write!(f, "{path}: {}", errno.name()),
        }
    }
}

fn malformed(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Malformed(why.into())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ArchiveError> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or_else(|| malformed("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ArchiveError> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| malformed("truncated"))
}

/// How much of an entry is read or inflated at a time.
const PIECE: usize = 64 * 1024;
/// Longest symlink target taken from an archive (Linux's PATH_MAX).
const MAX_SYMLINK: usize = 4096;

/// An archive read piece by piece, so that unpacking never holds a whole
/// zip in the shared heap: only the central directory and one entry.
pub trait ZipBytes {
    fn len(&self) -> usize;
    /// `len` bytes from `at`, or fewer at the end.
    fn read(&self, at: usize, len: usize) -> std::borrow::Cow<'_, [u8]>;
}

impl ZipBytes for Vec<u8> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn read(&self, at: usize, len: usize) -> std::borrow::Cow<'_, [u8]> {
        let start = at.min(self.as_slice().len());
        std::borrow::Cow::Borrowed(&self[start..(start + len).min(self.as_slice().len())])
    }
}

/// One entry of an archive; its data is read when asked for.
pub struct Entry {
    /// The name as stored: UTF-8 when the archive says so, else bytes
    /// (a file name that is not UTF-8 comes back as it was packed).
    pub name: Vec<u8>,
    /// Unix mode when the archive recorded one.
    pub mode: Option<u32>,
    /// Modification time (Unix seconds) from the entry's MS-DOS date and time.
    pub mtime: i64,
    method: u16,
    crc: u32,
    size: usize,
    compressed: usize,
    /// Offset of its local header.
    local: usize,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with(b"/") || self.mode.is_some_and(|m| m & S_IFMT == S_IFDIR)
    }

    /// The name for messages.
    pub fn shown(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    pub fn is_symlink(&self) -> bool {
        self.mode.is_some_and(|m| m & S_IFMT == S_IFLNK)
    }

    /// The whole contents, for small entries (symlink targets).
    pub fn contents(&self, zip: &dyn ZipBytes) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::with_capacity(self.size);
        self.stream(zip, &mut |piece| {
            out.extend_from_slice(piece);
            Ok(())
        })?;
        Ok(out)
    }

    /// Hands `sink` the contents in pieces of at most `PIECE` bytes, reading
    /// and inflating as it goes, so neither the compressed nor the inflated
    /// entry is ever whole in the (shared) heap. Size and CRC are checked at
    /// the end: a damaged entry is an error after `sink` saw its bytes.
    pub fn stream(&self, zip: &dyn ZipBytes, sink: &mut dyn FnMut(&[u8]) -> Result<(), ArchiveError>) -> Result<(), ArchiveError> {
        let header = zip.read(self.local, 30);
        if u32_at(&header, 0)? != LOCAL_HEADER {
            return Err(malformed(format!("{}: bad local header", self.shown())));
        }
        let data_at = self.local + 30 + u16_at(&header, 26)? as usize + u16_at(&header, 28)? as usize;
        let truncated = || malformed(format!("{}: truncated", self.shown()));
        let (mut crc, mut size) = (0u32, 0usize);
        let mut emit = |piece: &[u8]| {
            crc = shared_fs::crc32(crc, piece);
            size += piece.len();
            if size > self.size {
                return Err(malformed(format!("{}: longer than its recorded size", self.shown())));
            }
            sink(piece)
        };
        match self.method {
            STORED => {
                let mut at = 0;
                while at < self.compressed {
                    let piece = zip.read(data_at + at, PIECE.min(self.compressed - at));
                    if piece.is_empty() {
                        return Err(truncated());
                    }
                    at += piece.len();
                    emit(&piece)?;
                }
            }
            DEFLATED => {
                let mut state = InflateState::new_boxed(DataFormat::Raw);
                let mut out = vec![0u8; PIECE];
                let (mut at, mut input) = (0, std::borrow::Cow::Borrowed(&[][..]));
                let mut used = 0;
                loop {
                    if used == input.len() && at < self.compressed {
                        input = zip.read(data_at + at, PIECE.min(self.compressed - at));
                        if input.is_empty() {
                            return Err(truncated());
                        }
                        at += input.len();
                        used = 0;
                    }
                    // Never `Finish`: on a first call it wants room for the whole output.
                    let step = inflate(&mut state, &input[used..], &mut out, MZFlush::None);
                    used += step.bytes_consumed;
                    emit(&out[..step.bytes_written])?;
                    let stuck = step.bytes_consumed == 0 && step.bytes_written == 0;
                    match step.status {
                        Ok(MZStatus::StreamEnd) => break,
                        // All input given and no progress: the stream is cut short.
                        Ok(_) | Err(MZError::Buf) if stuck && at == self.compressed && used == input.len() => {
                            return Err(truncated())
                        }
                        Ok(_) | Err(MZError::Buf) => {}
                        Err(e) => return Err(malformed(format!("{}: cannot inflate ({e:?})", self.shown()))),
                    }
                }
            }
            m => return Err(malformed(format!("{}: compression method {m} is not supported", self.shown()))),
        }
        if size != self.size || crc != self.crc {
            return Err(malformed(format!("{}: size or checksum mismatch", self.shown())));
        }
        Ok(())
    }
}

/// The entries of a zip archive, from its central directory.
pub fn entries(zip: &dyn ZipBytes) -> Result<Vec<Entry>, ArchiveError> {
    let tail_at = zip.len().saturating_sub(22 + 65535);
    let tail = zip.read(tail_at, zip.len() - tail_at);
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i).ok() == Some(END_OF_CENTRAL))
        .ok_or_else(|| malformed("no end of central directory"))?;
    let count = u16_at(&tail, end + 10)? as usize;
    let directory_len = u32_at(&tail, end + 12)? as usize;
    let directory_at = u32_at(&tail, end + 16)? as usize;
    if count == 0xffff || directory_at == 0xffff_ffff {
        return Err(malformed("zip64 archives are not supported"));
    }
    let directory = zip.read(directory_at, directory_len);
    let mut at = 0;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let cd = &directory;
        if u32_at(cd, at)? != CENTRAL_HEADER {
            return Err(malformed("bad central directory entry"));
        }
        let made_by = u16_at(cd, at + 4)?;
        let method = u16_at(cd, at + 10)?;
        let mtime = unix_time(u16_at(cd, at + 12)?, u16_at(cd, at + 14)?);
        let crc = u32_at(cd, at + 16)?;
        let compressed = u32_at(cd, at + 20)? as usize;
        let size = u32_at(cd, at + 24)? as usize;
        let name_len = u16_at(cd, at + 28)? as usize;
        let extra_len = u16_at(cd, at + 30)? as usize;
        let comment_len = u16_at(cd, at + 32)? as usize;
        let external = u32_at(cd, at + 38)?;
        let local = u32_at(cd, at + 42)? as usize;
        let name_bytes = cd.get(at + 46..at + 46 + name_len).ok_or_else(|| malformed("truncated name"))?;
        let name = name_bytes.to_vec();
        let mode = (made_by >> 8 == 3 && external >> 16 != 0).then_some(external >> 16);
        let extra = cd.get(at + 46 + name_len..at + 46 + name_len + extra_len).unwrap_or(&[]);
        let mtime = extended_mtime(extra).unwrap_or(mtime);
        if local + 30 + compressed > zip.len() {
            return Err(malformed(format!("{}: truncated", String::from_utf8_lossy(&name))));
        }
        out.push(Entry { name, mode, mtime, method, crc, size, compressed, local });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// The zip "extended timestamp" extra field (0x5455): the modification time
/// in whole seconds, where MS-DOS time keeps only even seconds.
const EXTENDED_TIMESTAMP: u16 = 0x5455;
/// Its size as this writer adds it to every entry (id, length, flags, time).
#[cfg(test)]
const EXTENDED_TIMESTAMP_FIELD: usize = 9;

/// The modification time an entry's extra fields carry, if any.
fn extended_mtime(mut extra: &[u8]) -> Option<i64> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
        let data = extra.get(4..4 + len)?;
        if id == EXTENDED_TIMESTAMP && len >= 5 && data[0] & 1 != 0 {
            return Some(i64::from(i32::from_le_bytes([data[1], data[2], data[3], data[4]])));
        }
        extra = &extra[4 + len..];
    }
    None
}

/// A safe relative path from an entry name: no `..`, no absolute paths.
fn relative(name: &[u8], strip_prefix: &str) -> Option<Vec<u8>> {
    let name = name.strip_prefix(strip_prefix.as_bytes())?;
    let parts: Vec<&[u8]> = name.split(|&b| b == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if parts.is_empty() || parts.contains(&&b".."[..]) {
        return None;
    }
    Some(parts.join(&b'/'))
}

fn fs_error(path: impl AsRef<[u8]>) -> impl Fn(Errno) -> ArchiveError {
    let path = String::from_utf8_lossy(path.as_ref()).into_owned();
    move |errno| ArchiveError::Fs { path: path.clone(), errno }
}

/// Unpacks `zip` under `dest` (created if missing), dropping `strip_prefix`
/// from every name; entries outside it, or escaping with `..`, are skipped.
/// Returns the number of files written.
pub fn unpack(fs: &FileSystem, zip: &dyn ZipBytes, dest: &str, strip_prefix: &str) -> Result<usize, ArchiveError> {
    crate::mkdir_all(fs, dest).map_err(fs_error(dest))?;
    let entries = entries(zip)?;
    // One growth of the shared memory for all of it, with no slack.
    let written = |e: &&Entry| !e.is_dir() && !e.is_symlink() && relative(&e.name, strip_prefix).is_some();
    let sizes = entries.iter().filter(written).map(|e| e.size as u64);
    fs.reserve_for_files(sizes).map_err(fs_error(dest))?;
    let mut files = 0;
    for entry in entries {
        let Some(rel) = relative(&entry.name, strip_prefix) else { continue };
        let path = [dest.trim_end_matches('/').as_bytes(), b"/", &rel].concat();
        if entry.is_dir() {
            crate::mkdir_all(fs, &path).map_err(fs_error(&path))?;
            continue;
        }
        let parent = &path[..path.iter().rposition(|&b| b == b'/').unwrap_or(0)];
        crate::mkdir_all(fs, parent).map_err(fs_error(parent))?;
        if entry.is_symlink() {
            if entry.size > MAX_SYMLINK {
                return Err(malformed(format!("{}: a symlink target of {} bytes", entry.shown(), entry.size)));
            }
            let target = entry.contents(zip)?;
            let (dir, name) = fs.resolve_parent(FileSystem::ROOT, &path).map_err(fs_error(&path))?;
            let _ = fs.unlink(dir, &name);
            fs.symlink(dir, &name, &target, 0, 0).map_err(fs_error(&path))?;
        } else {
            stream_file(fs, zip, &entry, &path)?;
            // Files keep the archive's times, as unzip does (an unpacked site
            // is then old enough for OPcache to cache at once).
            let ino = fs.resolve(FileSystem::ROOT, &path, true).map_err(fs_error(&path))?.ino;
            let mtime = Timespec { sec: entry.mtime, nsec: 0 };
            fs.setattr(ino, &SetAttr { mtime: Some(mtime), atime: Some(mtime), ..Default::default() })
                .map_err(fs_error(&path))?;
        }
        files += 1;
    }
    Ok(files)
}

/// Writes `entry` to `path` as it inflates; a damaged entry leaves no file.
fn stream_file(fs: &FileSystem, zip: &dyn ZipBytes, entry: &Entry, path: &[u8]) -> Result<(), ArchiveError> {
    let mode = entry.mode.map_or(0o644, |m| m & 0o7777);
    let attr = fs.open_path(FileSystem::ROOT, path, O_WRONLY | O_CREAT | O_TRUNC, mode).map_err(fs_error(path))?;
    let mut at = 0u64;
    let streamed = entry.stream(zip, &mut |piece| {
        fs.write(attr.ino, at, piece).map_err(fs_error(path))?;
        at += piece.len() as u64;
        Ok(())
    });
    fs.release(attr.ino);
    if streamed.is_err() {
        if let Ok((dir, name)) = fs.resolve_parent(FileSystem::ROOT, path) {
            let _ = fs.unlink(dir, &name);
        }
    }
    streamed
}

/// Builds a zip of everything under `root`, names relative to it.
pub fn pack(fs: &FileSystem, root: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut zip = ZipWriter::default();
    add_tree(&mut zip, fs, root, "")?;
    Ok(zip.finish())
}

/// A zip of the trees under `roots` (absolute paths), names relative to
/// `/`; a root that does not exist is left out.
pub fn pack_roots(fs: &FileSystem, roots: &[&str]) -> Result<Vec<u8>, ArchiveError> {
    let mut zip = ZipWriter::default();
    for root in roots {
        if fs.resolve(FileSystem::ROOT, root.as_bytes(), true).is_ok() {
            add_tree(&mut zip, fs, root, &format!("{}/", root.trim_matches('/')))?;
        }
    }
    Ok(zip.finish())
}

/// Adds everything under `root` to `zip`, names relative to it after `prefix`.
fn add_tree(zip: &mut ZipWriter, fs: &FileSystem, root: &str, prefix: &str) -> Result<(), ArchiveError> {
    let start = fs.resolve(FileSystem::ROOT, root.as_bytes(), true).map_err(fs_error(root))?;
    let mut stack: Vec<(Ino, Vec<u8>)> = vec![(start.ino, prefix.as_bytes().to_vec())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut children = Vec::new();
        fs.readdir(dir, 0, &mut |e| {
            if e.name != b"." && e.name != b".." {
                children.push((e.ino, e.name.to_vec()));
            }
            true
        })
        .map_err(fs_error(root))?;
        for (ino, name) in children {
            // Names stay bytes: one that is not UTF-8 is packed as it is.
            let path = [&prefix[..], &name].concat();
            let attr = fs.getattr(ino).map_err(fs_error(&path))?;
            match attr.kind {
                FileKind::Dir => {
                    let dir_path = [&path[..], b"/"].concat();
                    zip.add(&dir_path, attr.mode, attr.mtime.sec, &[]);
                    stack.push((ino, dir_path));
                }
                FileKind::Symlink => {
                    let target = fs.readlink(ino).map_err(fs_error(&path))?;
                    zip.add(&path, attr.mode, attr.mtime.sec, &target);
                }
                FileKind::File => {
                    let mut data = vec![0u8; attr.size as usize];
                    let n = fs.read(ino, 0, &mut data).map_err(fs_error(&path))?;
                    data.truncate(n);
                    zip.add(&path, attr.mode, attr.mtime.sec, &data);
                }
                // Devices and FIFOs have no place in a site archive.
                _ => {}
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl ZipWriter {
    fn add(&mut self, name: impl AsRef<[u8]>, mode: u32, mtime: i64, data: &[u8]) {
        let name = name.as_ref();
        let deflated = compress_to_vec(data, 6);
        let (method, body) = if deflated.len() < data.len() { (DEFLATED, &deflated[..]) } else { (STORED, data) };
        let crc = shared_fs::crc32(0, data);
        let (time, date) = dos_time(mtime);
        let offset = self.out.len() as u32;
        // The exact second, beside MS-DOS time's even one: a compiled
        // script's recorded mtime must match its unpacked source's.
        let mut extra = Vec::with_capacity(9);
        extra.extend(EXTENDED_TIMESTAMP.to_le_bytes());
        extra.extend(5u16.to_le_bytes());
        extra.push(1); // the modification time follows
        extra.extend((mtime.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32).to_le_bytes());
        let mut header = Vec::with_capacity(46 + name.len());
        let common = |h: &mut Vec<u8>| {
            h.extend(20u16.to_le_bytes()); // version needed
            // The name is UTF-8 (the flag), or bytes as they are.
            h.extend(if std::str::from_utf8(name).is_ok() { UTF8_NAME } else { 0u16 }.to_le_bytes());
            h.extend(method.to_le_bytes());
            h.extend(time.to_le_bytes());
            h.extend(date.to_le_bytes());
            h.extend(crc.to_le_bytes());
            h.extend((body.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend((extra.len() as u16).to_le_bytes());
        };
        header.extend(LOCAL_HEADER.to_le_bytes());
        common(&mut header);
        header.extend(name);
        header.extend(&extra);
        self.out.extend(&header);
        self.out.extend(body);

        self.central.extend(CENTRAL_HEADER.to_le_bytes());
        self.central.extend(MADE_BY_UNIX.to_le_bytes());
        common(&mut self.central);
        self.central.extend(0u16.to_le_bytes()); // comment
        self.central.extend(0u16.to_le_bytes()); // disk
        self.central.extend(0u16.to_le_bytes()); // internal attributes
        self.central.extend((mode << 16).to_le_bytes());
        self.central.extend(offset.to_le_bytes());
        self.central.extend(name);
        self.central.extend(&extra);
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let at = self.out.len() as u32;
        self.out.extend(&self.central);
        self.out.extend(END_OF_CENTRAL.to_le_bytes());
        self.out.extend([0u8; 4]); // disk numbers
        self.out.extend(self.count.to_le_bytes());
        self.out.extend(self.count.to_le_bytes());
        self.out.extend((self.central.len() as u32).to_le_bytes());
        self.out.extend(at.to_le_bytes());
        self.out.extend(0u16.to_le_bytes());
        self.out
    }
}

/// MS-DOS date and time of a Unix time (UTC), as zip stores them.
fn dos_time(unix: i64) -> (u16, u16) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let year = year.clamp(1980, 2107);
    let time = (secs / 3600) << 11 | (secs % 3600 / 60) << 5 | ((secs % 60) / 2);
    let date = (year - 1980) << 9 | month << 5 | day;
    (time as u16, date as u16)
}

/// Unix time (UTC) of an MS-DOS date and time; the inverse of `dos_time`.
fn unix_time(time: u16, date: u16) -> i64 {
    let (time, date) = (i64::from(time), i64::from(date));
    let (year, month, day) = ((date >> 9) + 1980, (date >> 5 & 15).clamp(1, 12), (date & 31).max(1));
    // Days since 1970-01-01 from a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + (time >> 11) * 3600 + (time >> 5 & 63) * 60 + (time & 31) * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_fs::{Config, Timespec};

    fn new_fs() -> FileSystem {
        FileSystem::new(Config { initial_bytes: 1 << 20, max_bytes: 64 << 20, clock: || Timespec { sec: 1_700_000_000, nsec: 0 } })
            .unwrap()
    }

    fn read(fs: &FileSystem, path: &str) -> Vec<u8> {
        let a = fs.resolve(FileSystem::ROOT, path.as_bytes(), true).unwrap();
        let mut buf = vec![0; a.size as usize];
        fs.read(a.ino, 0, &mut buf).unwrap();
        buf
    }

    #[test]
    fn crc_and_dos_time_match_known_values() {
        assert_eq!(shared_fs::crc32(0, b"123456789"), 0xcbf4_3926);
        // 2023-11-14 22:13:20 UTC
        let (time, date) = dos_time(1_700_000_000);
        assert_eq!((date >> 9) + 1980, 2023);
        assert_eq!((date >> 5) & 15, 11);
        assert_eq!(date & 31, 14);
        assert_eq!(time >> 11, 22);
        assert_eq!(unix_time(time, date), 1_700_000_000);
        for t in [315_532_800, 951_782_400, 1_709_164_798, 4_102_444_800] {
            let (time, date) = dos_time(t);
            assert_eq!(unix_time(time, date), t, "{t}");
        }
    }

    #[test]
    fn pack_then_unpack_round_trips_files_dirs_symlinks_and_modes() {
        let fs = new_fs();
        crate::mkdir_all(&fs, "/site/a/b").unwrap();
        crate::files::write_file(&fs, "/site/a/b/big.txt", &b"hello ".repeat(5000), Some(0o600)).unwrap();
        crate::files::write_file(&fs, "/site/empty", b"", None).unwrap();
        let (dir, _) = fs.resolve_parent(FileSystem::ROOT, b"/site/link").unwrap();
        fs.symlink(dir, b"link", b"a/b/big.txt", 0, 0).unwrap();
        let zip = pack(&fs, "/site").unwrap();
        assert!(zip.len() < 5000, "deflated: {}", zip.len());

        let other = new_fs();
        assert_eq!(unpack(&other, &zip, "/copy", "").unwrap(), 3);
        assert_eq!(read(&other, "/copy/a/b/big.txt"), b"hello ".repeat(5000));
        assert_eq!(read(&other, "/copy/empty"), b"");
        let mtime = other.resolve(FileSystem::ROOT, b"/copy/a/b/big.txt", true).unwrap().mtime.sec;
        assert_eq!(mtime, 1_700_000_000, "the archive's time");
        assert_eq!(other.resolve(FileSystem::ROOT, b"/copy/a/b/big.txt", true).unwrap().mode & 0o777, 0o600);
        let link = other.resolve(FileSystem::ROOT, b"/copy/link", false).unwrap();
        assert_eq!(other.readlink(link.ino).unwrap(), b"a/b/big.txt");
        other.check().unwrap();
    }

    #[test]
    fn names_that_are_not_utf8_round_trip_byte_exact_and_utf8_ones_say_so() {
        let fs = new_fs();
        crate::mkdir_all(&fs, b"/site/d\xe9j\xe0".as_slice()).unwrap();
        let (dir, _) = fs.resolve_parent(FileSystem::ROOT, b"/site/d\xe9j\xe0/x").unwrap();
        let odd = fs.create(dir, b"\xff\xfe.txt", 0o644, 0, 0).unwrap().ino;
        fs.write(odd, 0, b"odd").unwrap();
        crate::files::write_file(&fs, "/site/caf\u{e9}.txt", b"utf8", None).unwrap();
        let zip = pack(&fs, "/site").unwrap();
        let listed: Vec<(Vec<u8>, u16)> = {
            let entries = entries(&zip).unwrap();
            // The flag word of each entry's local header.
            entries.iter().map(|e| (e.name.clone(), u16::from_le_bytes([zip[e.local + 6], zip[e.local + 7]]))).collect()
        };
        assert!(listed.contains(&(b"d\xe9j\xe0/\xff\xfe.txt".to_vec(), 0)), "{listed:?}");
        assert!(listed.contains(&("caf\u{e9}.txt".as_bytes().to_vec(), UTF8_NAME)), "{listed:?}");
        let other = new_fs();
        assert_eq!(unpack(&other, &zip, "/copy", "").unwrap(), 2);
        let copied = other.resolve(FileSystem::ROOT, b"/copy/d\xe9j\xe0/\xff\xfe.txt", true).unwrap();
        let mut buf = [0u8; 3];
        other.read(copied.ino, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"odd");
        assert_eq!(read(&other, "/copy/caf\u{e9}.txt"), b"utf8");
    }

    #[test]
    fn odd_second_mtimes_survive_a_round_trip() {
        // MS-DOS time alone would make it 1_700_000_000: a compiled script
        // recorded under the odd second would no longer match its source.
        let fs = new_fs();
        crate::mkdir_all(&fs, "/site").unwrap();
        crate::files::write_file(&fs, "/site/odd.php", b"<?php", None).unwrap();
        let ino = fs.resolve(FileSystem::ROOT, b"/site/odd.php", true).unwrap().ino;
        let odd = Timespec { sec: 1_700_000_001, nsec: 0 };
        fs.setattr(ino, &SetAttr { mtime: Some(odd), ..Default::default() }).unwrap();
        let zip = pack(&fs, "/site").unwrap();
        let other = new_fs();
        unpack(&other, &zip, "/copy", "").unwrap();
        assert_eq!(other.resolve(FileSystem::ROOT, b"/copy/odd.php", true).unwrap().mtime.sec, 1_700_000_001);
        assert_eq!(entries(&zip).unwrap()[0].mtime, 1_700_000_001);
    }

    #[test]
    fn prefixes_are_stripped_and_escapes_skipped() {
        let fs = new_fs();
        let mut w = ZipWriter::default();
        w.add("top/keep.php", 0o100644, 0, b"<?php");
        w.add("top/../evil.php", 0o100644, 0, b"x");
        w.add("elsewhere/skip.php", 0o100644, 0, b"x");
        let zip = w.finish();
        assert_eq!(unpack(&fs, &zip, "/dest", "top/").unwrap(), 1);
        assert_eq!(read(&fs, "/dest/keep.php"), b"<?php");
        assert!(fs.resolve(FileSystem::ROOT, b"/evil.php", true).is_err());
    }

    #[test]
    fn entries_larger_than_a_piece_stream_through_byte_exact() {
        // Incompressible (xorshift) and compressible data, each several pieces long.
        let mut x = 0x2545_f491_u32;
        let noise: Vec<u8> = (0..3 * PIECE + 123)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let text = b"<?php echo 'streamed';\n".repeat(PIECE / 4);
        let mut w = ZipWriter::default();
        w.add("noise.bin", 0o100644, 0, &noise);
        w.add("text.php", 0o100644, 0, &text);
        let zip = w.finish();
        let fs = new_fs();
        assert_eq!(unpack(&fs, &zip, "/d", "").unwrap(), 2);
        assert_eq!(read(&fs, "/d/noise.bin"), noise);
        assert_eq!(read(&fs, "/d/text.php"), text);
        fs.check().unwrap();
    }

    #[test]
    fn an_archive_larger_than_the_filesystem_fails_before_writing_anything() {
        let fs = FileSystem::new(Config { initial_bytes: 0, max_bytes: 1 << 20, clock: || Timespec { sec: 0, nsec: 0 } }).unwrap();
        let mut w = ZipWriter::default();
        w.add("a.bin", 0o100644, 0, &vec![7u8; 600 << 10]);
        w.add("b.bin", 0o100644, 0, &vec![8u8; 600 << 10]);
        let zip = w.finish();
        match unpack(&fs, &zip, "/d", "") {
            Err(ArchiveError::Fs { errno: Errno::ENOSPC, .. }) => {}
            other => panic!("expected ENOSPC, got {other:?}"),
        }
        assert!(fs.resolve(FileSystem::ROOT, b"/d/a.bin", true).is_err(), "nothing written");
        assert_eq!(fs.stats().capacity, 0, "nothing obtained");
        fs.check().unwrap();
    }

    #[test]
    fn a_damaged_entry_leaves_no_file() {
        let big = b"0123456789abcdef".repeat(PIECE / 4);
        let mut w = ZipWriter::default();
        w.add("big.txt", 0o100644, 0, &big);
        let mut zip = w.finish();
        // The CRC in the central directory no longer matches the data.
        let central = zip.len() - 22 - (46 + "big.txt".len() + EXTENDED_TIMESTAMP_FIELD);
        zip[central + 16] ^= 1;
        let fs = new_fs();
        assert!(matches!(unpack(&fs, &zip, "/d", ""), Err(ArchiveError::Malformed(m)) if m.contains("checksum")));
        assert!(fs.resolve(FileSystem::ROOT, b"/d/big.txt", true).is_err());
        fs.check().unwrap();
    }

    #[test]
    fn damaged_archives_are_clear_errors() {
        let fs = new_fs();
        let mut w = ZipWriter::default();
        w.add("f.txt", 0o100644, 0, &b"data".repeat(100));
        let mut zip = w.finish();
        assert!(matches!(unpack(&fs, &zip[..zip.len() - 30].to_vec(), "/d", ""), Err(ArchiveError::Malformed(_))));
        let data_at = 30 + "f.txt".len() + EXTENDED_TIMESTAMP_FIELD;
        zip[data_at + 2] ^= 0xff;
        assert!(matches!(unpack(&fs, &zip, "/d", ""), Err(ArchiveError::Malformed(_))));
        assert!(matches!(unpack(&fs, &b"not a zip at all, really".to_vec(), "/d", ""), Err(ArchiveError::Malformed(_))));
    }
}

//! Opening a saved filesystem: the newest stored file whose image is
//! whole, then its change batches up to the first one that is not.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::format::{crc32, Header, Record, Records, StoredBody, StoredInode, HEADER_LEN, KIND_CHANGES, KIND_IMAGE};
use super::Source;
use crate::dir::Dir;
use crate::file::{FileData, MAX_FILE_SIZE};
use crate::fs::FileSystem;
use crate::inode::{Body, Inode, State};
use crate::types::{Config, FileKind, Ino};

/// Payload bytes read at a time while replaying an image.
const READ_CHUNK: usize = 1 << 20;

/// A stored file to open from, by name (for notices).
pub struct StoredFile<'a> {
    pub name: &'a str,
    pub source: &'a mut dyn Source,
}

/// A filesystem opened from storage.
pub struct Opened {
    pub fs: FileSystem,
    /// Index (in the list given) of the file it came from.
    pub file: usize,
    pub generation: u64,
    /// Index the next change batch gets.
    pub next_index: u32,
    /// Where the last whole batch ends: the next batch goes here, and
    /// anything after it (a batch cut short) must be cut off.
    pub end: u64,
    /// Where its image ends (the image's size).
    pub image_end: u64,
    /// Set when the stored state was not wholly usable: what was damaged
    /// and which state was opened instead.
    pub notice: Option<String>,
}

impl FileSystem {
    /// Opens the newest whole state among `files` (each an image and its
    /// change batches). `Ok(None)` if none holds a saved state at all
    /// (empty files, or a first image cut short before its header);
    /// `Err` (with what was damaged) if some held one and none is whole.
    pub fn open_saved(config: Config, files: &mut [StoredFile<'_>]) -> core::result::Result<Option<Opened>, String> {
        let mut candidates: Vec<(u64, usize)> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for (i, f) in files.iter_mut().enumerate() {
            if f.source.is_empty() {
                continue;
            }
            match read_header(f.source, 0) {
                Some(h) if h.kind == KIND_IMAGE && h.index == 0 => candidates.push((h.generation, i)),
                // An image's header is written after its payload: zeros
                // there are an image cut short before it was ever whole (a
                // new site's first, or a compaction), which held nothing
                // anyone was told was saved.
                _ if header_never_written(f.source) => {}
                _ => problems.push(format!("{}: no whole image at its start", f.name)),
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for &(generation, i) in &candidates {
            let f = &mut files[i];
            match replay(config, f.source, generation) {
                Ok((fs, next_index, end, image_end, tail)) => {
                    if let Some(tail) = tail {
                        problems.push(format!("{}: {tail}", f.name));
                    }
                    // It goes on being saved: every change from now on is tracked.
                    fs.track_changes();
                    let notice = (!problems.is_empty()).then(|| {
                        format!("The saved site was not wholly readable ({}); it opened at its last whole save.", problems.join("; "))
                    });
                    return Ok(Some(Opened { fs, file: i, generation, next_index, end, image_end, notice }));
                }
                Err(e) => problems.push(format!("{} (save {generation}): {e}", f.name)),
            }
        }
        if problems.is_empty() {
            Ok(None)
        } else {
            Err(format!("No saved state of this site is whole: {}", problems.join("; ")))
        }
    }
}

/// Whether the header at the start of `source` is all zeros (or the file
/// ends within it, zeros so far).
fn header_never_written(source: &mut dyn Source) -> bool {
    let mut h = [0u8; HEADER_LEN];
    source.read_at(0, &mut h).is_ok_and(|_| h.iter().all(|&b| b == 0))
}

fn read_header(source: &mut dyn Source, at: u64) -> Option<Header> {
    let mut h = [0u8; HEADER_LEN];
    (source.read_at(at, &mut h).ok()? == HEADER_LEN).then_some(())?;
    Header::decode(&h)
}

/// The filesystem stored in `source` (image of `generation`, then its
/// change batches); also the next batch index, the end of the last whole
/// batch, and what was wrong past it, if anything.
type Replayed = (FileSystem, u32, u64, u64, Option<String>);

fn replay(config: Config, source: &mut dyn Source, generation: u64) -> core::result::Result<Replayed, String> {
    let fs = FileSystem::new(config).map_err(|e| format!("cannot make the filesystem: {e:?}"))?;
    let mut builder = Builder { fs: &fs };
    let image = read_header(source, 0).ok_or("image header unreadable")?;
    stream_image(&mut builder, source, &image)?;
    let image_end = HEADER_LEN as u64 + image.payload_len as u64;
    let mut end = image_end;
    let mut next_index = 1u32;
    let len = source.len();
    let mut tail = None;
    while end < len {
        let whole = read_header(source, end).filter(|h| h.kind == KIND_CHANGES && h.generation == generation && h.index == next_index);
        let Some(h) = whole else {
            tail = Some(format!("{} bytes after save {next_index} are not a whole batch", len - end));
            break;
        };
        let mut payload = vec![0u8; h.payload_len as usize];
        let got = source.read_at(end + HEADER_LEN as u64, &mut payload)?;
        if got != payload.len() || crc32(0, &payload) != h.payload_crc {
            tail = Some(format!("batch {next_index} is cut short or damaged"));
            break;
        }
        for record in Records::new(&payload) {
            builder.apply(record?)?;
        }
        end += HEADER_LEN as u64 + h.payload_len as u64;
        next_index += 1;
    }
    builder.finish();
    Ok((fs, next_index, end, image_end, tail))
}

/// Applies the image's records while reading it in chunks, checking its
/// CRC as it goes; a damaged image fails the whole replay.
fn stream_image(builder: &mut Builder<'_>, source: &mut dyn Source, h: &Header) -> core::result::Result<(), String> {
    let total = h.payload_len as usize;
    let mut read = 0usize;
    let mut crc = 0u32;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    // Records are applied as they arrive (memory stays flat); if the CRC
    // fails at the end, the caller throws the whole filesystem away.
    loop {
        let mut records = Records::new(&buf[pos..]);
        let before = records.remaining();
        match records.next() {
            Some(Ok(record)) => {
                let used = before - records.remaining();
                builder.apply(record)?;
                pos += used;
                continue;
            }
            // The CRC is only known at the end: a record that does not
            // parse is damage it would have shown.
            Some(Err(e)) if read == total => return Err(format!("image is damaged ({e})")),
            None if read == total => break,
            _ => {}
        }
        // Need more bytes: drop what was used, read the next chunk.
        buf.drain(..pos);
        pos = 0;
        let n = READ_CHUNK.min(total - read);
        let start = buf.len();
        buf.resize(start + n, 0);
        let got = source.read_at((HEADER_LEN + read) as u64, &mut buf[start..])?;
        if got != n {
            return Err("image is cut short".into());
        }
        crc = crc32(crc, &buf[start..]);
        read += n;
    }
    if crc != h.payload_crc {
        return Err("image is damaged (checksum mismatch)".into());
    }
    Ok(())
}

struct Builder<'a> {
    fs: &'a FileSystem,
}

impl Builder<'_> {
    fn apply(&mut self, record: Record<'_>) -> core::result::Result<(), String> {
        match record {
            Record::Inode(r) => self.inode(r),
            Record::Data { ino, offset, bytes } => {
                let inode = self.fs.inode(ino).map_err(|_| format!("data for missing inode {ino}"))?;
                let mut st = inode.state.write();
                let Body::File(file) = &mut st.body else { return Err(format!("data for non-file inode {ino}")) };
                let end = offset.checked_add(bytes.len() as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or_else(|| format!("data past the largest file size in inode {ino}"))?;
                // Where the file has no block yet, trailing zeros already
                // read as zeros: storing only up to the last non-zero byte
                // keeps fragments as small as the saved file's (a record
                // runs to EOF even when its fragment was smaller).
                let keep = match file.is_hole(offset, bytes.len() as u64) {
                    true => bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1),
                    false => bytes.len(),
                };
                file.write(&self.fs.space, offset, &bytes[..keep], &mut |_, _| {})
                    .map_err(|e| format!("no room to open the saved site ({e:?})"))?;
                if end > file.size {
                    file.set_size_steps(&self.fs.space, end, &mut Vec::new(), 1, &mut |_, _| {});
                }
                Ok(())
            }
            Record::Cut { ino, size } => {
                // The file was this small since the batch before: what that
                // batch left past `size` is stale. A file not restored yet
                // is new in this batch, with nothing to cut.
                if let Ok(inode) = self.fs.inode(ino) {
                    let mut st = inode.state.write();
                    if let Body::File(file) = &mut st.body {
                        if size < file.size {
                            // Drops the blocks past `size` and zeroes the cut block's tail.
                            file.set_size_steps(&self.fs.space, size, &mut Vec::new(), 1, &mut |_, _| {});
                        }
                    }
                }
                Ok(())
            }
            Record::Gone(ino) => {
                if ino != FileSystem::ROOT {
                    self.drop_inode(ino);
                }
                Ok(())
            }
        }
    }

    fn inode(&mut self, r: StoredInode) -> core::result::Result<(), String> {
        let kind = FileKind::from_mode(r.mode).ok_or_else(|| format!("inode {} has no type", r.ino))?;
        let existing = self.fs.inode(r.ino).ok().filter(|i| i.kind == kind);
        let inode = match existing {
            Some(i) => i,
            None => {
                self.drop_inode(r.ino);
                let body = match kind {
                    FileKind::File => Body::File(FileData::default()),
                    FileKind::Dir => Body::Dir(Dir::default()),
                    FileKind::Symlink => Body::Symlink(Box::default()),
                    _ => Body::Special(0),
                };
                let inode = Arc::new(Inode::new(r.ino, FileSystem::ROOT, r.mtime, State::new(r.mode, r.uid, r.gid, 1, r.mtime, body)));
                self.fs.table.insert(inode.clone());
                self.fs.table.reserve_past(r.ino);
                inode
            }
        };
        let mut st = inode.state.write();
        st.mode = r.mode;
        st.uid = r.uid;
        st.gid = r.gid;
        st.mtime = r.mtime;
        st.ctime = r.ctime;
        inode.set_atime(r.atime);
        match (&mut st.body, r.body) {
            (Body::File(file), StoredBody::File { size }) => {
                file.set_size_steps(&self.fs.space, size, &mut Vec::new(), 1, &mut |_, _| {});
            }
            (Body::Dir(dir), StoredBody::Dir { entries }) => {
                let mut fresh = Dir::default();
                for (name, ino) in entries {
                    // The kind is settled in `finish`, once every inode is known.
                    fresh.insert(&name, ino, FileKind::File);
                }
                *dir = fresh;
            }
            (Body::Symlink(target), StoredBody::Symlink(stored)) => *target = stored,
            (Body::Special(rdev), StoredBody::Special(stored)) => *rdev = stored,
            _ => return Err(format!("inode {} changed type", r.ino)),
        }
        Ok(())
    }

    fn drop_inode(&self, ino: Ino) {
        if let Ok(inode) = self.fs.inode(ino) {
            let mut st = inode.state.write();
            if let Body::File(file) = &mut st.body {
                file.free_all(&self.fs.space);
            }
            st.dead = true;
            self.fs.table.remove(ino);
        }
    }

    /// Makes the tree consistent: walks it from the root, drops entries to
    /// inodes that are missing or to a directory already reached, settles
    /// entry kinds, parents and link counts, and drops unreachable inodes.
    /// A cut never leaves such things; a hand-damaged store could.
    fn finish(&mut self) {
        let fs = self.fs;
        let mut reached: BTreeSet<Ino> = BTreeSet::from([FileSystem::ROOT]);
        let mut names: BTreeMap<Ino, u32> = BTreeMap::new();
        let mut queue = VecDeque::from([FileSystem::ROOT]);
        while let Some(dir_ino) = queue.pop_front() {
            let Ok(dir_inode) = fs.inode(dir_ino) else { continue };
            let mut st = dir_inode.state.write();
            let Body::Dir(dir) = &mut st.body else { continue };
            let mut fresh = Dir::default();
            let mut subdirs = 0u32;
            for (name, entry) in dir.after(0) {
                let Ok(target) = fs.inode(entry.ino) else { continue };
                if target.kind == FileKind::Dir {
                    if !reached.insert(entry.ino) {
                        continue;
                    }
                    target.set_parent(dir_ino);
                    subdirs += 1;
                    queue.push_back(entry.ino);
                } else {
                    reached.insert(entry.ino);
                    *names.entry(entry.ino).or_default() += 1;
                }
                fresh.insert(name, entry.ino, target.kind);
            }
            *dir = fresh;
            st.nlink = 2 + subdirs;
        }
        for inode in fs.table.snapshot() {
            if !reached.contains(&inode.ino) {
                self.drop_inode(inode.ino);
            } else if inode.kind != FileKind::Dir {
                inode.state.write().nlink = names.get(&inode.ino).copied().unwrap_or(1);
            }
        }
        if let Ok(root) = fs.inode(FileSystem::ROOT) {
            root.set_parent(FileSystem::ROOT);
        }
    }
}

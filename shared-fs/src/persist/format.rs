//! The stored form: a file is an image batch (every inode) followed by
//! change batches (the inodes changed since the batch before). A batch is
//! a 32-byte header and a payload of records:
//!
//! ```text
//! header:  magic "SFS1" | kind u8 | 0 0 0 | generation u64 | index u32
//!          | payload_len u32 | payload_crc u32 | header_crc u32
//! records: 1 inode  ino u64, mode u32, uid u32, gid u32, atime, mtime, ctime
//!                   (sec i64, nsec u32 each), then by kind: file size u64;
//!                   directory count u32 + (name_len u16, name, ino u64)*;
//!                   symlink len u32 + target; special rdev u64
//!          2 data   ino u64, offset u64, len u32, bytes
//!          3 gone   ino u64
//!          4 cut    ino u64, size u64
//! ```
//! Little-endian throughout. The image has index 0, change batches count
//! up from 1 within one generation; the payload's CRC-32 is written in the
//! header, which is written after the payload, so a batch cut short by a
//! crash never passes as whole.
//!
//! A cut record comes before the inode record of a file that was smaller
//! at some point since the batch before than it is now: replaying cuts
//! the file to `size` (as a truncate does) before setting its size and
//! writing its data, so what the older batches held past the cut reads as
//! zeros unless this batch writes it again. Stores written before cut
//! records existed replay as before (the magic stays "SFS1"); a reader
//! that predates them fails to open a store holding one ("unknown record
//! tag 4"), it never misreads it.

use crate::types::{Ino, Timespec};

pub(crate) const MAGIC: [u8; 4] = *b"SFS1";
pub(crate) const HEADER_LEN: usize = 32;
pub(crate) const KIND_IMAGE: u8 = 0;
pub(crate) const KIND_CHANGES: u8 = 1;

pub(crate) const TAG_INODE: u8 = 1;
pub(crate) const TAG_DATA: u8 = 2;
pub(crate) const TAG_GONE: u8 = 3;
pub(crate) const TAG_CUT: u8 = 4;

/// A batch header as stored.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub kind: u8,
    pub generation: u64,
    pub index: u32,
    pub payload_len: u32,
    pub payload_crc: u32,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = self.kind;
        h[8..16].copy_from_slice(&self.generation.to_le_bytes());
        h[16..20].copy_from_slice(&self.index.to_le_bytes());
        h[20..24].copy_from_slice(&self.payload_len.to_le_bytes());
        h[24..28].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32(0, &h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// `None` unless the bytes are a well-formed header (magic, known kind,
    /// its own checksum).
    pub(crate) fn decode(h: &[u8]) -> Option<Header> {
        if h.len() < HEADER_LEN || h[0..4] != MAGIC || h[5..8] != [0, 0, 0] {
            return None;
        }
        if crc32(0, &h[..28]) != u32::from_le_bytes(h[28..32].try_into().ok()?) {
            return None;
        }
        let header = Header {
            kind: h[4],
            generation: u64::from_le_bytes(h[8..16].try_into().ok()?),
            index: u32::from_le_bytes(h[16..20].try_into().ok()?),
            payload_len: u32::from_le_bytes(h[20..24].try_into().ok()?),
            payload_crc: u32::from_le_bytes(h[24..28].try_into().ok()?),
        };
        matches!(header.kind, KIND_IMAGE | KIND_CHANGES).then_some(header)
    }
}

/// CRC-32 (IEEE, reflected, as zip and PNG use), continued from `crc` (0 to start).
pub fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(crc);
    hasher.update(bytes);
    hasher.finalize()
}

/// What an inode record says about the inode's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoredBody {
    File { size: u64 },
    Dir { entries: Vec<(Box<[u8]>, Ino)> },
    Symlink(Box<[u8]>),
    Special(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredInode {
    pub ino: Ino,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub body: StoredBody,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    Inode(StoredInode),
    Data { ino: Ino, offset: u64, bytes: &'a [u8] },
    Gone(Ino),
    Cut { ino: Ino, size: u64 },
}

pub(crate) fn encode_inode(out: &mut Vec<u8>, r: &StoredInode) {
    out.push(TAG_INODE);
    out.extend_from_slice(&r.ino.to_le_bytes());
    out.extend_from_slice(&r.mode.to_le_bytes());
    out.extend_from_slice(&r.uid.to_le_bytes());
    out.extend_from_slice(&r.gid.to_le_bytes());
    for t in [r.atime, r.mtime, r.ctime] {
        out.extend_from_slice(&t.sec.to_le_bytes());
        out.extend_from_slice(&t.nsec.to_le_bytes());
    }
    match &r.body {
        StoredBody::File { size } => out.extend_from_slice(&size.to_le_bytes()),
        StoredBody::Dir { entries } => {
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (name, ino) in entries {
                out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                out.extend_from_slice(name);
                out.extend_from_slice(&ino.to_le_bytes());
            }
        }
        StoredBody::Symlink(target) => {
            out.extend_from_slice(&(target.len() as u32).to_le_bytes());
            out.extend_from_slice(target);
        }
        StoredBody::Special(rdev) => out.extend_from_slice(&rdev.to_le_bytes()),
    }
}

/// The header of a data record; its `len` bytes follow.
pub(crate) fn encode_data_header(out: &mut Vec<u8>, ino: Ino, offset: u64, len: u32) {
    out.push(TAG_DATA);
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

pub(crate) fn encode_gone(out: &mut Vec<u8>, ino: Ino) {
    out.push(TAG_GONE);
    out.extend_from_slice(&ino.to_le_bytes());
}

pub(crate) fn encode_cut(out: &mut Vec<u8>, ino: Ino, size: u64) {
    out.push(TAG_CUT);
    out.extend_from_slice(&ino.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
}

/// Reads records off a verified payload.
pub(crate) struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Records<'a> {
        Records { rest: payload }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.rest.len() < n {
            return Err("record runs past the end of its batch".into());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn time(&mut self) -> Result<Timespec, String> {
        let sec = self.u64()? as i64;
        Ok(Timespec { sec, nsec: self.u32()? })
    }

    fn inode(&mut self) -> Result<StoredInode, String> {
        let ino = self.u64()?;
        let mode = self.u32()?;
        let uid = self.u32()?;
        let gid = self.u32()?;
        let (atime, mtime, ctime) = (self.time()?, self.time()?, self.time()?);
        let body = match crate::types::FileKind::from_mode(mode) {
            Some(crate::types::FileKind::File) => StoredBody::File { size: self.u64()? },
            Some(crate::types::FileKind::Dir) => {
                let count = self.u32()? as usize;
                let mut entries = Vec::with_capacity(count.min(1 << 16));
                for _ in 0..count {
                    let len = self.u16()? as usize;
                    let name: Box<[u8]> = self.take(len)?.into();
                    entries.push((name, self.u64()?));
                }
                StoredBody::Dir { entries }
            }
            Some(crate::types::FileKind::Symlink) => {
                let len = self.u32()? as usize;
                StoredBody::Symlink(self.take(len)?.into())
            }
            Some(_) => StoredBody::Special(self.u64()?),
            None => return Err(format!("inode {ino} has an unknown type in mode {mode:o}")),
        };
        Ok(StoredInode { ino, mode, uid, gid, atime, mtime, ctime, body })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(match tag {
            TAG_INODE => self.inode().map(Record::Inode),
            TAG_DATA => (|| {
                let ino = self.u64()?;
                let offset = self.u64()?;
                let len = self.u32()? as usize;
                Ok(Record::Data { ino, offset, bytes: self.take(len)? })
            })(),
            TAG_GONE => self.u64().map(Record::Gone),
            TAG_CUT => (|| Ok(Record::Cut { ino: self.u64()?, size: self.u64()? }))(),
            other => Err(format!("unknown record tag {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn header_round_trips_and_rejects_any_flipped_bit() {
        let h = Header { kind: KIND_CHANGES, generation: 7, index: 3, payload_len: 99, payload_crc: 0xdead_beef };
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some(h));
        for bit in 0..HEADER_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Header::decode(&b), None, "bit {bit}");
        }
    }

    #[test]
    fn records_round_trip() {
        let t = Timespec { sec: -5, nsec: 7 };
        let inodes = [
            StoredInode { ino: 1, mode: crate::types::S_IFDIR | 0o755, uid: 1, gid: 2, atime: t, mtime: t, ctime: t, body: StoredBody::Dir { entries: vec![(b"a".to_vec().into(), 2)] } },
            StoredInode { ino: 2, mode: crate::types::S_IFREG | 0o644, uid: 0, gid: 0, atime: t, mtime: t, ctime: t, body: StoredBody::File { size: 5 } },
            StoredInode { ino: 3, mode: crate::types::S_IFLNK | 0o777, uid: 0, gid: 0, atime: t, mtime: t, ctime: t, body: StoredBody::Symlink(b"a".to_vec().into()) },
            StoredInode { ino: 4, mode: crate::types::S_IFIFO | 0o600, uid: 0, gid: 0, atime: t, mtime: t, ctime: t, body: StoredBody::Special(9) },
        ];
        let mut out = Vec::new();
        for i in &inodes {
            encode_inode(&mut out, i);
        }
        encode_data_header(&mut out, 2, 4096, 3);
        out.extend_from_slice(b"xyz");
        encode_gone(&mut out, 5);
        encode_cut(&mut out, 2, 4097);
        let got: Vec<_> = Records::new(&out).collect::<Result<_, _>>().unwrap();
        let mut want: Vec<_> = inodes.into_iter().map(Record::Inode).collect();
        want.push(Record::Data { ino: 2, offset: 4096, bytes: b"xyz" });
        want.push(Record::Gone(5));
        want.push(Record::Cut { ino: 2, size: 4097 });
        assert_eq!(got, want);
        // Cut anywhere inside, the last record is an error, never a wrong record.
        for cut in 1..out.len() {
            let parsed: Vec<_> = Records::new(&out[..cut]).collect();
            let ok = parsed.iter().filter(|r| r.is_ok()).count();
            assert!(parsed.len() == ok || parsed.last().unwrap().is_err(), "cut {cut}");
        }
    }
}

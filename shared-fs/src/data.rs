//! File data operations. Each holds only the file's own inode lock: readers
//! share it, a writer holds it exclusively, so a reader never sees a torn
//! write and different files never wait for each other.

use std::sync::Arc;

use crate::errno::{Errno, Result};
use crate::fs::FileSystem;
use crate::inode::{Body, Inode};
use crate::journal::{Op, Plan};
use crate::space::BLOCK_SIZE;
use crate::types::{FileKind, Ino};

impl FileSystem {
    /// Reads into `buf`; holes read as zeros. Returns 0 at or past EOF.
    pub fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        self.read_with(ino, offset, buf.len(), &mut |bytes| {
            buf[filled..filled + bytes.len()].copy_from_slice(bytes);
            filled += bytes.len();
        })
    }

    /// Zero-copy read: `f` receives the bytes of `[offset, offset+len)` (up
    /// to EOF) in order, as slices of the filesystem's own memory, while the
    /// file's read lock is held, so the bytes are consistent. `f` must not
    /// call back into this filesystem for the same file.
    pub fn read_with(&self, ino: Ino, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> Result<usize> {
        let inode = self.data_inode(ino)?;
        let st = inode.state.read();
        if st.dead {
            return Err(Errno::ENOENT);
        }
        let Body::File(file) = &st.body else { return Err(Errno::EIO) };
        let n = file.read_with(offset, len, f);
        inode.touch_atime(&st, self.now());
        Ok(n)
    }

    /// Writes all of `data` at `offset` (a hole is left between the old EOF
    /// and `offset`). On `ENOSPC` nothing is written: space for the whole
    /// write is reserved before any byte is copied.
    pub fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        self.write_at(ino, Some(offset), data).map(|(n, _)| n)
    }

    /// Atomic `O_APPEND` write: the offset is the size at the moment the
    /// file's write lock is taken. Returns the offset written at.
    pub fn append(&self, ino: Ino, data: &[u8]) -> Result<u64> {
        self.write_at(ino, None, data).map(|(_, at)| at)
    }

    fn write_at(&self, ino: Ino, offset: Option<u64>, data: &[u8]) -> Result<(usize, u64)> {
        let _saving = self.persist_enter();
        let inode = self.data_inode(ino)?;
        let mut st = inode.state.write();
        if st.dead {
            return Err(Errno::ENOENT);
        }
        let Body::File(file) = &mut st.body else { return Err(Errno::EIO) };
        self.step(Op::Write, 0);
        let _journal = self.journal_begin(Op::Write, 0, core::slice::from_ref(&inode), || Plan::Write { reserved: Vec::new() });
        let at = offset.unwrap_or(file.size);
        if let Some(last) = (data.len() as u64).checked_sub(1).and_then(|n| at.checked_add(n)) {
            self.mark(ino, Some((at / BLOCK_SIZE as u64, last / BLOCK_SIZE as u64)));
        }
        let n = file.write(&self.space, at, data, &mut |step, fresh| {
            if step == 1 || step == 5 {
                self.journal_update(|p| {
                    if let Plan::Write { reserved } = p {
                        reserved.clear();
                        reserved.extend_from_slice(fresh);
                    }
                });
            }
            self.step(Op::Write, step);
        })?;
        if n > 0 {
            st.touch_modified(self.now());
            self.step(Op::Write, 6);
        }
        Ok((n, at))
    }

    fn data_inode(&self, ino: Ino) -> Result<Arc<Inode>> {
        let inode = self.inode(ino)?;
        match inode.kind {
            FileKind::File => Ok(inode),
            FileKind::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}

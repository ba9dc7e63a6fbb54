//! Contents of a regular file: a sparse map from block index to data block.
//!
//! Invariant (relied on by reads and checked by `verify`): no block lies
//! wholly past EOF, and the bytes of the last block past EOF are zero, so
//! extending a file (by truncate or by a write past EOF) exposes zeros
//! without touching memory.

use std::collections::BTreeMap;

use crate::errno::{Errno, Result};
use crate::space::{BlockPtr, Space, BLOCK_SIZE};

/// Largest file size, as on Linux (`MAX_LFS_FILESIZE` on 64-bit).
pub(crate) const MAX_FILE_SIZE: u64 = i64::MAX as u64;

const BLOCK: u64 = BLOCK_SIZE as u64;

/// What holes read as.
static ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];

#[derive(Default)]
pub(crate) struct FileData {
    pub(crate) size: u64,
    blocks: BTreeMap<u64, BlockPtr>,
}

impl FileData {
    pub(crate) fn block_count(&self) -> u64 {
        self.blocks.len() as u64
    }

    pub(crate) fn blocks(&self) -> impl Iterator<Item = BlockPtr> + '_ {
        self.blocks.values().copied()
    }

    /// Indexes of the blocks the file has (holes have none), ascending.
    pub(crate) fn block_indexes(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.keys().copied()
    }

    /// Block `index`'s bytes clipped to EOF, or `None` for a hole or past
    /// EOF. Caller holds the owning inode's lock for the borrow's life.
    pub(crate) fn block_bytes(&self, index: u64) -> Option<&[u8]> {
        let offset = index.checked_mul(BLOCK)?;
        let len = self.size.checked_sub(offset).filter(|&n| n > 0)?.min(BLOCK) as usize;
        // SAFETY: the caller holds the owning inode's lock.
        self.blocks.get(&index).map(|block| unsafe { &block.bytes()[..len] })
    }

    /// Hands `f` the bytes in `[offset, offset+len)` clipped to EOF, in order,
    /// as slices of the blocks themselves (a shared zero block for holes).
    /// Returns the number of bytes passed. Caller holds the inode read lock.
    pub(crate) fn read_with(&self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        if offset >= self.size {
            return 0;
        }
        let end = self.size.min(offset.saturating_add(len as u64));
        let mut pos = offset;
        while pos < end {
            let in_block = (pos % BLOCK) as usize;
            let n = (BLOCK_SIZE - in_block).min((end - pos) as usize);
            match self.blocks.get(&(pos / BLOCK)) {
                // SAFETY: the caller holds the owning inode's lock.
                Some(block) => f(unsafe { &block.bytes()[in_block..in_block + n] }),
                None => f(&ZEROS[..n]),
            }
            pos += n as u64;
        }
        (end - offset) as usize
    }

    /// Writes all of `data` at `offset` or nothing: every missing block is
    /// allocated up front, so `ENOSPC` leaves the file untouched.
    ///
    /// Steps (`hook(step, blocks reserved and not yet in the file)` after
    /// each, see `journal.rs`): 1 reserve, 2 grow the size (the new range
    /// reads as zeros), 3 copy into blocks the file has, 4 fill the fresh
    /// blocks, 5 link them. Every prefix leaves a valid file.
    pub(crate) fn write(&mut self, space: &Space, offset: u64, data: &[u8], hook: &mut dyn FnMut(usize, &[BlockPtr])) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
        let missing: Vec<u64> = (first..=last).filter(|i| !self.blocks.contains_key(i)).collect();
        let mut fresh = Vec::with_capacity(missing.len());
        space.alloc(missing.len(), &mut fresh)?;
        hook(1, &fresh);
        self.size = self.size.max(end);
        hook(2, &fresh);
        // The part of block `idx` this write covers: (offset in block, data range).
        let part = |idx: u64| {
            let from = offset.max(idx * BLOCK);
            let to = end.min((idx + 1) * BLOCK);
            ((from - idx * BLOCK) as usize, (from - offset) as usize..(to - offset) as usize)
        };
        for (&idx, block) in self.blocks.range(first..=last) {
            let (in_block, src) = part(idx);
            // SAFETY: the caller holds the owning inode's write lock.
            unsafe { block.bytes_mut()[in_block..in_block + src.len()].copy_from_slice(&data[src]) };
        }
        hook(3, &fresh);
        for (&idx, block) in missing.iter().zip(&fresh) {
            let (in_block, src) = part(idx);
            let n = src.len();
            // Recycled blocks hold old data: zero what this write won't cover.
            // SAFETY: the block is fresh and not yet visible to anyone.
            let bytes = unsafe { block.bytes_mut() };
            bytes[..in_block].fill(0);
            bytes[in_block..in_block + n].copy_from_slice(&data[src]);
            bytes[in_block + n..].fill(0);
        }
        hook(4, &fresh);
        for (&idx, &block) in missing.iter().zip(&fresh) {
            self.blocks.insert(idx, block);
        }
        hook(5, &[]);
        Ok(data.len())
    }

    /// Truncates or extends (extending allocates nothing: the new range is
    /// a hole), as steps `from..=4` (`hook(step, detached blocks)` after
    /// each): 1 detach the blocks past the new end, 2 zero the new last
    /// block's tail, 3 set the size, 4 free the detached blocks. Re-running
    /// a suffix completes an interrupted truncate (`size <= MAX_FILE_SIZE`).
    pub(crate) fn set_size_steps(&mut self, space: &Space, size: u64, detached: &mut Vec<BlockPtr>, from: usize, hook: &mut dyn FnMut(usize, &[BlockPtr])) {
        for step in from..=4 {
            match step {
                1 if size < self.size => detached.extend(self.blocks.split_off(&size.div_ceil(BLOCK)).into_values()),
                2 if size < self.size => {
                    let tail = (size % BLOCK) as usize;
                    if let Some(block) = self.blocks.get(&(size / BLOCK)).filter(|_| tail != 0) {
                        // SAFETY: the caller holds the owning inode's write lock.
                        unsafe { block.bytes_mut()[tail..].fill(0) };
                    }
                }
                3 => self.size = size,
                4 => space.free(detached.drain(..)),
                _ => {}
            }
            hook(step, detached);
        }
    }

    /// Gives every block back to `space` (the file is being destroyed).
    pub(crate) fn free_all(&mut self, space: &Space) {
        space.free(core::mem::take(&mut self.blocks).into_values());
        self.size = 0;
    }

    pub(crate) fn verify(&self) -> core::result::Result<(), String> {
        let limit = self.size.div_ceil(BLOCK);
        if let Some((&idx, _)) = self.blocks.range(limit..).next() {
            return Err(format!("block {idx} lies past EOF (size {})", self.size));
        }
        let tail = (self.size % BLOCK) as usize;
        if tail != 0 {
            if let Some(block) = self.blocks.get(&(self.size / BLOCK)) {
                // SAFETY: the caller holds the owning inode's lock.
                if unsafe { block.bytes()[tail..].iter().any(|&b| b != 0) } {
                    return Err(format!("bytes past EOF (size {}) are not zero", self.size));
                }
            }
        }
        Ok(())
    }
}

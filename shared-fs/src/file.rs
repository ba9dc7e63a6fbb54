//! Contents of a regular file: a sparse map from block index to the
//! block's storage, a fragment of 1..=8 sectors of 512 bytes (`space`).
//!
//! Invariants (relied on by reads and checked by `verify`):
//!
//! * A block's bytes at in-block offsets at or past its fragment's capacity
//!   read as zeros, as a hole does. So a small file, or the last block of
//!   any file, takes only the sectors its bytes reach, and extending a file
//!   never needs to enlarge a fragment: only a write reaching past a
//!   fragment's capacity moves that block into a larger fragment.
//! * No block lies wholly past EOF, and the bytes of the last block past
//!   EOF are zero, so extending a file (by truncate or by a write past EOF)
//!   exposes zeros without touching memory.
//! * `sectors` is the sum of the fragments' sizes (`st_blocks`).

use std::collections::BTreeMap;

use crate::errno::{Errno, Result};
use crate::space::{BlockPtr, Space, BLOCK_SIZE, SECTOR};

/// Largest file size, as on Linux (`MAX_LFS_FILESIZE` on 64-bit).
pub(crate) const MAX_FILE_SIZE: u64 = i64::MAX as u64;

const BLOCK: u64 = BLOCK_SIZE as u64;

/// What holes (and blocks past their fragment's capacity) read as.
static ZEROS: [u8; BLOCK_SIZE] = [0; BLOCK_SIZE];

#[derive(Default)]
pub(crate) struct FileData {
    pub(crate) size: u64,
    blocks: BTreeMap<u64, BlockPtr>,
    /// Sectors the fragments take, kept so `stat` is O(1).
    sectors: u64,
}

/// Sectors a block needs to hold in-block bytes `..reach`.
fn sectors_for(reach: usize) -> u8 {
    reach.div_ceil(SECTOR) as u8
}

impl FileData {
    /// 512-byte sectors allocated (`st_blocks`).
    pub(crate) fn sectors(&self) -> u64 {
        self.sectors
    }

    pub(crate) fn blocks(&self) -> impl Iterator<Item = BlockPtr> + '_ {
        self.blocks.values().copied()
    }

    /// Indexes of the blocks the file has (holes have none), ascending.
    pub(crate) fn block_indexes(&self) -> impl Iterator<Item = u64> + '_ {
        self.blocks.keys().copied()
    }

    /// Block `index`'s contents clipped to EOF, as the bytes its fragment
    /// holds and the number of zeros that follow them up to EOF (or to the
    /// block's end); `None` for a hole or past EOF. Caller holds the owning
    /// inode's lock for the borrow's life.
    pub(crate) fn block_bytes(&self, index: u64) -> Option<(&[u8], usize)> {
        let offset = index.checked_mul(BLOCK)?;
        let len = self.size.checked_sub(offset).filter(|&n| n > 0)?.min(BLOCK) as usize;
        let block = self.blocks.get(&index)?;
        // SAFETY: the caller holds the owning inode's lock.
        let bytes = unsafe { block.bytes() };
        let held = len.min(bytes.len());
        Some((&bytes[..held], len - held))
    }

    /// Whether `[offset, offset+len)` lies in blocks the file does not have.
    pub(crate) fn is_hole(&self, offset: u64, len: u64) -> bool {
        len == 0 || self.blocks.range(offset / BLOCK..=(offset.saturating_add(len) - 1) / BLOCK).next().is_none()
    }

    /// Hands `f` the bytes in `[offset, offset+len)` clipped to EOF, in order,
    /// as slices of the fragments themselves (a shared zero block for holes
    /// and past a fragment's capacity). Returns the number of bytes passed.
    /// Caller holds the inode read lock.
    pub(crate) fn read_with(&self, offset: u64, len: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        if offset >= self.size {
            return 0;
        }
        let end = self.size.min(offset.saturating_add(len as u64));
        // One walk along the map, not a search per block.
        let mut blocks = self.blocks.range(offset / BLOCK..).peekable();
        let mut pos = offset;
        while pos < end {
            let (idx, in_block) = (pos / BLOCK, (pos % BLOCK) as usize);
            let n = (BLOCK_SIZE - in_block).min((end - pos) as usize);
            let bytes: &[u8] = match blocks.next_if(|&(&i, _)| i == idx) {
                // SAFETY: the caller holds the owning inode's lock.
                Some((_, block)) => unsafe { block.bytes() },
                None => &[],
            };
            let held = bytes.len().saturating_sub(in_block).min(n);
            if held > 0 {
                f(&bytes[in_block..in_block + held]);
            }
            if held < n {
                f(&ZEROS[..n - held]);
            }
            pos += n as u64;
        }
        (end - offset) as usize
    }

    /// Writes all of `data` at `offset` or nothing: every block the write
    /// touches that is missing, or whose fragment is too small for the bytes
    /// it gets, is given a new fragment up front (sized to the highest byte
    /// written in it, rounded up to a sector; a whole block when the write
    /// runs to the block's end), so `ENOSPC` leaves the file untouched.
    ///
    /// Steps (`hook(step, fragments reserved and not yet in the file)` after
    /// each, see `journal.rs`): 1 reserve, 2 grow the size (the new range
    /// reads as zeros), 3 copy into fragments big enough, 4 fill the fresh
    /// fragments (a grown block's old bytes first), 5 link them and free
    /// the fragments they replace. Every prefix leaves a valid file.
    pub(crate) fn write(&mut self, space: &Space, offset: u64, data: &[u8], hook: &mut dyn FnMut(usize, &[BlockPtr])) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let (first, last) = (offset / BLOCK, (end - 1) / BLOCK);
        // The part of block `idx` this write covers: (offset in block, data range).
        let part = |idx: u64| {
            let from = offset.max(idx * BLOCK);
            let to = end.min((idx + 1) * BLOCK);
            ((from - idx * BLOCK) as usize, (from - offset) as usize..(to - offset) as usize)
        };
        let reach = |idx: u64| {
            let (in_block, src) = part(idx);
            in_block + src.len()
        };
        // Blocks needing a new fragment, and its size.
        let mut slots: Vec<(u64, u8)> = Vec::new();
        for idx in first..=last {
            let need = reach(idx);
            if self.blocks.get(&idx).is_none_or(|b| b.capacity() < need) {
                slots.push((idx, sectors_for(need)));
            }
        }
        let sizes: Vec<u8> = slots.iter().map(|&(_, k)| k).collect();
        let mut fresh = Vec::with_capacity(slots.len());
        space.alloc(&sizes, &mut fresh)?;
        hook(1, &fresh);
        self.size = self.size.max(end);
        hook(2, &fresh);
        for (&idx, block) in self.blocks.range(first..=last) {
            let (in_block, src) = part(idx);
            if in_block + src.len() <= block.capacity() {
                // SAFETY: the caller holds the owning inode's write lock.
                unsafe { block.bytes_mut()[in_block..in_block + src.len()].copy_from_slice(&data[src]) };
            }
        }
        hook(3, &fresh);
        for (&(idx, _), block) in slots.iter().zip(&fresh) {
            let (in_block, src) = part(idx);
            let n = src.len();
            // SAFETY: the fragment is fresh and not yet visible to anyone.
            let bytes = unsafe { block.bytes_mut() };
            // A grown block keeps its bytes (its old fragment is smaller
            // than `in_block + n`, so all of it fits).
            let kept = match self.blocks.get(&idx) {
                // SAFETY: the caller holds the owning inode's write lock.
                Some(old) => {
                    let old = unsafe { old.bytes() };
                    bytes[..old.len()].copy_from_slice(old);
                    old.len()
                }
                None => 0,
            };
            // Recycled sectors hold old data: zero what neither covers.
            bytes[kept.min(in_block)..in_block].fill(0);
            bytes[in_block..in_block + n].copy_from_slice(&data[src]);
            bytes[in_block + n..].fill(0);
        }
        hook(4, &fresh);
        let mut replaced = Vec::new();
        for (&(idx, _), &block) in slots.iter().zip(&fresh) {
            self.sectors += u64::from(block.sectors());
            if let Some(old) = self.blocks.insert(idx, block) {
                self.sectors -= u64::from(old.sectors());
                replaced.push(old);
            }
        }
        space.free(replaced);
        hook(5, &[]);
        Ok(data.len())
    }

    /// Truncates or extends (extending allocates nothing: the new range is
    /// a hole), as steps `from..=4` (`hook(step, detached blocks)` after
    /// each): 1 detach the blocks past the new end, 2 zero the new last
    /// block's tail and give back the sectors of its fragment past the new
    /// end (in place), 3 set the size, 4 free the detached blocks.
    /// Re-running a suffix completes an interrupted truncate (`size <=
    /// MAX_FILE_SIZE`).
    pub(crate) fn set_size_steps(&mut self, space: &Space, size: u64, detached: &mut Vec<BlockPtr>, from: usize, hook: &mut dyn FnMut(usize, &[BlockPtr])) {
        for step in from..=4 {
            match step {
                1 if size < self.size => {
                    let cut = self.blocks.split_off(&size.div_ceil(BLOCK));
                    self.sectors -= cut.values().map(|b| u64::from(b.sectors())).sum::<u64>();
                    detached.extend(cut.into_values());
                }
                2 if size < self.size => {
                    let (idx, tail) = (size / BLOCK, (size % BLOCK) as usize);
                    if let Some(&block) = self.blocks.get(&idx).filter(|_| tail != 0) {
                        // SAFETY: the caller holds the owning inode's write lock.
                        let bytes = unsafe { block.bytes_mut() };
                        let from = tail.min(bytes.len());
                        bytes[from..].fill(0);
                        // Idempotent: a repeated step finds it already small.
                        let kept = space.shrink(block, sectors_for(tail));
                        self.sectors -= u64::from(block.sectors() - kept.sectors());
                        self.blocks.insert(idx, kept);
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
        self.sectors = 0;
    }

    pub(crate) fn verify(&self) -> core::result::Result<(), String> {
        let limit = self.size.div_ceil(BLOCK);
        if let Some((&idx, _)) = self.blocks.range(limit..).next() {
            return Err(format!("block {idx} lies past EOF (size {})", self.size));
        }
        let sectors: u64 = self.blocks.values().map(|b| u64::from(b.sectors())).sum();
        if sectors != self.sectors {
            return Err(format!("fragments take {sectors} sectors, the file counts {}", self.sectors));
        }
        let tail = (self.size % BLOCK) as usize;
        if tail != 0 {
            if let Some(block) = self.blocks.get(&(self.size / BLOCK)) {
                // SAFETY: the caller holds the owning inode's lock.
                let bytes = unsafe { block.bytes() };
                if bytes[tail.min(bytes.len())..].iter().any(|&b| b != 0) {
                    return Err(format!("bytes past EOF (size {}) are not zero", self.size));
                }
            }
        }
        Ok(())
    }

    /// Test hook: replaces block `index`'s fragment without telling `space`
    /// (the file's own sector count follows, so only `space` can object).
    #[cfg(test)]
    pub(crate) fn corrupt_block(&mut self, index: u64, block: BlockPtr) {
        self.sectors += u64::from(block.sectors());
        if let Some(old) = self.blocks.insert(index, block) {
            self.sectors -= u64::from(old.sectors());
        }
    }

    #[cfg(test)]
    pub(crate) fn block(&self, index: u64) -> Option<BlockPtr> {
        self.blocks.get(&index).copied()
    }
}

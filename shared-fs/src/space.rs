//! Data space: chunks obtained from a backing, split into fixed-size blocks.
//!
//! File contents never live on the global heap. Space is obtained in chunks
//! (on wasm32 straight from `memory.grow`, natively from `std::alloc`), cut
//! into `BLOCK_SIZE` blocks, and handed out from a LIFO free list, so space
//! freed by one file is reused by the next write (LIFO also keeps the working
//! set warm in cache). Chunks are never returned before the filesystem is
//! dropped: a wasm memory cannot shrink anyway.
//!
//! Why 4 KiB blocks: it equals the OS page and SQLite's default page size,
//! and the typical PHP source file is a few KiB, so larger blocks would waste
//! a large fraction of the space on tails, while the per-block bookkeeping
//! (one map entry per block) stays below 1 % at this size.

use core::ptr::NonNull;

use crate::errno::{Errno, Result};
use crate::sync::Mutex;

pub(crate) const BLOCK_SIZE: usize = 4096;
/// Growth granularity: one wasm page, so every chunk is a whole number of pages.
const GRAIN: usize = 64 * 1024;
/// Smallest growth step, to keep the number of chunks (and `memory.grow` calls) low.
const MIN_GROWTH: usize = 1 << 20;

/// Address of one data block. Whoever owns the block (a file, under its inode
/// lock, or the free list) is the only one allowed to touch its bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BlockPtr(NonNull<u8>);

// SAFETY: a BlockPtr is just an address inside memory owned by `Space`; access
// to the bytes is serialized by the lock of the inode owning the block.
unsafe impl Send for BlockPtr {}
unsafe impl Sync for BlockPtr {}

impl BlockPtr {
    /// # Safety
    /// The caller holds (at least) a read lock on the inode owning the block.
    pub(crate) unsafe fn bytes<'a>(self) -> &'a [u8] {
        core::slice::from_raw_parts(self.0.as_ptr(), BLOCK_SIZE)
    }

    /// # Safety
    /// The caller holds the write lock on the inode owning the block (or the
    /// block was just allocated and is not yet visible to anyone else).
    pub(crate) unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        core::slice::from_raw_parts_mut(self.0.as_ptr(), BLOCK_SIZE)
    }

    fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }
}

struct Chunk {
    base: NonNull<u8>,
    len: usize,
}

struct Inner {
    chunks: Vec<Chunk>,
    free: Vec<BlockPtr>,
    /// Bytes obtained from the backing.
    capacity: usize,
    used_blocks: usize,
    high_water_blocks: usize,
}

// SAFETY: the chunk pointers are owned exclusively by this structure.
unsafe impl Send for Inner {}

pub(crate) struct Space {
    inner: Mutex<Inner>,
    max_bytes: usize,
}

#[derive(Copy, Clone, Debug)]
pub(crate) struct Usage {
    pub capacity: u64,
    pub used: u64,
    pub high_water: u64,
    pub max: u64,
}

impl Space {
    pub(crate) fn new(initial_bytes: usize, max_bytes: usize) -> Result<Space> {
        let max_bytes = max_bytes / GRAIN * GRAIN;
        let initial = round_up(initial_bytes, GRAIN).unwrap_or(max_bytes).min(max_bytes);
        let space = Space {
            inner: Mutex::new(Inner {
                chunks: Vec::new(),
                free: Vec::new(),
                capacity: 0,
                used_blocks: 0,
                high_water_blocks: 0,
            }),
            max_bytes,
        };
        if initial > 0 {
            space.inner.lock().grow(initial)?;
        }
        Ok(space)
    }

    /// Appends `n` fresh blocks to `out`, growing the space if needed. All or
    /// nothing: on `ENOSPC` nothing is allocated. Block contents are garbage.
    pub(crate) fn alloc(&self, n: usize, out: &mut Vec<BlockPtr>) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        if inner.free.len() < n {
            let missing = (n - inner.free.len()).checked_mul(BLOCK_SIZE).ok_or(Errno::ENOSPC)?;
            let room = self.max_bytes - inner.capacity;
            // Grow geometrically (1/8 of capacity) to keep chunk count logarithmic.
            let want = missing.max(MIN_GROWTH).max(inner.capacity / 8);
            let step = round_up(want, GRAIN).unwrap_or(usize::MAX).min(room);
            if step < missing {
                return Err(Errno::ENOSPC);
            }
            inner.grow(step)?;
        }
        let start = inner.free.len() - n;
        out.extend(inner.free.drain(start..).rev());
        inner.used_blocks += n;
        inner.high_water_blocks = inner.high_water_blocks.max(inner.used_blocks);
        Ok(())
    }

    pub(crate) fn free(&self, blocks: impl IntoIterator<Item = BlockPtr>) {
        let mut inner = self.inner.lock();
        let before = inner.free.len();
        inner.free.extend(blocks);
        let freed = inner.free.len() - before;
        inner.used_blocks = inner.used_blocks.saturating_sub(freed);
    }

    pub(crate) fn usage(&self) -> Usage {
        let inner = self.inner.lock();
        Usage {
            capacity: inner.capacity as u64,
            used: (inner.used_blocks * BLOCK_SIZE) as u64,
            high_water: (inner.high_water_blocks * BLOCK_SIZE) as u64,
            max: self.max_bytes as u64,
        }
    }

    /// Checks that `owned` (every block held by a file) and the free list
    /// together partition the obtained chunks exactly.
    pub(crate) fn verify(&self, mut owned: Vec<BlockPtr>) -> core::result::Result<(), String> {
        let inner = self.inner.lock();
        if owned.len() != inner.used_blocks {
            return Err(format!("files own {} blocks, accounting says {}", owned.len(), inner.used_blocks));
        }
        if inner.capacity > self.max_bytes {
            return Err(format!("capacity {} exceeds max {}", inner.capacity, self.max_bytes));
        }
        if inner.high_water_blocks < inner.used_blocks {
            return Err("high-water mark below usage".into());
        }
        let chunk_bytes: usize = inner.chunks.iter().map(|c| c.len).sum();
        if chunk_bytes != inner.capacity {
            return Err(format!("chunks hold {chunk_bytes} bytes, capacity says {}", inner.capacity));
        }
        owned.extend_from_slice(&inner.free);
        if owned.len() * BLOCK_SIZE != inner.capacity {
            return Err(format!(
                "{} blocks owned or free, capacity holds {}",
                owned.len(),
                inner.capacity / BLOCK_SIZE
            ));
        }
        owned.sort_unstable();
        if let Some(w) = owned.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("block {:#x} owned twice", w[0].addr()));
        }
        let mut chunks: Vec<(usize, usize)> = inner.chunks.iter().map(|c| (c.base.as_ptr() as usize, c.len)).collect();
        chunks.sort_unstable();
        for block in &owned {
            let a = block.addr();
            let i = chunks.partition_point(|&(base, _)| base <= a);
            let inside = i > 0 && {
                let (base, len) = chunks[i - 1];
                a + BLOCK_SIZE <= base + len && (a - base) % BLOCK_SIZE == 0
            };
            if !inside {
                return Err(format!("block {a:#x} is not a block of any chunk"));
            }
        }
        Ok(())
    }
}

impl Inner {
    /// Obtains `bytes` (a multiple of GRAIN) more space and frees it into blocks.
    fn grow(&mut self, bytes: usize) -> Result<()> {
        let base = backing::obtain(bytes).ok_or(Errno::ENOSPC)?;
        self.chunks.push(Chunk { base, len: bytes });
        self.capacity += bytes;
        let count = bytes / BLOCK_SIZE;
        self.free.reserve(count);
        // Reverse order so the lowest addresses are handed out first.
        for i in (0..count).rev() {
            // SAFETY: i * BLOCK_SIZE < bytes, inside the chunk just obtained.
            let p = unsafe { base.as_ptr().add(i * BLOCK_SIZE) };
            if let Some(p) = NonNull::new(p) {
                self.free.push(BlockPtr(p));
            }
        }
        Ok(())
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        let inner = self.inner.lock();
        for chunk in &inner.chunks {
            // SAFETY: each chunk came from backing::obtain with this length,
            // and dropping the Space means no file references its blocks.
            unsafe { backing::give_back(chunk.base, chunk.len) };
        }
    }
}

fn round_up(n: usize, to: usize) -> Option<usize> {
    Some(n.checked_add(to - 1)? / to * to)
}

#[cfg(target_arch = "wasm32")]
mod backing {
    use core::ptr::NonNull;

    const WASM_PAGE: usize = 64 * 1024;

    /// Grows memory 0; every worker sharing the memory sees the new pages.
    pub(super) fn obtain(bytes: usize) -> Option<NonNull<u8>> {
        let first_page = core::arch::wasm32::memory_grow(0, bytes / WASM_PAGE);
        if first_page == usize::MAX {
            return None;
        }
        NonNull::new(first_page.checked_mul(WASM_PAGE)? as *mut u8)
    }

    /// A wasm memory cannot shrink; the pages stay with the module.
    pub(super) unsafe fn give_back(_base: NonNull<u8>, _bytes: usize) {}
}

#[cfg(not(target_arch = "wasm32"))]
mod backing {
    use super::BLOCK_SIZE;
    use core::ptr::NonNull;
    use std::alloc::{alloc_zeroed, dealloc, Layout};

    pub(super) fn obtain(bytes: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(bytes, BLOCK_SIZE).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { alloc_zeroed(layout) })
    }

    pub(super) unsafe fn give_back(base: NonNull<u8>, bytes: usize) {
        if let Ok(layout) = Layout::from_size_align(bytes, BLOCK_SIZE) {
            dealloc(base.as_ptr(), layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_demand_and_reuses_freed_blocks() {
        let space = Space::new(0, 4 << 20).unwrap();
        assert_eq!(space.usage().capacity, 0);
        let mut blocks = Vec::new();
        space.alloc(3, &mut blocks).unwrap();
        assert_eq!(space.usage().capacity, MIN_GROWTH as u64);
        assert_eq!(space.usage().used, 3 * BLOCK_SIZE as u64);
        space.verify(blocks.clone()).unwrap();
        let first = blocks[0];
        space.free(blocks.drain(..));
        space.alloc(1, &mut blocks).unwrap();
        assert!(blocks.contains(&first) || space.usage().used == BLOCK_SIZE as u64);
        space.verify(blocks.clone()).unwrap();
        assert_eq!(space.usage().high_water, 3 * BLOCK_SIZE as u64);
    }

    #[test]
    fn refuses_past_max_without_allocating() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        assert_eq!(space.alloc(GRAIN / BLOCK_SIZE + 1, &mut blocks), Err(Errno::ENOSPC));
        assert!(blocks.is_empty());
        space.alloc(GRAIN / BLOCK_SIZE, &mut blocks).unwrap();
        assert_eq!(space.alloc(1, &mut blocks), Err(Errno::ENOSPC));
        space.verify(blocks).unwrap();
    }

    #[test]
    fn verify_detects_double_ownership() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        space.alloc(2, &mut blocks).unwrap();
        let dup = vec![blocks[0], blocks[0]];
        assert!(space.verify(dup).is_err());
    }
}

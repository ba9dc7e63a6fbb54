//! Data space: chunks obtained from a backing, split into 4 KiB blocks,
//! which are split again into 512-byte sectors for the tails of files.
//!
//! File contents never live on the global heap. Space is obtained in chunks
//! (on wasm32 straight from `memory.grow`, natively from `std::alloc`), cut
//! into `BLOCK_SIZE` blocks, and handed out from a LIFO free list, so space
//! freed by one file is reused by the next write (LIFO also keeps the working
//! set warm in cache). Chunks are never returned before the filesystem is
//! dropped: a wasm memory cannot shrink anyway.
//!
//! Why 4 KiB blocks: it equals the OS page and SQLite's default page size,
//! so page-sized I/O maps onto whole blocks, and the per-block bookkeeping
//! (one map entry per block) stays below 1 % at this size.
//!
//! Why fragments: the typical PHP source file is a few KiB, so whole blocks
//! waste a large share of memory on tails (WordPress 6.5: 15.6 MB of files
//! in 19.2 MB of blocks). A block slot of a file may therefore hold a
//! *fragment* of 1..=8 contiguous 512-byte sectors inside one 4 KiB block
//! (8 sectors = a whole block): the waste per file drops to under 512 bytes.
//! A fragment stays inside one block, so its bytes are contiguous and reads
//! stay zero-copy. Blocks carved into fragments keep an occupancy mask
//! (one bit per sector); a fragment goes into the carved block with the
//! smallest free run that fits (best fit), else a fresh block is carved;
//! a carved block whose last fragment is freed goes back to the block free
//! list, so space freed by small files serves big ones.
//!
//! A fragment's size travels with its pointer (`BlockPtr::sectors`), and the
//! masks say which sectors are taken: `free` checks one against the other
//! and records a mismatch instead of corrupting the masks, and `verify`
//! reports it, as it reports any overlap or accounting error.

use core::ptr::NonNull;
use std::collections::{BTreeMap, BTreeSet};

use crate::errno::{Errno, Result};
use crate::sync::Mutex;

pub(crate) const BLOCK_SIZE: usize = 4096;
/// Allocation unit of fragments (and the unit of `st_blocks`).
pub(crate) const SECTOR: usize = 512;
/// Sectors per block: the largest fragment is a whole block.
pub(crate) const SECTORS: u8 = (BLOCK_SIZE / SECTOR) as u8;
/// Growth granularity: one wasm page, so every chunk is a whole number of pages.
const GRAIN: usize = 64 * 1024;
/// Smallest growth step, so that small writes do not grow the memory one
/// page at a time. Growth is otherwise 1/64 of the capacity: what is
/// obtained is never given back (a wasm memory cannot shrink), so a bigger
/// step is memory nobody may ever use; chunks are only walked by `verify`.
const MIN_GROWTH: usize = 256 << 10;

/// The storage of one block slot of a file: `sectors` contiguous sectors
/// inside one 4 KiB block (`SECTORS`: the whole block). Whoever owns it (a
/// file, under its inode lock, or the allocator) is the only one allowed to
/// touch its bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BlockPtr {
    ptr: NonNull<u8>,
    sectors: u8,
}

// SAFETY: a BlockPtr is just an address inside memory owned by `Space`; access
// to the bytes is serialized by the lock of the inode owning the block.
unsafe impl Send for BlockPtr {}
unsafe impl Sync for BlockPtr {}

impl BlockPtr {
    /// Number of 512-byte sectors (1..=8).
    pub(crate) fn sectors(self) -> u8 {
        self.sectors
    }

    /// Bytes it holds: a block's bytes at in-block offsets from this on read as zeros.
    pub(crate) fn capacity(self) -> usize {
        self.sectors as usize * SECTOR
    }

    /// # Safety
    /// The caller holds (at least) a read lock on the inode owning the block.
    pub(crate) unsafe fn bytes<'a>(self) -> &'a [u8] {
        core::slice::from_raw_parts(self.ptr.as_ptr(), self.capacity())
    }

    /// # Safety
    /// The caller holds the write lock on the inode owning the block (or the
    /// block was just allocated and is not yet visible to anyone else).
    pub(crate) unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity())
    }

    fn addr(self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Index of its first sector in its block (blocks are 4 KiB aligned).
    fn first_sector(self) -> u8 {
        (self.addr() % BLOCK_SIZE / SECTOR) as u8
    }

    /// The 4 KiB block it lies in.
    fn block(self) -> NonNull<u8> {
        // Stays inside the same chunk (same provenance); never null: the
        // block lies inside a chunk.
        let base = self.ptr.as_ptr().wrapping_sub(self.addr() % BLOCK_SIZE);
        NonNull::new(base).unwrap_or(self.ptr)
    }

    /// The sectors it takes in its block, one bit each.
    fn mask(self) -> u8 {
        run_mask(self.first_sector(), self.sectors)
    }

    #[cfg(test)]
    pub(crate) fn with_sectors(self, sectors: u8) -> BlockPtr {
        BlockPtr { sectors, ..self }
    }
}

/// Bits `first..first+len` of a sector mask (`first + len <= 8`).
fn run_mask(first: u8, len: u8) -> u8 {
    (((1u16 << len) - 1) << first) as u8
}

/// The free runs of a mask (clear bits), as (start, length).
fn free_runs(mask: u8) -> impl Iterator<Item = (u8, u8)> {
    let mut at = 0u8;
    core::iter::from_fn(move || {
        while at < SECTORS && mask & (1 << at) != 0 {
            at += 1;
        }
        if at == SECTORS {
            return None;
        }
        let start = at;
        while at < SECTORS && mask & (1 << at) == 0 {
            at += 1;
        }
        Some((start, at - start))
    })
}

fn longest_free_run(mask: u8) -> u8 {
    free_runs(mask).map(|(_, len)| len).max().unwrap_or(0)
}

struct Chunk {
    base: NonNull<u8>,
    len: usize,
}

struct Inner {
    chunks: Vec<Chunk>,
    /// Whole free blocks, LIFO.
    free: Vec<NonNull<u8>>,
    /// Blocks carved into fragments: block -> taken sectors (never 0: an
    /// emptied block goes back to `free`). Whole-block fragments are not here.
    carved: BTreeMap<NonNull<u8>, u8>,
    /// Carved blocks that have free sectors, by their longest free run
    /// (index 1..=7; 0 unused), to find a best fit without a scan.
    by_run: [BTreeSet<NonNull<u8>>; SECTORS as usize],
    /// Bytes obtained from the backing.
    capacity: usize,
    used_sectors: usize,
    high_water_sectors: usize,
    /// The first `free`/`shrink` that did not match the masks (a bug): the
    /// masks were left alone, and `verify` reports it.
    damage: Option<String>,
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
    /// Bytes of the sectors allocated.
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
                carved: BTreeMap::new(),
                by_run: Default::default(),
                capacity: 0,
                used_sectors: 0,
                high_water_sectors: 0,
                damage: None,
            }),
            max_bytes,
        };
        if initial > 0 {
            space.inner.lock().grow(initial)?;
        }
        Ok(space)
    }

    /// Appends one fragment per entry of `sectors` (each 1..=8) to `out`,
    /// growing the space if needed. All or nothing: on `ENOSPC` nothing is
    /// allocated. Contents are garbage.
    pub(crate) fn alloc(&self, sectors: &[u8], out: &mut Vec<BlockPtr>) -> Result<()> {
        if sectors.is_empty() {
            return Ok(());
        }
        debug_assert!(sectors.iter().all(|&k| (1..=SECTORS).contains(&k)));
        let mut inner = self.inner.lock();
        // Whole blocks can only come from the free list or from growth: get
        // them in one growth step (fragments may fit in carved blocks).
        let whole = sectors.iter().filter(|&&k| k >= SECTORS).count();
        if inner.free.len() < whole {
            let missing = (whole - inner.free.len()).checked_mul(BLOCK_SIZE).ok_or(Errno::ENOSPC)?;
            inner.grow_for(missing, self.max_bytes)?;
        }
        let start = out.len();
        for &k in sectors {
            match inner.alloc_one(k.clamp(1, SECTORS), self.max_bytes) {
                Ok(p) => out.push(p),
                Err(e) => {
                    // Undo in reverse order: the free list and masks are as before.
                    for p in out.drain(start..).rev() {
                        inner.free_one(p);
                    }
                    return Err(e);
                }
            }
        }
        inner.high_water_sectors = inner.high_water_sectors.max(inner.used_sectors);
        Ok(())
    }

    /// Grows now, by exactly what is missing (rounded to a wasm page), so
    /// that `bytes` more fit in whole free blocks: for a writer that knows
    /// how much is coming (a site being unpacked), one growth and no slack.
    pub(crate) fn reserve(&self, bytes: usize) -> Result<()> {
        let mut inner = self.inner.lock();
        let free = inner.free.len() * BLOCK_SIZE;
        if bytes <= free {
            return Ok(());
        }
        let step = round_up(bytes - free, GRAIN).ok_or(Errno::ENOSPC)?;
        if step > self.max_bytes - inner.capacity {
            return Err(Errno::ENOSPC);
        }
        inner.grow(step)
    }

    pub(crate) fn free(&self, blocks: impl IntoIterator<Item = BlockPtr>) {
        let mut inner = self.inner.lock();
        for p in blocks {
            inner.free_one(p);
        }
    }

    /// Gives back the sectors of `p` past its first `sectors` (in place, no
    /// copy, cannot fail); returns the smaller fragment.
    pub(crate) fn shrink(&self, p: BlockPtr, sectors: u8) -> BlockPtr {
        if sectors == 0 || sectors >= p.sectors {
            return p;
        }
        let mut inner = self.inner.lock();
        let kept = BlockPtr { sectors, ..p };
        let cut = p.mask() & !kept.mask();
        let block = p.block();
        let old = match inner.carved.get(&block).copied() {
            None if p.sectors == SECTORS => 0xFF,
            Some(m) if p.sectors < SECTORS && m & p.mask() == p.mask() => m,
            found => {
                inner.note_damage(format!("shrink of {} sectors at {:#x}: block holds {found:?}", p.sectors, p.addr()));
                return p;
            }
        };
        inner.set_mask(block, old, old & !cut);
        inner.used_sectors = inner.used_sectors.saturating_sub((p.sectors - sectors) as usize);
        kept
    }

    pub(crate) fn usage(&self) -> Usage {
        let inner = self.inner.lock();
        Usage {
            capacity: inner.capacity as u64,
            used: (inner.used_sectors * SECTOR) as u64,
            high_water: (inner.high_water_sectors * SECTOR) as u64,
            max: self.max_bytes as u64,
        }
    }

    /// Checks that `owned` (every fragment held by a file), the carved
    /// blocks' masks and the free list together partition the obtained
    /// chunks exactly: no fragment overlaps another, each carved block's
    /// mask is exactly the sectors files hold in it, the best-fit index
    /// matches the masks, and the sector count matches.
    pub(crate) fn verify(&self, owned: Vec<BlockPtr>) -> core::result::Result<(), String> {
        let inner = self.inner.lock();
        if let Some(damage) = &inner.damage {
            return Err(damage.clone());
        }
        let sectors: usize = owned.iter().map(|p| p.sectors as usize).sum();
        if sectors != inner.used_sectors {
            return Err(format!("files own {sectors} sectors, accounting says {}", inner.used_sectors));
        }
        if inner.capacity > self.max_bytes {
            return Err(format!("capacity {} exceeds max {}", inner.capacity, self.max_bytes));
        }
        if inner.high_water_sectors < inner.used_sectors {
            return Err("high-water mark below usage".into());
        }
        let chunk_bytes: usize = inner.chunks.iter().map(|c| c.len).sum();
        if chunk_bytes != inner.capacity {
            return Err(format!("chunks hold {chunk_bytes} bytes, capacity says {}", inner.capacity));
        }
        let mut chunks: Vec<(usize, usize)> = inner.chunks.iter().map(|c| (c.base.as_ptr() as usize, c.len)).collect();
        chunks.sort_unstable();
        let in_chunks = |a: usize, len: usize| {
            let i = chunks.partition_point(|&(base, _)| base <= a);
            i > 0 && {
                let (base, clen) = chunks[i - 1];
                a + len <= base + clen
            }
        };
        // What files hold, per block: sectors taken, and whether by one whole-block fragment.
        let mut held: BTreeMap<usize, (u8, bool)> = BTreeMap::new();
        for p in &owned {
            let a = p.addr();
            if !(1..=SECTORS).contains(&p.sectors) || a % SECTOR != 0 || p.first_sector() + p.sectors > SECTORS {
                return Err(format!("fragment {a:#x} of {} sectors is not sectors of one block", p.sectors));
            }
            if !in_chunks(a, p.capacity()) {
                return Err(format!("fragment {a:#x} is not inside any chunk"));
            }
            let slot = held.entry(a - a % BLOCK_SIZE).or_insert((0, false));
            if slot.0 & p.mask() != 0 {
                return Err(format!("fragment {a:#x} ({} sectors) overlaps another fragment", p.sectors));
            }
            slot.0 |= p.mask();
            slot.1 = p.sectors == SECTORS;
        }
        for (&block, &(mask, whole)) in &held {
            match inner.carved.get(&addr_key(block)) {
                Some(_) if whole => return Err(format!("block {block:#x} is owned whole and also carved")),
                None if whole => {}
                Some(&m) if m == mask => {}
                found => {
                    return Err(format!("block {block:#x}: files hold sectors {mask:08b}, allocator has {:?}", found.map(|m| format!("{m:08b}"))))
                }
            }
        }
        let mut listed = 0;
        for (&block, &mask) in &inner.carved {
            let a = block.as_ptr() as usize;
            if held.get(&a).is_none_or(|&(m, whole)| whole || m != mask) {
                return Err(format!("carved block {a:#x} (sectors {mask:08b}) does not match what files hold"));
            }
            let run = longest_free_run(mask) as usize;
            if run > 0 {
                listed += 1;
                if !inner.by_run[run].contains(&block) {
                    return Err(format!("carved block {a:#x} missing from the free-run index {run}"));
                }
            }
        }
        if inner.by_run.iter().map(BTreeSet::len).sum::<usize>() != listed {
            return Err("the free-run index lists blocks it should not".into());
        }
        let mut blocks: Vec<usize> = held.keys().copied().collect();
        for b in &inner.free {
            let a = b.as_ptr() as usize;
            if !in_chunks(a, BLOCK_SIZE) || !a.is_multiple_of(BLOCK_SIZE) {
                return Err(format!("free block {a:#x} is not a block of any chunk"));
            }
            blocks.push(a);
        }
        if blocks.len() * BLOCK_SIZE != inner.capacity {
            return Err(format!("{} blocks owned, carved or free, capacity holds {}", blocks.len(), inner.capacity / BLOCK_SIZE));
        }
        blocks.sort_unstable();
        if let Some(w) = blocks.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("block {:#x} is both free and owned, or free twice", w[0]));
        }
        Ok(())
    }
}

/// A map key for a block address (keys compare by address only).
fn addr_key(a: usize) -> NonNull<u8> {
    NonNull::new(a as *mut u8).unwrap_or(NonNull::dangling())
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
                self.free.push(p);
            }
        }
        Ok(())
    }

    /// Grows by at least `missing` bytes, or fails without growing.
    fn grow_for(&mut self, missing: usize, max_bytes: usize) -> Result<()> {
        let room = max_bytes - self.capacity;
        let want = missing.max(MIN_GROWTH).max(self.capacity / 64);
        let step = round_up(want, GRAIN).unwrap_or(usize::MAX).min(room);
        if step < missing {
            return Err(Errno::ENOSPC);
        }
        self.grow(step)
    }

    fn take_block(&mut self, max_bytes: usize) -> Result<NonNull<u8>> {
        if self.free.is_empty() {
            self.grow_for(BLOCK_SIZE, max_bytes)?;
        }
        self.free.pop().ok_or(Errno::ENOSPC)
    }

    fn alloc_one(&mut self, k: u8, max_bytes: usize) -> Result<BlockPtr> {
        let p = if k == SECTORS {
            BlockPtr { ptr: self.take_block(max_bytes)?, sectors: k }
        } else if let Some(block) = self.by_run[k as usize..].iter().find_map(|set| set.first().copied()) {
            // Best fit: the carved block with the smallest run that fits, and
            // in it the smallest such run.
            let mask = self.carved.get(&block).copied().unwrap_or(0);
            let first = free_runs(mask).filter(|&(_, len)| len >= k).min_by_key(|&(_, len)| len).map_or(0, |(s, _)| s);
            self.set_mask(block, mask, mask | run_mask(first, k));
            // SAFETY: first + k <= 8: the fragment lies inside the block.
            BlockPtr { ptr: unsafe { block.add(first as usize * SECTOR) }, sectors: k }
        } else {
            let block = self.take_block(max_bytes)?;
            self.set_mask(block, 0, run_mask(0, k));
            BlockPtr { ptr: block, sectors: k }
        };
        self.used_sectors += k as usize;
        Ok(p)
    }

    fn free_one(&mut self, p: BlockPtr) {
        let block = p.block();
        match self.carved.get(&block).copied() {
            None if p.sectors == SECTORS && p.first_sector() == 0 => self.free.push(block),
            Some(m) if p.sectors < SECTORS && m & p.mask() == p.mask() => self.set_mask(block, m, m & !p.mask()),
            found => {
                // Leave the masks alone (a leak, not an overlap) and tell `verify`.
                return self.note_damage(format!("free of {} sectors at {:#x}: block holds {found:?}", p.sectors, p.addr()));
            }
        }
        // Saturating: a double free is a bug `verify` reports, not a panic here.
        self.used_sectors = self.used_sectors.saturating_sub(p.sectors as usize);
    }

    /// Moves a block from mask `old` to mask `new` (0: not carved; 0xFF
    /// with the block not carved: a whole-block fragment), keeping the
    /// free-run index in step; an emptied carved block becomes free.
    fn set_mask(&mut self, block: NonNull<u8>, old: u8, new: u8) {
        let old_run = longest_free_run(old);
        if old != 0 && old_run > 0 {
            self.by_run[old_run as usize].remove(&block);
        }
        if new == 0 {
            self.carved.remove(&block);
            self.free.push(block);
            return;
        }
        self.carved.insert(block, new);
        let new_run = longest_free_run(new);
        if new_run > 0 {
            self.by_run[new_run as usize].insert(block);
        }
    }

    fn note_damage(&mut self, what: String) {
        self.damage.get_or_insert(what);
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
    ///
    /// # Safety
    /// As the native one: `base` and `bytes` are a chunk `obtain` returned,
    /// and nothing uses it afterwards.
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

    /// Returns a chunk to the system allocator.
    ///
    /// # Safety
    /// `base` and `bytes` are exactly a chunk `obtain` returned and not yet
    /// given back, and nothing reads or writes it afterwards.
    pub(super) unsafe fn give_back(base: NonNull<u8>, bytes: usize) {
        if let Ok(layout) = Layout::from_size_align(bytes, BLOCK_SIZE) {
            dealloc(base.as_ptr(), layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: u8 = SECTORS;

    #[test]
    fn reserve_grows_once_by_exactly_what_is_missing() {
        let space = Space::new(0, 4 << 20).unwrap();
        space.reserve(3 * GRAIN + 1).unwrap();
        assert_eq!(space.usage().capacity, 4 * GRAIN as u64, "rounded to a page, no growth step");
        space.reserve(2 * GRAIN).unwrap();
        assert_eq!(space.usage().capacity, 4 * GRAIN as u64, "it already fits");
        assert_eq!(space.reserve((4 << 20) + 1), Err(Errno::ENOSPC));
        assert_eq!(space.usage().capacity, 4 * GRAIN as u64, "a refused reserve obtains nothing");
        let mut blocks = Vec::new();
        space.alloc(&[SECTORS; 64], &mut blocks).unwrap();
        assert_eq!(space.usage().capacity, 4 * GRAIN as u64, "the reserved blocks serve the writes");
        space.verify(blocks).unwrap();
    }

    #[test]
    fn grows_on_demand_and_reuses_freed_blocks() {
        let space = Space::new(0, 4 << 20).unwrap();
        assert_eq!(space.usage().capacity, 0);
        let mut blocks = Vec::new();
        space.alloc(&[WHOLE; 3], &mut blocks).unwrap();
        assert_eq!(space.usage().capacity, MIN_GROWTH as u64);
        assert_eq!(space.usage().used, 3 * BLOCK_SIZE as u64);
        space.verify(blocks.clone()).unwrap();
        let first = blocks[0];
        space.free(blocks.drain(..));
        space.alloc(&[WHOLE], &mut blocks).unwrap();
        assert!(blocks.contains(&first) || space.usage().used == BLOCK_SIZE as u64);
        space.verify(blocks.clone()).unwrap();
        assert_eq!(space.usage().high_water, 3 * BLOCK_SIZE as u64);
    }

    #[test]
    fn refuses_past_max_without_allocating() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        assert_eq!(space.alloc(&[WHOLE; GRAIN / BLOCK_SIZE + 1], &mut blocks), Err(Errno::ENOSPC));
        assert!(blocks.is_empty());
        space.alloc(&[WHOLE; GRAIN / BLOCK_SIZE], &mut blocks).unwrap();
        assert_eq!(space.alloc(&[WHOLE], &mut blocks), Err(Errno::ENOSPC));
        assert_eq!(space.alloc(&[1], &mut blocks), Err(Errno::ENOSPC));
        space.verify(blocks).unwrap();
    }

    #[test]
    fn mixed_request_at_the_limit_is_all_or_nothing() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        space.alloc(&[WHOLE; GRAIN / BLOCK_SIZE - 1], &mut blocks).unwrap();
        space.alloc(&[5], &mut blocks).unwrap();
        let before = space.usage().used;
        // The 3 fits beside the 5, the 4 does not fit anywhere, the whole block neither.
        for request in [&[3, 4][..], &[WHOLE, 1], &[1, 1, 1, 1]] {
            assert_eq!(space.alloc(request, &mut blocks), Err(Errno::ENOSPC), "{request:?}");
            assert_eq!(space.usage().used, before);
            space.verify(blocks.clone()).unwrap();
        }
        space.alloc(&[3], &mut blocks).unwrap();
        assert_eq!(space.usage().used, GRAIN as u64);
        space.verify(blocks).unwrap();
    }

    #[test]
    fn fragments_pack_best_fit_and_emptied_blocks_come_back_whole() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut frags = Vec::new();
        space.alloc(&[3, 3], &mut frags).unwrap();
        assert_eq!(frags[0].block(), frags[1].block(), "both in one block");
        space.alloc(&[2], &mut frags).unwrap();
        assert_eq!(frags[2].block(), frags[0].block(), "the 2-sector run left fits exactly");
        space.alloc(&[1], &mut frags).unwrap();
        assert_ne!(frags[3].block(), frags[0].block(), "the first block is full");
        assert_eq!(space.usage().used, 9 * SECTOR as u64);
        space.verify(frags.clone()).unwrap();
        // Fill the whole space with 1-sector fragments: 8 per block.
        let mut ones = Vec::new();
        space.alloc(&[1; (GRAIN / SECTOR) - 9], &mut ones).unwrap();
        assert_eq!(space.alloc(&[1], &mut Vec::new()), Err(Errno::ENOSPC));
        frags.extend(ones);
        space.verify(frags.clone()).unwrap();
        // Free them all (in a shuffled order): every block is whole again.
        let mut order: Vec<usize> = (0..frags.len()).collect();
        let n = order.len();
        for i in 0..n {
            order.swap(i, (i * 7919 + 13) % n);
        }
        space.free(order.iter().map(|&i| frags[i]));
        space.verify(Vec::new()).unwrap();
        let mut blocks = Vec::new();
        space.alloc(&[WHOLE; GRAIN / BLOCK_SIZE], &mut blocks).unwrap();
        space.verify(blocks).unwrap();
    }

    #[test]
    fn shrink_gives_back_the_tail_in_place() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        space.alloc(&[WHOLE, 6], &mut blocks).unwrap();
        let small = space.shrink(blocks[0], 3);
        assert_eq!((small.sectors(), small.addr()), (3, blocks[0].addr()));
        let six = space.shrink(blocks[1], 6);
        assert_eq!(six, blocks[1], "shrinking to the same size changes nothing");
        assert_eq!(space.usage().used, 9 * SECTOR as u64);
        space.verify(vec![small, six]).unwrap();
        let mut more = Vec::new();
        space.alloc(&[5, 2], &mut more).unwrap();
        assert_eq!(more[0].block(), small.block(), "the 5 freed sectors are reused");
        assert_eq!(more[1].block(), six.block());
        space.verify(vec![small, six, more[0], more[1]]).unwrap();
    }

    #[test]
    fn verify_detects_double_ownership() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut blocks = Vec::new();
        space.alloc(&[WHOLE; 2], &mut blocks).unwrap();
        let dup = vec![blocks[0], blocks[0]];
        assert!(space.verify(dup).is_err());
    }

    #[test]
    fn verify_detects_overlap_and_wrong_sizes() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut f = Vec::new();
        space.alloc(&[2, 2], &mut f).unwrap();
        space.verify(f.clone()).unwrap();
        // Same sector count (so accounting agrees), but the first claims a sector of the second.
        let err = space.verify(vec![f[0].with_sectors(3), f[1].with_sectors(1)]).unwrap_err();
        assert!(err.contains("overlaps"), "{err}");
        // One sector short: accounting and the mask disagree.
        assert!(space.verify(vec![f[0].with_sectors(1), f[1]]).is_err());
        // Same sector count, wrong shapes: the masks disagree.
        assert!(space.verify(vec![f[0].with_sectors(1), f[1].with_sectors(3)]).is_err());
        assert!(space.verify(vec![f[0]]).is_err(), "a fragment owned by nobody");
    }

    #[test]
    fn a_free_of_the_wrong_size_is_reported_not_applied() {
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut f = Vec::new();
        space.alloc(&[2, WHOLE], &mut f).unwrap();
        space.free([f[0].with_sectors(3)]);
        let err = space.verify(f.clone()).unwrap_err();
        assert!(err.contains("free of 3 sectors"), "{err}");
        let space = Space::new(GRAIN, GRAIN).unwrap();
        let mut f = Vec::new();
        space.alloc(&[WHOLE], &mut f).unwrap();
        space.free([f[0].with_sectors(4)]);
        assert!(space.verify(f).is_err());
    }
}

//! Tails in sub-block fragments: contents byte-exact against a `Vec` model,
//! and the sectors each block takes exact against a model of the rule
//! (a block gets the sectors its highest written byte reaches; a write
//! reaching past them moves it into a larger fragment; a truncate into a
//! block gives back the sectors past the new end).

mod common;

use std::collections::BTreeMap;

use common::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;
const BLOCK: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;

/// The file's bytes and, per block index, the bytes its fragment holds.
#[derive(Default)]
struct Model {
    data: Vec<u8>,
    caps: BTreeMap<u64, u64>,
}

impl Model {
    fn write(&mut self, offset: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let end = offset + bytes.len() as u64;
        if self.data.len() < end as usize {
            self.data.resize(end as usize, 0);
        }
        self.data[offset as usize..end as usize].copy_from_slice(bytes);
        for idx in offset / BLOCK..=(end - 1) / BLOCK {
            let reach = end.min((idx + 1) * BLOCK) - idx * BLOCK;
            let cap = self.caps.entry(idx).or_insert(0);
            if *cap < reach {
                *cap = reach.div_ceil(SECTOR) * SECTOR;
            }
        }
    }

    fn truncate(&mut self, size: u64) {
        if size < self.data.len() as u64 {
            self.caps.retain(|&idx, _| idx < size.div_ceil(BLOCK));
            let tail = size % BLOCK;
            if let Some(cap) = self.caps.get_mut(&(size / BLOCK)).filter(|_| tail != 0) {
                *cap = (*cap).min(tail.div_ceil(SECTOR) * SECTOR);
            }
        }
        self.data.resize(size as usize, 0);
    }

    fn sectors(&self) -> u64 {
        self.caps.values().sum::<u64>() / SECTOR
    }
}

/// Contents, size, `st_blocks` and (one file per fs) `used` against the model.
fn same(fs: &FileSystem, f: Ino, m: &Model, what: &str) {
    let a = fs.getattr(f).unwrap();
    assert_eq!(a.size, m.data.len() as u64, "{what}: size");
    assert_eq!(a.blocks, m.sectors(), "{what}: st_blocks");
    assert_eq!(fs.stats().used, m.sectors() * SECTOR, "{what}: used");
    let got = read_all(fs, f);
    if got != m.data {
        let at = got.iter().zip(&m.data).position(|(a, b)| a != b).unwrap_or(got.len().min(m.data.len()));
        panic!("{what}: contents differ first at byte {at}");
    }
}

/// Sizes around every sector boundary of a block, and around block edges.
fn edge_sizes() -> Vec<u64> {
    let mut v = vec![1];
    for k in 1..=17 {
        let b = k * SECTOR;
        v.extend([b - 1, b, b + 1]);
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn one_write_takes_the_sectors_it_reaches() {
    for size in edge_sizes() {
        let fs = fs();
        let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8 + 1).collect();
        fs.write(f, 0, &data).unwrap();
        let mut m = Model::default();
        m.write(0, &data);
        same(&fs, f, &m, &format!("size {size}"));
        assert_eq!(fs.getattr(f).unwrap().blocks, size.div_ceil(SECTOR), "size {size}: tight");
        fs.check().unwrap();
    }
}

#[test]
fn appends_in_small_pieces_grow_the_tail_fragment() {
    for piece in [1usize, 7, 100, 511, 512, 513, 1000, 4095, 4097] {
        let fs = fs();
        let f = fs.create(ROOT, b"log", 0o644, 0, 0).unwrap().ino;
        let mut m = Model::default();
        let mut n = 0u64;
        while m.data.len() < 13_000 {
            let bytes: Vec<u8> = (0..piece).map(|i| (n as usize * 31 + i) as u8 | 1).collect();
            let at = fs.append(f, &bytes).unwrap();
            assert_eq!(at, m.data.len() as u64);
            m.write(at, &bytes);
            n += 1;
            same(&fs, f, &m, &format!("piece {piece}, append {n}"));
            if n.is_multiple_of(16) {
                fs.check().unwrap();
            }
        }
        // Appends end tight: every block but the last is whole.
        assert_eq!(fs.getattr(f).unwrap().blocks, (m.data.len() as u64).div_ceil(SECTOR), "piece {piece}");
        fs.check().unwrap();
    }
}

#[test]
fn rewrites_at_every_edge_keep_old_bytes_and_take_the_model_sectors() {
    let sizes = edge_sizes();
    for &first in &sizes {
        for &(at, len) in &[(0, 1), (first.saturating_sub(1), 2), (first, 600), (first + 511, 1), (4095, 2), (100, 4000), (4000, 5000)] {
            let fs = fs();
            let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
            let mut m = Model::default();
            let a = vec![0xA5u8; first as usize];
            fs.write(f, 0, &a).unwrap();
            m.write(0, &a);
            let b: Vec<u8> = (0..len).map(|i| (i % 7) as u8 + 0x30).collect();
            fs.write(f, at, &b).unwrap();
            m.write(at, &b);
            same(&fs, f, &m, &format!("{first} then {len} at {at}"));
            fs.check().unwrap();
        }
    }
}

#[test]
fn truncate_down_and_up_across_fragment_edges() {
    let sizes = edge_sizes();
    for &from in &[1000u64, 4096, 6000, 8192] {
        for &to in &sizes {
            let fs = fs();
            let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
            let mut m = Model::default();
            let data: Vec<u8> = (0..from).map(|i| (i % 200) as u8 + 1).collect();
            fs.write(f, 0, &data).unwrap();
            m.write(0, &data);
            let what = format!("{from} -> {to}");
            fs.setattr(f, &SetAttr { size: Some(to), ..Default::default() }).unwrap();
            m.truncate(to);
            same(&fs, f, &m, &what);
            // Back up past the fragment: zeros, no new space.
            fs.setattr(f, &SetAttr { size: Some(to + 5000), ..Default::default() }).unwrap();
            m.truncate(to + 5000);
            same(&fs, f, &m, &format!("{what} -> +5000"));
            // A write past the shrunk fragment's end, inside the same block: it grows, bytes before stay.
            let at = to + 700;
            fs.write(f, at, b"xyz").unwrap();
            m.write(at, b"xyz");
            same(&fs, f, &m, &format!("{what}, write at {at}"));
            fs.check().unwrap();
        }
    }
}

#[test]
fn random_io_against_the_model() {
    for seed in 1..=40u64 {
        let fs = fs();
        let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        let mut m = Model::default();
        let mut r = Rng::new(seed);
        for step in 0..300u32 {
            let size = m.data.len() as u64;
            match r.below(10) {
                0..=5 => {
                    // Offsets near sector and block edges, lengths that cross them.
                    let base = r.below(size / SECTOR + 3) * SECTOR;
                    let at = (base + r.below(5)).saturating_sub(r.below(3));
                    let len = [1, 2, 511, 512, 513, 700, 4095, 4096, 4097, 9000][r.below(10) as usize] as usize;
                    let bytes: Vec<u8> = (0..len).map(|_| r.below(255) as u8 + 1).collect();
                    fs.write(f, at, &bytes).unwrap();
                    m.write(at, &bytes);
                }
                6 => {
                    let bytes: Vec<u8> = (0..r.below(1500) + 1).map(|_| r.below(255) as u8 + 1).collect();
                    let at = fs.append(f, &bytes).unwrap();
                    m.write(at, &bytes);
                }
                _ => {
                    let to = (r.below(size / SECTOR + 4) * SECTOR + r.below(3)).saturating_sub(r.below(2));
                    fs.setattr(f, &SetAttr { size: Some(to), ..Default::default() }).unwrap();
                    m.truncate(to);
                }
            }
            same(&fs, f, &m, &format!("seed {seed} step {step}"));
            // Zero-copy reads at odd offsets deliver the same bytes.
            let (at, len) = (r.below(m.data.len() as u64 + 1), r.below(9000) as usize);
            let mut joined = Vec::new();
            let n = fs.read_with(f, at, len, &mut |s| joined.extend_from_slice(s)).unwrap();
            let want = &m.data[(at as usize).min(m.data.len())..(at as usize + len).min(m.data.len())];
            assert_eq!((n, &joined[..]), (want.len(), want), "seed {seed} step {step}: read_with {len} at {at}");
            if step.is_multiple_of(25) {
                fs.check().unwrap();
            }
        }
        fs.check().unwrap();
    }
}

#[test]
fn holes_and_fragments_read_as_zeros() {
    let fs = fs();
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    let mut m = Model::default();
    for (at, bytes) in [(100_000u64, &b"tail"[..]), (3, b"head"), (50_000, b"mid"), (50_600, b"more")] {
        fs.write(f, at, bytes).unwrap();
        m.write(at, bytes);
        same(&fs, f, &m, &format!("write at {at}"));
    }
    // Block 0 reaches 7 bytes: 1 sector; block 12 (from 49152) 851, then
    // 1452: 2, then 3 sectors; block 24 (from 98304) 1700: 4 sectors.
    assert_eq!(fs.getattr(f).unwrap().blocks, 1 + 3 + 4);
    fs.check().unwrap();
}

#[test]
fn enospc_when_a_fragment_must_grow_leaves_the_file_untouched() {
    let fs = fs_with(MIB, MIB);
    let big = fs.create(ROOT, b"big", 0o644, 0, 0).unwrap().ino;
    fs.write(big, 0, &vec![1u8; MIB - BLOCK_SIZE]).unwrap();
    // The last block: `small` in sector 0, seven 1-byte files after it.
    let small = fs.create(ROOT, b"small", 0o644, 0, 0).unwrap().ino;
    fs.write(small, 0, &[2u8; 100]).unwrap();
    let mut tiny = Vec::new();
    for i in 0..7 {
        let t = fs.create(ROOT, format!("t{i}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(t, 0, &[3]).unwrap();
        tiny.push(t);
    }
    assert_eq!(fs.stats().used, MIB as u64);
    let mut m = Model::default();
    m.write(0, &[2u8; 100]);
    // Past the sector: needs a 2-sector fragment; none left.
    assert_eq!(fs.write(small, 500, &[4u8; 100]).err(), Some(Errno::ENOSPC));
    assert_eq!(fs.append(small, &[4u8; 500]).err(), Some(Errno::ENOSPC));
    assert_eq!(fs.write(small, 0, &[4u8; 4096 + 1]).err(), Some(Errno::ENOSPC));
    let a = fs.getattr(small).unwrap();
    assert_eq!((a.size, a.blocks), (100, 1));
    assert_eq!(read_all(&fs, small), m.data);
    assert_eq!(fs.stats().used, MIB as u64);
    fs.check().unwrap();
    // Inside its sector, and sparse extension, need no space.
    fs.write(small, 100, &[5u8; 412]).unwrap();
    m.write(100, &[5u8; 412]);
    fs.setattr(small, &SetAttr { size: Some(3000), ..Default::default() }).unwrap();
    m.truncate(3000);
    assert_eq!(read_all(&fs, small), m.data);
    assert_eq!(fs.getattr(small).unwrap().blocks, 1);
    // Two adjacent free sectors: the fragment can move, then its old sector is free.
    fs.unlink(ROOT, b"t0").unwrap();
    fs.unlink(ROOT, b"t1").unwrap();
    fs.write(small, 600, b"grown").unwrap();
    m.write(600, b"grown");
    assert_eq!(read_all(&fs, small), m.data);
    assert_eq!(fs.getattr(small).unwrap().blocks, 2);
    assert_eq!(fs.stats().used, MIB as u64 - 512);
    fs.check().unwrap();
    // The freed sector takes a new 1-sector file, then the space is full again.
    let u = fs.create(ROOT, b"u", 0o644, 0, 0).unwrap().ino;
    fs.write(u, 0, b"u").unwrap();
    assert_eq!(fs.write(u, 0, &[6u8; 600]).err(), Some(Errno::ENOSPC));
    assert_eq!(read_all(&fs, u), b"u");
    fs.check().unwrap();
}

#[test]
fn space_freed_by_small_files_serves_whole_blocks() {
    let fs = fs_with(MIB, MIB);
    let per_sector = MIB / 512;
    let mut files = Vec::new();
    for i in 0..per_sector {
        let f = fs.create(ROOT, format!("s{i}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &[i as u8; 100]).unwrap();
        files.push(f);
    }
    assert_eq!(fs.stats().used, MIB as u64, "2048 small files fill 1 MiB exactly");
    let g = fs.create(ROOT, b"g", 0o644, 0, 0).unwrap().ino;
    assert_eq!(fs.write(g, 0, b"x").err(), Some(Errno::ENOSPC));
    fs.check().unwrap();
    // Scattered frees leave single free sectors: small files fit in them.
    for i in (1..per_sector).step_by(2) {
        fs.unlink(ROOT, format!("s{i}").as_bytes()).unwrap();
    }
    for i in (1..per_sector).step_by(2) {
        let f = fs.create(ROOT, format!("r{i}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &[7u8; 512]).unwrap();
    }
    assert_eq!(fs.stats().used, MIB as u64);
    fs.check().unwrap();
    // Freeing whole blocks' worth of small files makes room for a big file.
    for i in 0..per_sector {
        let _ = fs.unlink(ROOT, format!("s{i}").as_bytes());
        let _ = fs.unlink(ROOT, format!("r{i}").as_bytes());
        if i == per_sector / 2 - 1 {
            fs.write(g, 0, &vec![8u8; MIB / 2]).unwrap();
        }
    }
    assert_eq!(fs.stats().used, MIB as u64 / 2);
    fs.write(g, MIB as u64 / 2, &vec![9u8; MIB / 2]).unwrap();
    assert_eq!(fs.stats().used, MIB as u64);
    assert_eq!(fs.getattr(g).unwrap().blocks, (MIB / 512) as u64);
    assert_eq!(fs.stats().capacity, MIB as u64);
    fs.check().unwrap();
    for (i, f) in files.iter().enumerate() {
        assert_eq!(fs.getattr(*f).err(), Some(Errno::ENOENT), "s{i} was removed");
    }
}

#[test]
fn many_small_files_share_blocks_and_survive_mixed_deletes() {
    let fs = fs();
    let mut r = Rng::new(7);
    let mut live: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for round in 0..3000u32 {
        let name = format!("f{}", r.below(400));
        match live.get(&name) {
            Some(_) if r.below(3) == 0 => {
                fs.unlink(ROOT, name.as_bytes()).unwrap();
                live.remove(&name);
            }
            Some(old) => {
                let f = fs.lookup(ROOT, name.as_bytes()).unwrap().ino;
                let extra: Vec<u8> = (0..r.below(700) + 1).map(|_| round as u8 | 1).collect();
                fs.append(f, &extra).unwrap();
                let mut new = old.clone();
                new.extend(extra);
                live.insert(name, new);
            }
            None => {
                let f = fs.create(ROOT, name.as_bytes(), 0o644, 0, 0).unwrap().ino;
                let bytes: Vec<u8> = (0..r.below(5000) + 1).map(|i| (i as u32 ^ round) as u8).collect();
                fs.write(f, 0, &bytes).unwrap();
                live.insert(name, bytes);
            }
        }
        if round.is_multiple_of(250) {
            fs.check().unwrap();
        }
    }
    let mut sectors = 0;
    for (name, bytes) in &live {
        let f = fs.lookup(ROOT, name.as_bytes()).unwrap().ino;
        assert_eq!(&read_all(&fs, f), bytes, "{name}");
        sectors += fs.getattr(f).unwrap().blocks;
    }
    assert_eq!(fs.stats().used, sectors * 512);
    fs.check().unwrap();
}

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};

use shared_fs::*;

pub const MIB: usize = 1 << 20;

/// A clock that ticks one second per call, so every timestamp change is visible.
pub fn ticking_clock() -> Timespec {
    static NOW: AtomicI64 = AtomicI64::new(1_000_000);
    Timespec { sec: NOW.fetch_add(1, Ordering::Relaxed), nsec: 0 }
}

pub fn fs_with(initial: usize, max: usize) -> FileSystem {
    FileSystem::new(Config { initial_bytes: initial, max_bytes: max, clock: ticking_clock }).expect("new")
}

pub fn fs() -> FileSystem {
    fs_with(MIB, 64 * MIB)
}

pub fn names(fs: &FileSystem, dir: Ino) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    fs.readdir(dir, 0, &mut |e| {
        out.push(e.name);
        true
    })
    .expect("readdir");
    out
}

pub fn read_all(fs: &FileSystem, ino: Ino) -> Vec<u8> {
    let size = fs.getattr(ino).expect("getattr").size as usize;
    let mut buf = vec![0u8; size];
    let n = fs.read(ino, 0, &mut buf).expect("read");
    buf.truncate(n);
    buf
}

/// Small deterministic PRNG (xorshift64*), so failures reproduce per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

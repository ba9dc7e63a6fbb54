//! fsx-style exerciser: random reads, writes (also far past EOF, leaving
//! holes), appends, truncates (shrink and extend) on one file, each checked
//! byte for byte against a plain `Vec<u8>` model, with the file's size and
//! block accounting and the filesystem invariants checked along the way.
//!
//! Environment:
//!   FSX_OPS   operations per run (default 100000; `FSX_OPS=1000000` for
//!             the long run: cargo test --release -p shared-fs --test fsx -- --nocapture)
//!   FSX_SEED  seed (default 1)
//! A failure prints the seed and the last operations.

mod common;

use common::Rng;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;

#[derive(Debug, Clone)]
enum Op {
    Read { offset: u64, len: usize },
    ReadWith { offset: u64, len: usize },
    Write { offset: u64, len: usize, seed: u8 },
    Append { len: usize, seed: u8 },
    Truncate { size: u64 },
}

struct Fsx {
    fs: FileSystem,
    ino: Ino,
    model: Vec<u8>,
    rng: Rng,
    max_len: u64,
    history: Vec<Op>,
    counts: [u64; 5],
    enospc: u64,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pattern(len: usize, seed: u8, offset: u64) -> Vec<u8> {
    // Depends on the offset too, so misplaced bytes are caught.
    (0..len).map(|i| seed ^ ((offset as usize + i) as u8).wrapping_mul(31) | 1).collect()
}

impl Fsx {
    fn new(seed: u64, max_bytes: usize, max_len: u64) -> Fsx {
        let fs = FileSystem::new(Config { initial_bytes: 0, max_bytes, clock: zero_clock }).unwrap();
        let ino = fs.create(ROOT, b"fsx", 0o644, 0, 0).unwrap().ino;
        fs.open(ino).unwrap();
        Fsx { fs, ino, model: Vec::new(), rng: Rng::new(seed), max_len, history: Vec::new(), counts: [0; 5], enospc: 0 }
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<_> = self.history.iter().rev().take(12).rev().map(|o| format!("{o:?}")).collect();
        panic!("{what}\nlast operations:\n  {}", tail.join("\n  "));
    }

    /// Offsets favour the interesting places: 0, around EOF, block edges, far past EOF.
    fn offset(&mut self) -> u64 {
        let size = self.model.len() as u64;
        let r = &mut self.rng;
        match r.below(10) {
            0 => 0,
            1 | 2 => size.saturating_sub(r.below(100)) + r.below(100),
            3 => (r.below(self.max_len / BLOCK_SIZE as u64 + 1) * BLOCK_SIZE as u64).saturating_sub(r.below(3)),
            4 => size + r.below(3 * BLOCK_SIZE as u64), // a hole past EOF
            _ => r.below(self.max_len),
        }
    }

    fn len(&mut self) -> usize {
        match self.rng.below(10) {
            0 => 0,
            1..=5 => self.rng.below(600) as usize,
            6..=8 => self.rng.below(3 * BLOCK_SIZE as u64) as usize,
            _ => self.rng.below(64 * 1024) as usize,
        }
    }

    fn expect_range(&self, offset: u64, len: usize) -> &[u8] {
        let size = self.model.len();
        let start = (offset as usize).min(size);
        &self.model[start..(start + len).min(size)]
    }

    fn step(&mut self) {
        let op = match self.rng.below(100) {
            0..=29 => Op::Read { offset: self.offset(), len: self.len() },
            30..=34 => Op::ReadWith { offset: self.offset(), len: self.len() },
            35..=69 => {
                let (offset, len) = (self.offset(), self.len());
                let len = len.min(self.max_len.saturating_sub(offset) as usize);
                Op::Write { offset, len, seed: self.rng.below(256) as u8 }
            }
            70..=79 => {
                let len = self.len().min(self.max_len.saturating_sub(self.model.len() as u64) as usize);
                Op::Append { len, seed: self.rng.below(256) as u8 }
            }
            _ => Op::Truncate { size: self.offset().min(self.max_len) },
        };
        self.history.push(op.clone());
        if self.history.len() > 64 {
            self.history.drain(..32);
        }
        let fs = &self.fs;
        match op {
            Op::Read { offset, len } => {
                self.counts[0] += 1;
                let mut buf = vec![0xAA; len];
                let n = fs.read(self.ino, offset, &mut buf).unwrap_or_else(|e| self.fail(format!("read: {e}")));
                if buf[..n] != *self.expect_range(offset, len) {
                    let want = self.expect_range(offset, len);
                    let at = buf[..n].iter().zip(want).position(|(a, b)| a != b).unwrap_or(n.min(want.len()));
                    self.fail(format!("read {len}@{offset}: got {n} bytes, want {}; first difference at +{at}", want.len()));
                }
            }
            Op::ReadWith { offset, len } => {
                self.counts[1] += 1;
                let mut got = Vec::new();
                let n = fs
                    .read_with(self.ino, offset, len, &mut |b| got.extend_from_slice(b))
                    .unwrap_or_else(|e| self.fail(format!("read_with: {e}")));
                if n != got.len() || got != self.expect_range(offset, len) {
                    self.fail(format!("read_with {len}@{offset} differs (n {n}, got {})", got.len()));
                }
            }
            Op::Write { offset, len, seed } => {
                self.counts[2] += 1;
                let data = pattern(len, seed, offset);
                match fs.write(self.ino, offset, &data) {
                    Ok(n) if n == len => {
                        // A zero-length write changes nothing, not even the size.
                        if len > 0 {
                            let end = offset as usize + len;
                            if self.model.len() < end {
                                self.model.resize(end, 0);
                            }
                            self.model[offset as usize..end].copy_from_slice(&data);
                        }
                    }
                    Err(Errno::ENOSPC) => self.enospc += 1, // all or nothing: the model stays
                    other => self.fail(format!("write {len}@{offset}: {other:?}")),
                }
            }
            Op::Append { len, seed } => {
                self.counts[3] += 1;
                let at = self.model.len() as u64;
                let data = pattern(len, seed, at);
                match fs.append(self.ino, &data) {
                    Ok(got_at) if got_at == at => self.model.extend_from_slice(&data),
                    Err(Errno::ENOSPC) => self.enospc += 1,
                    other => self.fail(format!("append {len} at {at}: {other:?}")),
                }
            }
            Op::Truncate { size } => {
                self.counts[4] += 1;
                let set = SetAttr { size: Some(size), ..SetAttr::default() };
                fs.setattr(self.ino, &set).unwrap_or_else(|e| self.fail(format!("truncate {size}: {e}")));
                self.model.resize(size as usize, 0);
            }
        }
        let attr = self.fs.getattr(self.ino).unwrap();
        if attr.size != self.model.len() as u64 {
            self.fail(format!("size {} but model has {}", attr.size, self.model.len()));
        }
        // Never more blocks than the size needs (holes stay unallocated).
        let max_blocks = attr.size.div_ceil(BLOCK_SIZE as u64) * (BLOCK_SIZE as u64 / 512);
        if attr.blocks > max_blocks {
            self.fail(format!("{} blocks for size {}", attr.blocks, attr.size));
        }
    }

    fn verify_all(&self) {
        let mut buf = vec![0; self.model.len() + 10];
        let n = self.fs.read(self.ino, 0, &mut buf).unwrap();
        if buf[..n] != self.model[..] {
            self.fail(format!("whole-file compare failed (read {n}, model {})", self.model.len()));
        }
        self.fs.check().unwrap_or_else(|e| self.fail(format!("check: {e}")));
    }

    fn run(&mut self, ops: u64) {
        for i in 0..ops {
            self.step();
            if i % 2000 == 1999 {
                self.verify_all();
            }
            // Midway, unlink the (open) file: it must keep working.
            if i == ops / 2 {
                self.fs.unlink(ROOT, b"fsx").unwrap();
            }
        }
        self.verify_all();
        let used = self.fs.stats().used;
        self.fs.release(self.ino);
        assert_eq!(self.fs.getattr(self.ino).err(), Some(Errno::ENOENT));
        assert_eq!(self.fs.stats().used, 0, "the unlinked file's {used} bytes were not freed on release");
        self.fs.check().unwrap();
    }
}

#[test]
fn fsx_random_io_matches_model() {
    let ops = env("FSX_OPS", 100_000);
    let seed = env("FSX_SEED", 1);
    // Plenty of space: every operation succeeds.
    let mut big = Fsx::new(seed, 64 << 20, 1 << 20);
    big.run(ops);
    // Tight space: writes hit ENOSPC and must leave the file untouched.
    let mut tight = Fsx::new(seed ^ 0x5eed, 128 << 10, 2 << 20);
    tight.run(ops / 4);
    assert!(tight.enospc > 0, "the tight run never hit ENOSPC");
    println!(
        "fsx: {} ops on a roomy fs (read {}, read_with {}, write {}, append {}, truncate {}), \
         {} ops on a tight fs ({} ENOSPC left the file intact), seed {seed}",
        ops, big.counts[0], big.counts[1], big.counts[2], big.counts[3], big.counts[4], ops / 4, tight.enospc
    );
}

//! The space WordPress takes once unpacked: every file of `wp-6.5.zip` (the
//! archive the first worker unpacks) written into a FileSystem (one write per
//! file, as the worker's unpacker does), then `used` and `capacity` compared
//! with the bytes stored.
//!
//! The archive is the one `npm ci` (scripts/setup.sh) puts in node_modules,
//! so the test runs before any build; a missing archive is a failure, never
//! a skip (run `make setup`). `WP_ZIP` names another archive, `WP_DIR` a
//! folder to measure instead.
//!
//! `cargo test -p shared-fs --release --test wordpress_space -- --nocapture`

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use shared_fs::*;

/// Path components, and the bytes of a file (`None`: a directory).
type Tree = BTreeMap<Vec<Vec<u8>>, Option<Vec<u8>>>;

/// (shared_fs exports its own `Result`.)
type Parsed<T> = std::result::Result<T, String>;

fn source() -> PathBuf {
    if let Some(dir) = std::env::var_os("WP_DIR") {
        return dir.into();
    }
    match std::env::var_os("WP_ZIP") {
        Some(zip) => zip.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../node_modules/@wp-playground/wordpress-builds/src/wordpress/wp-6.5.zip"),
    }
}

/// The input, read once for both tests.
fn wordpress() -> &'static (PathBuf, Tree) {
    static TREE: OnceLock<(PathBuf, Tree)> = OnceLock::new();
    TREE.get_or_init(|| {
        let src = source();
        let mut tree = Tree::new();
        if src.is_dir() {
            read_dir_tree(&src, &mut Vec::new(), &mut tree);
        } else {
            let zip = std::fs::read(&src).unwrap_or_else(|e| {
                panic!("{}: {e}; `make setup` (npm ci) installs it, or set WP_ZIP / WP_DIR", src.display())
            });
            read_zip_tree(&zip, &mut tree).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        }
        let files = tree.values().filter(|v| v.is_some()).count();
        // wp-6.5.zip holds 1359 files: far fewer means a wrong or cut input.
        assert!(files > 1000, "{}: only {files} files", src.display());
        (src, tree)
    })
}

fn read_dir_tree(dir: &Path, at: &mut Vec<Vec<u8>>, tree: &mut Tree) {
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        at.push(e.file_name().as_encoded_bytes().to_vec());
        let kind = e.file_type().expect("file type");
        if kind.is_dir() {
            tree.insert(at.clone(), None);
            read_dir_tree(&e.path(), at, tree);
        } else if kind.is_file() {
            tree.insert(at.clone(), Some(std::fs::read(e.path()).expect("read")));
        }
        at.pop();
    }
}

fn u16_at(b: &[u8], at: usize) -> Parsed<usize> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize).ok_or_else(|| "truncated zip".into())
}

fn u32_at(b: &[u8], at: usize) -> Parsed<u32> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| "truncated zip".into())
}

/// Every entry of a zip (stored or deflated, no zip64), CRC-checked.
fn read_zip_tree(zip: &[u8], tree: &mut Tree) -> Parsed<()> {
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(zip, i) == Ok(0x0605_4b50))
        .ok_or("no end of central directory")?;
    let (count, mut at) = (u16_at(zip, end + 10)?, u32_at(zip, end + 16)? as usize);
    for _ in 0..count {
        if u32_at(zip, at)? != 0x0201_4b50 {
            return Err(format!("no central header at {at}"));
        }
        let (method, crc) = (u16_at(zip, at + 10)?, u32_at(zip, at + 16)?);
        let (packed, size) = (u32_at(zip, at + 20)? as usize, u32_at(zip, at + 24)? as usize);
        let name_len = u16_at(zip, at + 28)?;
        let local = u32_at(zip, at + 42)? as usize;
        let name = zip.get(at + 46..at + 46 + name_len).ok_or("truncated name")?;
        at += 46 + name_len + u16_at(zip, at + 30)? + u16_at(zip, at + 32)?;

        let path: Vec<Vec<u8>> = name.split(|&c| c == b'/').filter(|c| !c.is_empty()).map(<[u8]>::to_vec).collect();
        for depth in 1..path.len() {
            tree.entry(path[..depth].to_vec()).or_insert(None);
        }
        if name.ends_with(b"/") {
            tree.entry(path).or_insert(None);
            continue;
        }
        let start = local + 30 + u16_at(zip, local + 26)? + u16_at(zip, local + 28)?;
        let raw = zip.get(start..start + packed).ok_or("truncated entry")?;
        let data = match method {
            0 => raw.to_vec(),
            8 => inflate(raw)?,
            m => return Err(format!("compression method {m}")),
        };
        let name = String::from_utf8_lossy(name);
        if data.len() != size || crc32(&data) != crc {
            return Err(format!("{name}: size or CRC differs from the central directory"));
        }
        tree.insert(path, Some(data));
    }
    Ok(())
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

fn inflate(raw: &[u8]) -> Parsed<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec(raw).map_err(|e| format!("inflate: {e:?}"))
}

/// Writes the tree into a FileSystem; returns (files, bytes).
fn copy_tree(fs: &FileSystem, tree: &Tree, write: &dyn Fn(&FileSystem, Ino, &[u8])) -> (u64, u64) {
    // Parents sort before their children, so each parent exists when needed.
    let mut dirs: HashMap<&[Vec<u8>], Ino> = HashMap::from([(&[][..], FileSystem::ROOT)]);
    let (mut files, mut bytes) = (0, 0);
    for (path, data) in tree {
        let (name, parent) = path.split_last().expect("a path");
        let at = dirs[parent];
        match data {
            None => {
                dirs.insert(path, fs.mkdir(at, name, 0o755, 0, 0).expect("mkdir").ino);
            }
            Some(data) => {
                let f = fs.create(at, name, 0o644, 0, 0).expect("create").ino;
                write(fs, f, data);
                files += 1;
                bytes += data.len() as u64;
            }
        }
    }
    (files, bytes)
}

fn measure(label: &str, write: &dyn Fn(&FileSystem, Ino, &[u8])) -> (u64, Stats) {
    let (src, tree) = wordpress();
    let fs = fs_with(MIB, 256 * MIB);
    let (files, bytes) = copy_tree(&fs, tree, write);
    fs.check().unwrap();
    let s = fs.stats();
    let mb = |n: u64| n as f64 / 1e6;
    println!(
        "{} {label}: {files} files, {:.2} MB stored; used {:.2} MB ({:.3}x), capacity {:.2} MB ({:.3}x)",
        src.display(),
        mb(bytes),
        mb(s.used),
        s.used as f64 / bytes as f64,
        mb(s.capacity),
        s.capacity as f64 / bytes as f64,
    );
    (bytes, s)
}

#[test]
fn wordpress_fits_in_little_more_than_its_bytes() {
    let (bytes, s) = measure("one write per file", &|fs, f, data| {
        fs.write(f, 0, data).expect("write");
    });
    // Tails take 512-byte sectors: < 3 % over the bytes (whole 4 KiB blocks: 23 %).
    assert!(s.used as f64 <= bytes as f64 * 1.03, "used {} for {bytes} bytes", s.used);
    assert!(s.capacity as f64 <= bytes as f64 * 1.25, "capacity {} for {bytes} bytes", s.capacity);
}

#[test]
fn wordpress_written_in_small_appends_packs_as_well() {
    // PHP's stream layer writes 8 KiB at a time; odd pieces are the worst case
    // for tails (every append regrows the last fragment).
    let (bytes, s) = measure("appends of 1000 bytes", &|fs, f, data| {
        for piece in data.chunks(1000) {
            fs.append(f, piece).expect("append");
        }
    });
    assert!(s.used as f64 <= bytes as f64 * 1.03, "used {} for {bytes} bytes", s.used);
}

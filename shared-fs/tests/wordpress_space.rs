//! The space WordPress takes once unpacked: every file of
//! `dist/wordpress/wp-6.5/` written into a FileSystem (one write per file,
//! as the worker's unpacker does), then `used` and `capacity` compared with
//! the bytes stored. Skipped, with a message, when the folder is absent.
//!
//! `cargo test -p shared-fs --release --test wordpress_space -- --nocapture`

mod common;

use std::path::{Path, PathBuf};

use common::*;
use shared_fs::*;

/// `WP_DIR` overrides the folder (e.g. the 1359 files of `wp-6.5.zip`
/// extracted somewhere, which is what the runtime really unpacks).
fn wordpress_dir() -> PathBuf {
    match std::env::var_os("WP_DIR") {
        Some(dir) => dir.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/wordpress/wp-6.5"),
    }
}

/// Copies `dir` into `at`; returns (files, bytes).
fn copy_tree(fs: &FileSystem, dir: &Path, at: Ino, write: &dyn Fn(&FileSystem, Ino, &[u8])) -> (u64, u64) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry")).collect();
    entries.sort_by_key(|e| e.file_name());
    let (mut files, mut bytes) = (0, 0);
    for e in entries {
        let name = e.file_name();
        let name = name.as_encoded_bytes();
        let kind = e.file_type().expect("file type");
        if kind.is_dir() {
            let d = fs.mkdir(at, name, 0o755, 0, 0).expect("mkdir").ino;
            let (f, b) = copy_tree(fs, &e.path(), d, write);
            files += f;
            bytes += b;
        } else if kind.is_file() {
            let data = std::fs::read(e.path()).expect("read");
            let f = fs.create(at, name, 0o644, 0, 0).expect("create").ino;
            write(fs, f, &data);
            files += 1;
            bytes += data.len() as u64;
        }
    }
    (files, bytes)
}

fn measure(label: &str, write: &dyn Fn(&FileSystem, Ino, &[u8])) -> Option<(u64, Stats)> {
    let dir = wordpress_dir();
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} is absent (unpack dist/wordpress/wp-6.5.zip there to measure)", dir.display());
        return None;
    }
    let fs = fs_with(MIB, 256 * MIB);
    let (files, bytes) = copy_tree(&fs, &dir, FileSystem::ROOT, write);
    fs.check().unwrap();
    let s = fs.stats();
    let mb = |n: u64| n as f64 / 1e6;
    println!(
        "{} {label}: {files} files, {:.2} MB stored; used {:.2} MB ({:.3}x), capacity {:.2} MB ({:.3}x)",
        dir.display(),
        mb(bytes),
        mb(s.used),
        s.used as f64 / bytes as f64,
        mb(s.capacity),
        s.capacity as f64 / bytes as f64,
    );
    Some((bytes, s))
}

#[test]
fn wordpress_fits_in_little_more_than_its_bytes() {
    let Some((bytes, s)) = measure("one write per file", &|fs, f, data| {
        fs.write(f, 0, data).expect("write");
    }) else {
        return;
    };
    // Tails take 512-byte sectors: < 3 % over the bytes (whole 4 KiB blocks: 23 %).
    assert!(s.used as f64 <= bytes as f64 * 1.03, "used {} for {bytes} bytes", s.used);
    assert!(s.capacity as f64 <= bytes as f64 * 1.25, "capacity {} for {bytes} bytes", s.capacity);
}

#[test]
fn wordpress_written_in_small_appends_packs_as_well() {
    // PHP's stream layer writes 8 KiB at a time; odd pieces are the worst case
    // for tails (every append regrows the last fragment).
    let Some((bytes, s)) = measure("appends of 1000 bytes", &|fs, f, data| {
        for piece in data.chunks(1000) {
            fs.append(f, piece).expect("append");
        }
    }) else {
        return;
    };
    assert!(s.used as f64 <= bytes as f64 * 1.03, "used {} for {bytes} bytes", s.used);
}

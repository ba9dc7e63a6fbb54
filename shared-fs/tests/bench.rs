//! Rough timings, not assertions: `cargo test --release --test bench -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use shared_fs::oflags::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;

fn time(label: &str, iters: u32, mut f: impl FnMut(u32)) {
    let start = Instant::now();
    for i in 0..iters {
        f(i);
    }
    let per = start.elapsed().as_nanos() as f64 / iters as f64;
    println!("{label:<40} {per:>10.0} ns/op");
}

#[test]
#[ignore]
fn rough_timings() {
    let fs = fs_with(MIB, 512 * MIB);
    let mut dir = ROOT;
    for name in [&b"wp-content"[..], b"plugins", b"akismet"] {
        dir = fs.mkdir(dir, name, 0o755, 0, 0).unwrap().ino;
    }
    for i in 0..200 {
        let f = fs.create(dir, format!("file{i}.php").as_bytes(), 0o644, 0, 0).unwrap();
        fs.write(f.ino, 0, &[b'x'; 3000]).unwrap();
    }
    let path = b"/wp-content/plugins/akismet/file100.php";
    time("resolve (stat) of a 4-component path", 200_000, |_| {
        fs.resolve(ROOT, path, true).unwrap();
    });
    time("open_path + read 100 B + release", 200_000, |_| {
        let a = fs.open_path(ROOT, path, O_RDONLY, 0).unwrap();
        let mut buf = [0u8; 100];
        fs.read(a.ino, 0, &mut buf).unwrap();
        fs.release(a.ino);
    });
    let big = fs.create(ROOT, b"big", 0o644, 0, 0).unwrap().ino;
    let mb = vec![7u8; MIB];
    time("write 1 MiB (fresh file each time)", 200, |i| {
        let f = fs.create(ROOT, format!("w{i}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &mb).unwrap();
        fs.unlink(ROOT, format!("w{i}").as_bytes()).unwrap();
    });
    fs.write(big, 0, &mb).unwrap();
    let mut out = vec![0u8; MIB];
    time("read 1 MiB", 2000, |_| {
        fs.read(big, 0, &mut out).unwrap();
    });
    time("create + write 100 B + unlink", 100_000, |i| {
        let name = format!("t{i}");
        let f = fs.create(ROOT, name.as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &[1u8; 100]).unwrap();
        fs.unlink(ROOT, name.as_bytes()).unwrap();
    });
    time("pread 4 KiB at random block", 500_000, |i| {
        let mut buf = [0u8; 4096];
        fs.read(big, (i as u64 * 7919 % 256) * 4096, &mut buf).unwrap();
    });
    fs.check().unwrap();
}

//! Space accounting: growth, ENOSPC at the limit, reuse of freed blocks.

mod common;

use common::*;
use shared_fs::*;

const ROOT: Ino = FileSystem::ROOT;

#[test]
fn grows_on_demand_up_to_max() {
    let fs = fs_with(0, 8 * MIB);
    assert_eq!(fs.stats().capacity, 0);
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    fs.write(f.ino, 0, &[1]).unwrap();
    let cap = fs.stats().capacity;
    assert!(cap > 0 && cap <= 8 * MIB as u64);
    fs.write(f.ino, 0, &vec![2u8; 6 * MIB]).unwrap();
    assert!(fs.stats().capacity >= 6 * MIB as u64);
    assert!(fs.stats().capacity <= 8 * MIB as u64);
    fs.check().unwrap();
}

#[test]
fn enospc_at_max_keeps_earlier_data() {
    let fs = fs_with(MIB, 2 * MIB);
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    let chunk = vec![0x5Au8; 256 * 1024];
    let mut off = 0u64;
    let err = loop {
        match fs.write(f.ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Errno::ENOSPC);
    assert_eq!(off, 2 * MIB as u64, "exactly max bytes fit");
    assert_eq!(fs.stats().capacity, 2 * MIB as u64);
    assert_eq!(fs.statfs().blocks_free, 0);
    // All-or-nothing: a failed write leaves size and data untouched.
    assert_eq!(fs.write(f.ino, off - 10, &[1u8; 4096 + 20]).err(), Some(Errno::ENOSPC));
    assert_eq!(fs.getattr(f.ino).unwrap().size, off);
    let data = read_all(&fs, f.ino);
    assert!(data.iter().all(|&b| b == 0x5A));
    // Other files cannot get space either, but metadata still works.
    let g = fs.create(ROOT, b"g", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(g.ino, 0, b"x").err(), Some(Errno::ENOSPC));
    assert_eq!(fs.append(g.ino, b"x").err(), Some(Errno::ENOSPC));
    // Overwriting allocated bytes and sparse extension need no space.
    fs.write(f.ino, 0, b"still writable").unwrap();
    fs.setattr(g.ino, &SetAttr { size: Some(1 << 40), ..Default::default() }).unwrap();
    assert_eq!(fs.read(g.ino, 1 << 39, &mut [1u8; 16]).unwrap(), 16);
    // Freeing space makes writes possible again.
    fs.setattr(f.ino, &SetAttr { size: Some(MIB as u64), ..Default::default() }).unwrap();
    fs.write(g.ino, 0, &vec![3u8; MIB]).unwrap();
    fs.check().unwrap();
}

#[test]
fn ten_times_capacity_write_delete_loop_never_enospc() {
    let max = 4 * MIB;
    let fs = fs_with(MIB, max);
    let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    let mut written = 0usize;
    let mut round = 0u32;
    while written < 10 * max {
        let name = format!("f{round}");
        let f = fs.create(ROOT, name.as_bytes(), 0o644, 0, 0).unwrap();
        // Mixed sizes and offsets so freed blocks get reused in other shapes.
        let len = 1000 + (round as usize * 7919) % payload.len();
        fs.write(f.ino, (round % 3) as u64 * 1000, &payload[..len]).unwrap();
        written += len;
        if round % 2 == 1 {
            // Delete the previous one while this one is open (pinned) then this one.
            fs.open(f.ino).unwrap();
            fs.unlink(ROOT, format!("f{}", round - 1).as_bytes()).unwrap();
            fs.unlink(ROOT, name.as_bytes()).unwrap();
            fs.release(f.ino);
        }
        round += 1;
    }
    assert!(fs.stats().capacity <= max as u64);
    assert!(fs.stats().high_water <= max as u64);
    fs.check().unwrap();
}

#[test]
fn rewriting_one_big_file_reuses_blocks() {
    let max = 2 * MIB;
    let fs = fs_with(0, max);
    let data = vec![9u8; 1536 * 1024];
    for i in 0..40 {
        let f = fs.open_path(ROOT, b"/big", oflags::O_CREAT | oflags::O_TRUNC | oflags::O_WRONLY, 0o644).unwrap();
        fs.write(f.ino, 0, &data).unwrap_or_else(|e| panic!("round {i}: {e}"));
        fs.release(f.ino);
    }
    assert_eq!(fs.stats().used, data.len() as u64);
    fs.check().unwrap();
}

#[test]
fn zero_max_means_metadata_only() {
    let fs = fs_with(0, 0);
    let f = fs.create(ROOT, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(f.ino, 0, b"x").err(), Some(Errno::ENOSPC));
    fs.symlink(ROOT, b"l", b"f", 0, 0).unwrap();
    assert_eq!(fs.resolve(ROOT, b"/l", true).unwrap().ino, f.ino);
    fs.check().unwrap();
}

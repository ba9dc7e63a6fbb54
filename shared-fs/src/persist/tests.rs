use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::format::HEADER_LEN;
use super::{Saved, Sink as _, StoredFile};
use crate::errno::Errno;
use crate::types::*;
use crate::FileSystem;

fn config() -> Config {
    Config { initial_bytes: 1 << 20, max_bytes: 256 << 20, clock: || Timespec { sec: 1_700_000_000, nsec: 5 } }
}

/// Everything a reader can see, by path: kind, mode, owner, size, link
/// count, times, content (files), target (symlinks), rdev.
fn tree(fs: &FileSystem) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(fs, FileSystem::ROOT, String::new(), &mut out);
    out
}

fn walk(fs: &FileSystem, dir: Ino, path: String, out: &mut BTreeMap<String, String>) {
    let mut entries = Vec::new();
    fs.readdir(dir, 0, &mut |e| {
        entries.push(e);
        true
    })
    .unwrap();
    for e in entries {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
        let a = fs.getattr(e.ino).unwrap();
        assert_eq!(a.kind, e.kind, "{p}: entry kind");
        let body = match a.kind {
            FileKind::File => {
                let mut buf = vec![0u8; a.size as usize];
                assert_eq!(fs.read(e.ino, 0, &mut buf).unwrap(), buf.len());
                format!("{:x}", crate::persist::format::crc32(0, &buf))
            }
            FileKind::Symlink => String::from_utf8_lossy(&fs.readlink(e.ino).unwrap()).into_owned(),
            _ => String::new(),
        };
        out.insert(p.clone(), format!("{:?} {:o} {}:{} size {} links {} m{:?} c{:?} rdev {} {body}", a.kind, a.mode, a.uid, a.gid, a.size, a.nlink, a.mtime, a.ctime, a.rdev));
        if a.kind == FileKind::Dir {
            walk(fs, e.ino, p, out);
        }
    }
}

fn open(bytes: &[u8]) -> super::Opened {
    let mut src = bytes;
    FileSystem::open_saved(config(), &mut [StoredFile { name: "log", source: &mut src }]).unwrap().expect("a saved state")
}

fn sample(fs: &FileSystem) {
    let r = FileSystem::ROOT;
    let d = fs.mkdir(r, b"dir", 0o755, 1, 2).unwrap().ino;
    let sub = fs.mkdir(d, b"sub", 0o700, 0, 0).unwrap().ino;
    let f = fs.create(d, b"a.txt", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, b"hello world").unwrap();
    let big = fs.create(sub, b"big", 0o600, 0, 0).unwrap().ino;
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs.write(big, 0, &data).unwrap();
    let sparse = fs.create(r, b"sparse", 0o644, 0, 0).unwrap().ino;
    fs.write(sparse, 1 << 20, b"end").unwrap();
    fs.link(f, r, b"hard").unwrap();
    fs.symlink(r, b"ln", b"dir/a.txt", 0, 0).unwrap();
    fs.mknod(r, b"fifo", S_IFIFO | 0o600, 0, 0, 0).unwrap();
    fs.create(r, b"empty", 0o644, 0, 0).unwrap();
}

#[test]
fn an_image_opens_as_the_same_tree() {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    let mut log = Vec::new();
    let saved = fs.save_image(&mut log, 0, 1).unwrap();
    assert_eq!(saved.end, log.len() as u64);
    let opened = open(&log);
    assert_eq!(opened.notice, None);
    assert_eq!((opened.generation, opened.next_index, opened.end), (1, 1, log.len() as u64));
    opened.fs.check().unwrap();
    assert_eq!(tree(&opened.fs), tree(&fs));
    // A hole stays a hole: no block stored for it.
    let used = opened.fs.stats();
    assert_eq!(used.used, fs.stats().used);
}

/// Saves every change since the last save at the log's end.
fn save(fs: &FileSystem, log: &mut Vec<u8>, index: &mut u32) -> Option<Saved> {
    let at = log.len() as u64;
    let saved = fs.save_changes(log, at, 1, *index).unwrap();
    fs.mark_saved(saved.covers);
    if saved.bytes == 0 {
        return None;
    }
    *index += 1;
    Some(saved)
}

#[test]
fn change_batches_replay_every_kind_of_change() {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let mut index = 1;
    assert_eq!(save(&fs, &mut log, &mut index), None, "nothing changed");
    let r = FileSystem::ROOT;
    let dir = fs.lookup(r, b"dir").unwrap().ino;
    let a = fs.lookup(dir, b"a.txt").unwrap().ino;
    let mut states = vec![tree(&fs)];
    let steps: Vec<Box<dyn Fn(&FileSystem)>> = vec![
        Box::new(move |fs| {
            fs.write(a, 4096 * 3 + 10, b"far").unwrap();
        }),
        Box::new(move |fs| {
            fs.setattr(a, &SetAttr { size: Some(5), mode: Some(0o600), ..Default::default() }).unwrap();
        }),
        Box::new(move |fs| fs.rename(r, b"dir", r, b"moved").unwrap()),
        Box::new(move |fs| fs.unlink(r, b"hard").unwrap()),
        Box::new(move |fs| {
            let moved = fs.lookup(r, b"moved").unwrap().ino;
            fs.rename(moved, b"sub", r, b"sub-out").unwrap();
            let n = fs.create(r, b"new", 0o644, 0, 0).unwrap().ino;
            fs.write(n, 0, &[7u8; 9000]).unwrap();
            fs.rename(r, b"new", r, b"empty").unwrap();
        }),
        Box::new(move |fs| {
            let sub = fs.lookup(r, b"sub-out").unwrap().ino;
            fs.unlink(sub, b"big").unwrap();
            fs.rmdir(r, b"sub-out").unwrap();
            fs.append(a, b"+tail").unwrap();
        }),
    ];
    for step in &steps {
        step(&fs);
        assert!(save(&fs, &mut log, &mut index).is_some());
        states.push(tree(&fs));
    }
    let opened = open(&log);
    assert_eq!(opened.notice, None);
    assert_eq!(opened.next_index, index);
    opened.fs.check().unwrap();
    assert_eq!(tree(&opened.fs), *states.last().unwrap());
    // New inodes after opening never reuse a stored number, and changes
    // after opening are saved too.
    let fresh = opened.fs.create(r, b"after", 0o644, 0, 0).unwrap().ino;
    assert!(fs.lookup(r, b"empty").unwrap().ino < fresh);
    assert!(opened.fs.has_unsaved_changes());
    let mut log = log.clone();
    let at = log.len() as u64;
    let saved = opened.fs.save_changes(&mut log, at, opened.generation, opened.next_index).unwrap();
    assert!(saved.bytes > 0);
    let again = open(&log);
    assert_eq!(tree(&again.fs), tree(&opened.fs));
    assert!(again.fs.lookup(r, b"after").is_ok());
}

#[test]
fn a_batch_cut_short_anywhere_opens_the_state_before_it_with_a_notice() {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let mut index = 1;
    let big = fs.lookup(fs.lookup(fs.lookup(1, b"dir").unwrap().ino, b"sub").unwrap().ino, b"big").unwrap().ino;
    fs.write(big, 100, &[1u8; 3000]).unwrap();
    save(&fs, &mut log, &mut index).unwrap();
    let before = tree(&fs);
    let whole = log.len();
    fs.write(big, 9000, &[2u8; 5000]).unwrap();
    fs.rename(1, b"sparse", 1, b"renamed").unwrap();
    save(&fs, &mut log, &mut index).unwrap();
    let after = tree(&fs);
    for cut in whole + 1..log.len() {
        let opened = open(&log[..cut]);
        assert_eq!(opened.end, whole as u64, "cut {cut}");
        assert!(opened.notice.as_deref().unwrap_or("").contains("last whole save"), "cut {cut}: {:?}", opened.notice);
        opened.fs.check().unwrap();
        assert_eq!(tree(&opened.fs), before, "cut {cut}");
    }
    // A flipped byte anywhere in the last batch: the same.
    for at in (whole..log.len()).step_by(97) {
        let mut damaged = log.clone();
        damaged[at] ^= 0x20;
        let opened = open(&damaged);
        assert!(opened.notice.is_some(), "flip at {at}");
        assert_eq!(tree(&opened.fs), before, "flip at {at}");
    }
    assert_eq!(tree(&open(&log).fs), after);
}

#[test]
fn a_damaged_image_falls_back_to_the_older_file_or_refuses() {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    let mut older = Vec::new();
    fs.save_image(&mut older, 0, 1).unwrap();
    let old_tree = tree(&fs);
    fs.unlink(1, b"empty").unwrap();
    let mut newer = Vec::new();
    fs.save_image(&mut newer, 0, 2).unwrap();
    for at in [HEADER_LEN + 3, newer.len() / 2, newer.len() - 1] {
        let mut damaged = newer.clone();
        damaged[at] ^= 0x01;
        let (mut a, mut b) = (&older[..], &damaged[..]);
        let opened = FileSystem::open_saved(config(), &mut [StoredFile { name: "a", source: &mut a }, StoredFile { name: "b", source: &mut b }]).unwrap().unwrap();
        assert_eq!((opened.file, opened.generation), (0, 1));
        let notice = opened.notice.unwrap();
        assert!(notice.contains("b (save 2)") && notice.contains("damaged"), "{notice}");
        assert_eq!(tree(&opened.fs), old_tree);
        // Alone, it refuses loudly.
        let mut only = &damaged[..];
        let err = FileSystem::open_saved(config(), &mut [StoredFile { name: "b", source: &mut only }]).err().unwrap();
        assert!(err.contains("No saved state"), "{err}");
    }
    // Both whole: the newer wins.
    let (mut a, mut b) = (&older[..], &newer[..]);
    let opened = FileSystem::open_saved(config(), &mut [StoredFile { name: "a", source: &mut a }, StoredFile { name: "b", source: &mut b }]).unwrap().unwrap();
    assert_eq!((opened.file, opened.notice), (1, None));
    // Nothing stored yet: no state, no error.
    let mut empty: &[u8] = &[];
    assert!(FileSystem::open_saved(config(), &mut [StoredFile { name: "a", source: &mut empty }]).unwrap().is_none());
}

#[test]
fn nothing_is_tracked_before_the_first_image() {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    assert!(!fs.has_unsaved_changes());
    assert_eq!(fs.unsaved_change(), None);
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    fs.create(1, b"x", 0o644, 0, 0).unwrap();
    assert!(fs.has_unsaved_changes());
    let n = fs.unsaved_change().expect("this thread's change");
    let mut index = 1;
    let saved = save(&fs, &mut log, &mut index).unwrap();
    assert!(saved.covers >= n);
    assert_eq!(fs.unsaved_change(), None);
}

/// Four writers, each replacing its own file atomically (write a temp
/// file, rename it over) and appending to a shared log, against a saver
/// that cuts batches whenever asked. Every prefix of the stored batches
/// opens clean, every file is one whole version, and every write a
/// worker saw acknowledged (`wait_saved` returned) is in the batches
/// written before it returned.
#[test]
fn concurrent_writers_every_stored_prefix_is_a_real_state() {
    let fs = Arc::new(FileSystem::new(config()).unwrap());
    let shared = fs.create(1, b"shared.log", 0o644, 0, 0).unwrap().ino;
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    fs.save_image(&mut *log.lock().unwrap(), 0, 1).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // (batch count when acknowledged, writer, version)
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let ends = Arc::new(std::sync::Mutex::new(vec![log.lock().unwrap().len()]));
    let saver = {
        let (fs, log, stop, ends) = (fs.clone(), log.clone(), stop.clone(), ends.clone());
        std::thread::spawn(move || {
            let mut index = 1;
            while !stop.load(Ordering::Acquire) {
                if !fs.wait_save_wanted(Duration::from_millis(20)) && !fs.has_unsaved_changes() {
                    continue;
                }
                let mut log = log.lock().unwrap();
                let at = log.len() as u64;
                let saved = fs.save_changes(&mut *log, at, 1, index).unwrap();
                if saved.bytes > 0 {
                    index += 1;
                    ends.lock().unwrap().push(log.len());
                }
                drop(log);
                fs.mark_saved(saved.covers);
            }
        })
    };
    let writers: Vec<_> = (0..4u32)
        .map(|w| {
            let (fs, acked, ends) = (fs.clone(), acked.clone(), ends.clone());
            std::thread::spawn(move || {
                crate::set_current_owner(w + 1);
                let name = format!("file{w}");
                for v in 0..60u32 {
                    let tmp = format!("tmp{w}");
                    let t = fs.create(1, tmp.as_bytes(), 0o644, 0, 0).unwrap().ino;
                    let body: Vec<u8> = format!("writer {w} version {v} ").repeat(200 + v as usize * 10).into_bytes();
                    fs.write(t, 0, &body).unwrap();
                    fs.rename(1, tmp.as_bytes(), 1, name.as_bytes()).unwrap();
                    fs.append(shared, format!("{w}:{v}\n").as_bytes()).unwrap();
                    if v % 3 == 0 {
                        // The saver may have stored it already (it also
                        // saves unasked): then it is durable now.
                        if let Some(n) = fs.unsaved_change() {
                            fs.wait_saved(n, Duration::from_secs(10)).unwrap();
                        }
                        let batches = ends.lock().unwrap().len();
                        acked.lock().unwrap().push((batches, w, v));
                    }
                }
                crate::clear_current_owner();
            })
        })
        .collect();
    for t in writers {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    saver.join().unwrap();
    let log = log.lock().unwrap().clone();
    let ends = ends.lock().unwrap().clone();
    assert!(ends.len() > 5, "the saver cut several batches ({})", ends.len());
    let acked = acked.lock().unwrap().clone();
    for (k, &end) in ends.iter().enumerate() {
        let opened = open(&log[..end]);
        assert_eq!(opened.notice, None);
        opened.fs.check().unwrap();
        let ofs = &opened.fs;
        let shared_ino = ofs.lookup(1, b"shared.log").unwrap().ino;
        let size = ofs.getattr(shared_ino).unwrap().size as usize;
        let mut lines = vec![0u8; size];
        ofs.read(shared_ino, 0, &mut lines).unwrap();
        let lines = String::from_utf8(lines).unwrap();
        for w in 0..4u32 {
            // The file is one whole version, and the log has that version's line.
            let newest = match ofs.lookup(1, format!("file{w}").as_bytes()) {
                Ok(a) => {
                    let mut body = vec![0u8; a.size as usize];
                    ofs.read(a.ino, 0, &mut body).unwrap();
                    let text = String::from_utf8(body).unwrap();
                    let v: u32 = text.split(' ').nth(3).unwrap().parse().unwrap();
                    assert_eq!(text, format!("writer {w} version {v} ").repeat(200 + v as usize * 10), "prefix {k}");
                    Some(v)
                }
                Err(_) => None,
            };
            for &(batches, aw, av) in &acked {
                if aw == w && batches <= k + 1 {
                    assert!(newest.is_some_and(|n| n >= av), "prefix {k}: writer {w} version {av} was acknowledged");
                    assert!(lines.contains(&format!("{w}:{av}\n")), "prefix {k}: line {w}:{av}");
                }
            }
        }
        for line in lines.lines() {
            assert!(line.len() >= 3 && line.contains(':'), "prefix {k}: torn line {line:?}");
        }
    }
}


/// Each file's `st_blocks`, by path.
fn sectors(fs: &FileSystem) -> BTreeMap<String, u64> {
    tree(fs).keys().filter_map(|p| {
        let ino = fs.resolve(FileSystem::ROOT, p.as_bytes(), false).ok()?.ino;
        let a = fs.getattr(ino).ok()?;
        (a.kind == FileKind::File).then(|| (p.clone(), a.blocks))
    }).collect()
}

#[test]
fn fragments_open_as_small_as_they_were_saved() {
    let fs = FileSystem::new(config()).unwrap();
    let r = FileSystem::ROOT;
    let mut n = 0;
    for size in [1u64, 511, 512, 513, 1500, 4095, 4096, 4097, 8191, 9000, 12_800] {
        n += 1;
        let f = fs.create(r, format!("w{n}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &vec![n as u8; size as usize]).unwrap();
        // Written small, then extended by truncate: the record runs to EOF
        // (zeros past the fragment), the fragment stays small on opening.
        let g = fs.create(r, format!("x{n}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(g, 0, &vec![n as u8; (size % 700 + 1) as usize]).unwrap();
        fs.setattr(g, &SetAttr { size: Some(size + 3000), ..Default::default() }).unwrap();
        // Shrunk by truncate into a block.
        let h = fs.create(r, format!("y{n}").as_bytes(), 0o644, 0, 0).unwrap().ino;
        fs.write(h, 0, &vec![n as u8; 13_000]).unwrap();
        fs.setattr(h, &SetAttr { size: Some(size), ..Default::default() }).unwrap();
    }
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let opened = open(&log);
    opened.fs.check().unwrap();
    assert_eq!(tree(&opened.fs), tree(&fs));
    assert_eq!(sectors(&opened.fs), sectors(&fs));
    assert_eq!(opened.fs.stats().used, fs.stats().used);
}

#[test]
fn change_batches_replay_fragments_that_grew_and_shrank() {
    let fs = FileSystem::new(config()).unwrap();
    let r = FileSystem::ROOT;
    let f = fs.create(r, b"f", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, &[1u8; 300]).unwrap();
    let g = fs.create(r, b"g", 0o644, 0, 0).unwrap().ino;
    fs.write(g, 0, &[2u8; 7000]).unwrap();
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let mut index = 1;
    let steps: [&dyn Fn(&FileSystem); 5] = [
        &|fs| fs.write(f, 1000, &[3u8; 100]).map(drop).unwrap(),
        &|fs| fs.setattr(g, &SetAttr { size: Some(4200), ..Default::default() }).map(drop).unwrap(),
        &|fs| fs.write(g, 4300, &[4u8; 2000]).map(drop).unwrap(),
        &|fs| fs.append(f, &[5u8; 4000]).map(drop).unwrap(),
        &|fs| fs.write(f, 2, b"overwrite").map(drop).unwrap(),
    ];
    for step in steps {
        step(&fs);
        save(&fs, &mut log, &mut index).unwrap();
        let opened = open(&log);
        opened.fs.check().unwrap();
        assert_eq!(tree(&opened.fs), tree(&fs));
    }
}

// ---- Truncates between saves: a batch must not let older bytes show
// through where the live file reads zeros.

fn contents(fs: &FileSystem, ino: Ino) -> Vec<u8> {
    let mut buf = vec![0u8; fs.getattr(ino).unwrap().size as usize];
    assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), buf.len());
    buf
}

fn set_size(fs: &FileSystem, ino: Ino, size: u64) {
    fs.setattr(ino, &SetAttr { size: Some(size), ..Default::default() }).unwrap();
}

/// A filesystem with one file `f` holding `body`, saved as an image.
fn saved_file(body: &[u8]) -> (FileSystem, Ino, Vec<u8>, u32) {
    let fs = FileSystem::new(config()).unwrap();
    let f = fs.create(FileSystem::ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, body).unwrap();
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    (fs, f, log, 1)
}

/// Saves the changes, opens the log and checks file `f` byte for byte.
fn save_and_compare(fs: &FileSystem, f: Ino, log: &mut Vec<u8>, index: &mut u32, what: &str) {
    save(fs, log, index);
    let opened = open(log);
    opened.fs.check().unwrap();
    let live = contents(fs, f);
    let back = contents(&opened.fs, f);
    assert_eq!(back.len(), live.len(), "{what}: size");
    if let Some(at) = (0..live.len()).find(|&i| back[i] != live[i]) {
        panic!("{what}: byte {at} reads {} after opening, {} live", back[at], live[at]);
    }
    assert_eq!(tree(&opened.fs), tree(fs), "{what}");
}

#[test]
fn truncate_down_then_up_between_saves_reads_zeros_after_opening() {
    for (down, up) in [(0u64, 12_288u64), (4096, 12_288), (0, 100), (8192, 20_000), (5000, 9000)] {
        let (fs, f, mut log, mut index) = saved_file(&[b'a'; 12_288]);
        set_size(&fs, f, down);
        set_size(&fs, f, up);
        save_and_compare(&fs, f, &mut log, &mut index, &format!("down {down} up {up}"));
    }
}

#[test]
fn truncate_into_a_block_then_extend_zeroes_the_cut_tail() {
    // 3584 < cut < 4096 keeps a whole-block fragment: its zeroed tail is
    // not visible from the fragment's size either.
    for cut in [1u64, 100, 511, 512, 513, 3000, 3585, 4000, 4095, 4097, 6000, 8191] {
        let (fs, f, mut log, mut index) = saved_file(&[b'a'; 12_000]);
        set_size(&fs, f, cut);
        set_size(&fs, f, 12_000);
        save_and_compare(&fs, f, &mut log, &mut index, &format!("cut {cut} then extend"));
        // Extending by a write past the end, not by truncate.
        let (fs, f, mut log, mut index) = saved_file(&[b'a'; 12_000]);
        set_size(&fs, f, cut);
        fs.write(f, 11_000, b"end").unwrap();
        save_and_compare(&fs, f, &mut log, &mut index, &format!("cut {cut} then write past the end"));
    }
}

#[test]
fn truncate_to_zero_and_rewrite_shorter() {
    let (fs, f, mut log, mut index) = saved_file(&[b'a'; 10_000]);
    set_size(&fs, f, 0);
    fs.write(f, 0, &[b'b'; 300]).unwrap();
    save_and_compare(&fs, f, &mut log, &mut index, "rewritten shorter");
    // The same, then extended past the old end.
    set_size(&fs, f, 0);
    fs.write(f, 0, &[b'c'; 700]).unwrap();
    set_size(&fs, f, 16_000);
    save_and_compare(&fs, f, &mut log, &mut index, "rewritten shorter, then extended");
}

#[test]
fn truncate_then_write_far_past_the_end_leaves_a_hole() {
    let (fs, f, mut log, mut index) = saved_file(&[b'a'; 40_000]);
    set_size(&fs, f, 10);
    fs.write(f, 30_000, b"far").unwrap();
    save_and_compare(&fs, f, &mut log, &mut index, "hole after truncate");
    // Again from 0, written past where the old data ended.
    set_size(&fs, f, 0);
    fs.write(f, 100_000, b"farther").unwrap();
    save_and_compare(&fs, f, &mut log, &mut index, "hole after truncate to 0");
}

#[test]
fn repeated_truncate_cycles_within_one_batch() {
    let (fs, f, mut log, mut index) = saved_file(&[b'a'; 20_000]);
    fs.write(f, 5000, &[b'b'; 9000]).unwrap();
    set_size(&fs, f, 7000);
    set_size(&fs, f, 19_000);
    fs.write(f, 2000, &[b'c'; 100]).unwrap();
    set_size(&fs, f, 3000);
    fs.append(f, &[b'd'; 50]).unwrap();
    set_size(&fs, f, 18_000);
    fs.write(f, 16_000, &[b'e'; 10]).unwrap();
    set_size(&fs, f, 17_000);
    save_and_compare(&fs, f, &mut log, &mut index, "cycles in one batch");
}

/// A truncate whose worker dies mid-way (the host's repair finishes it),
/// then an extension by a survivor: the dead worker never reported the
/// size it left, so the batch must still be right.
#[test]
fn a_truncate_finished_by_repair_is_saved_right() {
    use crate::kill_points;
    let steps = kill_points::steps("truncate").len();
    for step in 0..steps {
        let fs: &'static FileSystem = Box::leak(Box::new(FileSystem::new(config()).unwrap()));
        let f = fs.create(FileSystem::ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        fs.write(f, 0, &[b'a'; 12_000]).unwrap();
        let mut log = Vec::new();
        fs.save_image(&mut log, 0, 1).unwrap();
        let mut index = 1;
        let owner = 20_000 + step as u32;
        std::thread::spawn(move || {
            crate::set_current_owner(owner);
            kill_points::arm(owner, "truncate", step);
            let _ = fs.setattr(f, &SetAttr { size: Some(1000), ..Default::default() });
            panic!("truncate step {step}: kill point not reached");
        });
        let mut waited = 0;
        while !kill_points::reached(owner) {
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
            assert!(waited < 10_000, "step {step}: the victim never reached its kill point");
        }
        // SAFETY: the victim is parked at its kill point forever.
        unsafe { fs.release_all(owner) };
        set_size(fs, f, 12_000);
        save_and_compare(fs, f, &mut log, &mut index, &format!("killed at truncate step {step}"));
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random writes, truncates and appends on a few files, with saves after
/// random steps: every stored prefix opens as exactly the live state at
/// its save.
#[test]
fn random_writes_and_truncates_open_as_they_were_saved() {
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let fs = FileSystem::new(config()).unwrap();
        // Tracked from the start, as a new site is: the changes before the
        // first image are in the image, whatever was marked.
        fs.track_changes();
        let files: Vec<Ino> = (0..3).map(|i| fs.create(FileSystem::ROOT, format!("f{i}").as_bytes(), 0o644, 0, 0).unwrap().ino).collect();
        // Sizes around block and sector edges, up to a few blocks.
        let size = |rng: &mut Rng| match rng.below(4) {
            0 => rng.below(4) * 4096,
            1 => rng.below(4) * 4096 + [1, 511, 512, 513, 3584, 3585, 4095][rng.below(7) as usize],
            _ => rng.below(20_000),
        };
        let mut log = Vec::new();
        let mut index = 1;
        let mut saves = vec![(0usize, tree(&fs))];
        let mut image_taken = false;
        for _ in 0..60 {
            let f = files[rng.below(files.len() as u64) as usize];
            match rng.below(6) {
                0 | 1 => {
                    let at = size(&mut rng);
                    let len = 1 + rng.below(6000) as usize;
                    let byte = 1 + (rng.below(255) as u8);
                    fs.write(f, at, &vec![byte; len]).unwrap();
                }
                2 => {
                    fs.append(f, &vec![b'+'; 1 + rng.below(3000) as usize]).unwrap();
                }
                _ => set_size(&fs, f, size(&mut rng)),
            }
            if rng.below(4) == 0 {
                if !image_taken {
                    fs.save_image(&mut log, 0, 1).unwrap();
                    image_taken = true;
                } else {
                    save(&fs, &mut log, &mut index);
                }
                saves.push((log.len(), tree(&fs)));
            }
        }
        for (k, (end, want)) in saves.iter().enumerate().skip(1) {
            let opened = open(&log[..*end]);
            opened.fs.check().unwrap();
            assert_eq!(&tree(&opened.fs), want, "seed {seed}, save {k}");
        }
    }
}

/// A sink that takes `room` bytes and then fails, as a full browser
/// storage does.
struct FullAfter {
    log: Vec<u8>,
    room: usize,
}

impl super::Sink for FullAfter {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        if offset as usize + bytes.len() > self.room {
            return Err("quota exceeded".into());
        }
        self.log.write_at(offset, bytes)
    }
}

/// The sample saved as an image, then `late.txt` written with `bytes`.
fn saved_then_changed(bytes: &[u8]) -> (FileSystem, Vec<u8>) {
    let fs = FileSystem::new(config()).unwrap();
    sample(&fs);
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let f = fs.create(FileSystem::ROOT, b"late.txt", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, bytes).unwrap();
    (fs, log)
}

#[test]
fn a_batch_that_fails_to_write_keeps_its_changes_for_the_next_save() {
    let (fs, mut log) = saved_then_changed(&vec![7u8; 20_000]);
    let image_end = log.len();
    let waiting = fs.unsaved_change().expect("an unsaved change");
    // The storage is full: the batch fails and nothing may count as saved.
    let mut full = FullAfter { log: log.clone(), room: image_end + 100 };
    assert!(fs.save_changes(&mut full, image_end as u64, 1, 1).is_err());
    assert_eq!(fs.unsaved_change(), Some(waiting));
    assert!(fs.has_unsaved_changes());
    // Room again: the next save stores the same changes.
    let saved = fs.save_changes(&mut log, image_end as u64, 1, 1).unwrap();
    assert!(saved.bytes > 20_000, "the retried batch holds the file: {} bytes", saved.bytes);
    fs.mark_saved(saved.covers);
    assert_eq!(fs.unsaved_change(), None);
    assert_eq!(tree(&open(&log).fs), tree(&fs));
}

#[test]
fn an_image_that_fails_to_write_keeps_the_changes_for_the_next_save() {
    let (fs, mut log) = saved_then_changed(b"after the image");
    let image_end = log.len();
    // A compaction into the other file fails: the active log goes on, and
    // the changes since its last batch must still be in the next one.
    let mut other = FullAfter { log: Vec::new(), room: 100 };
    assert!(fs.save_image(&mut other, 0, 2).is_err());
    assert!(fs.unsaved_change().is_some());
    let saved = fs.save_changes(&mut log, image_end as u64, 1, 1).unwrap();
    assert!(saved.bytes > 0);
    fs.mark_saved(saved.covers);
    assert_eq!(tree(&open(&log).fs), tree(&fs));
}

#[test]
fn a_failed_save_answers_its_waiters_at_once_and_later_changes_wait_for_the_next() {
    let fs = Arc::new(FileSystem::new(config()).unwrap());
    let mut log = Vec::new();
    fs.save_image(&mut log, 0, 1).unwrap();
    let f = fs.create(FileSystem::ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, b"x").unwrap();
    let n = fs.unsaved_change().unwrap();
    assert_eq!(fs.last_change(), n);
    fs.mark_save_failed(n, "the storage is full");
    // A long timeout: the answer must not wait for it.
    assert_eq!(fs.wait_saved(n, Duration::from_secs(3600)), Err(Errno::EIO));
    assert_eq!(fs.save_failure().as_deref(), Some("the storage is full"));
    // A change made after the failure waits for a save that covers it.
    fs.write(f, 0, b"y").unwrap();
    let later = fs.unsaved_change().unwrap();
    assert!(later > n);
    assert_eq!(fs.wait_saved(later, Duration::from_millis(20)), Err(Errno::ETIMEDOUT));
    fs.mark_saved(later);
    assert_eq!(fs.wait_saved(later, Duration::from_secs(3600)), Ok(()));
    assert_eq!(fs.save_failure(), None, "a save that succeeds ends the failure");
}

/// One of the log's files in memory: takes `room` bytes at most (a full
/// quota), and records what was done to it so a crash after any prefix of
/// it can be replayed (`replay`).
#[derive(Clone, Default)]
struct MemFile {
    bytes: Vec<u8>,
    room: Option<u64>,
    refusal: Option<String>,
    ops: Vec<FileOp>,
}

#[derive(Clone, Debug)]
enum FileOp {
    Write(u64, Vec<u8>),
    Truncate(u64),
}

impl MemFile {
    /// The file as it was, with the first `n` operations done after it and
    /// the next one, if a write, done for only `partial` of its bytes.
    fn replay(before: &[u8], ops: &[FileOp], n: usize, partial: usize) -> Vec<u8> {
        let mut bytes = before.to_vec();
        for (i, op) in ops.iter().take(n + 1).enumerate() {
            match op {
                FileOp::Truncate(len) if i < n => bytes.truncate(*len as usize),
                FileOp::Write(at, data) => {
                    let data = if i < n { &data[..] } else { &data[..partial.min(data.len())] };
                    let _ = bytes.write_at(*at, data);
                }
                FileOp::Truncate(_) => {}
            }
        }
        bytes
    }
}

impl super::Sink for MemFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<(), String> {
        if self.room.is_some_and(|room| offset + bytes.len() as u64 > room) {
            self.refusal = Some("the storage is full".into());
            return Err("full".into());
        }
        self.ops.push(FileOp::Write(offset, bytes.to_vec()));
        self.bytes.write_at(offset, bytes)
    }
}

impl super::Source for MemFile {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
        (&self.bytes[..]).read_at(offset, buf)
    }
}

impl super::LogFile for MemFile {
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> Result<(), String> {
        self.ops.push(FileOp::Truncate(len));
        self.bytes.truncate(len as usize);
        Ok(())
    }
    fn take_refusal(&mut self) -> Option<String> {
        self.refusal.take()
    }
}

/// A writer that compacts early (the defaults need megabytes of log).
/// Where a crash may cut operation `op` short: bytes of a write written
/// (none, one, half, all but one). `atomic_header`: a header is one 32-byte
/// write inside one disk sector, so it lands whole or not at all.
fn cut_points(op: Option<&FileOp>, atomic_header: bool) -> Vec<usize> {
    match op {
        Some(FileOp::Write(0, data)) if atomic_header && data.len() == HEADER_LEN => vec![0],
        Some(FileOp::Write(_, data)) => vec![0, 1, data.len() / 2, data.len().saturating_sub(1)],
        _ => vec![0],
    }
}

fn small_writer() -> super::LogWriter {
    let mut writer = super::LogWriter::default();
    writer.compact_min_bytes = 64 << 10;
    writer
}

fn save_log(writer: &mut super::LogWriter, fs: &FileSystem, files: &mut [MemFile; 2], log: &mut Option<super::Log>) -> Result<(), String> {
    let [a, b] = files;
    writer.save(fs, &mut [a as &mut dyn super::LogFile, b as &mut dyn super::LogFile], log)
}

fn open_files(files: &[MemFile; 2]) -> Option<(FileSystem, super::Log, Option<String>)> {
    let [mut a, mut b] = files.clone();
    super::open_log(config(), &mut [&mut a as &mut dyn super::LogFile, &mut b as &mut dyn super::LogFile], ["a", "b"]).unwrap()
}

fn write_file(fs: &FileSystem, name: &str, bytes: &[u8]) {
    let f = fs.create(FileSystem::ROOT, name.as_bytes(), 0o644, 0, 0).unwrap().ino;
    fs.write(f, 0, bytes).unwrap();
}

#[test]
fn the_log_takes_an_image_then_batches_then_compacts_into_the_other_file() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    let first = log.unwrap();
    assert_eq!((first.active, first.generation, first.next_index), (0, 1, 1), "a new site's first save is its image in the first file");
    assert!(files[1].bytes.is_empty());
    let mut compactions = 0;
    for i in 0..40 {
        write_file(&fs, &format!("f{i}"), &vec![i as u8; 9000]);
        let before = log.unwrap();
        save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
        let after = log.unwrap();
        if after.active != before.active {
            compactions += 1;
            assert_eq!((after.generation, after.next_index), (before.generation + 1, 1));
            assert!(before.end > 64 << 10 && before.end > 2 * before.image_bytes, "compacted only once grown: {before:?}");
        } else {
            assert_eq!(after.next_index, before.next_index + 1, "one batch per save");
        }
        assert_eq!(fs.unsaved_change(), None, "save {i} covered every change");
        let (opened, reopened_log, notice) = open_files(&files).unwrap();
        assert_eq!(tree(&opened), tree(&fs), "save {i}");
        assert_eq!((reopened_log, notice), (after, None));
    }
    assert!(compactions >= 2, "{compactions} compactions");
}

#[test]
fn every_prefix_of_a_compaction_cut_by_a_crash_opens_a_whole_state() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    // Batches until the next save compacts, each saved whole.
    let mut i = 0;
    while !(log.unwrap().end > 64 << 10 && log.unwrap().end > 2 * log.unwrap().image_bytes) {
        write_file(&fs, &format!("f{i}"), &vec![i as u8; 7000]);
        save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
        i += 1;
    }
    let saved = tree(&fs);
    // A change the compaction stores, then the compaction itself.
    write_file(&fs, "during", b"in the compaction's image only");
    let (active, other) = (log.unwrap().active, 1 - log.unwrap().active);
    let other_before = files[other].bytes.clone();
    files[other].ops.clear();
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    assert_eq!(log.unwrap().active, other, "the save compacted");
    let compacted = tree(&fs);
    let ops = files[other].ops.clone();
    assert!(ops.len() >= 3, "{ops:?}");
    // A crash after each operation, and in the middle of each write.
    let mut opened_new = 0;
    for n in 0..=ops.len() {
        for partial in cut_points(ops.get(n), false) {
            let mut crashed = files.clone();
            crashed[other].bytes = MemFile::replay(&other_before, &ops, n, partial);
            let (opened, _, _) = open_files(&crashed).unwrap_or_else(|| panic!("nothing opened after {n} operations"));
            let got = tree(&opened);
            if got == compacted {
                opened_new += 1;
            } else {
                assert_eq!(got, saved, "after {n} operations (+{partial} bytes): neither the saved state nor the compacted one");
            }
            assert_eq!(crashed[active].bytes, files[active].bytes, "the log being compacted is never written");
        }
    }
    assert!(opened_new >= 1, "the whole compaction opens as the new state");
}

#[test]
fn every_prefix_of_a_new_sites_first_image_cut_by_a_crash_opens_as_nothing_or_the_whole_image() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    let ops = files[0].ops.clone();
    assert!(ops.len() >= 3, "{ops:?}");
    let mut opened_whole = 0;
    for n in 0..=ops.len() {
        for partial in cut_points(ops.get(n), true) {
            let mut crashed = files.clone();
            crashed[0].bytes = MemFile::replay(&[], &ops, n, partial);
            // Never an error: nothing was acknowledged before the image was whole.
            match open_files(&crashed) {
                None => {}
                Some((opened, _, notice)) => {
                    assert_eq!(tree(&opened), tree(&fs), "after {n} operations (+{partial} bytes)");
                    assert_eq!(notice, None);
                    opened_whole += 1;
                }
            }
        }
    }
    assert!(opened_whole >= 1, "the whole image opens");
}

#[test]
fn a_damaged_header_of_the_only_image_is_still_refused() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    files[0].bytes[5] ^= 0x40;
    let [mut a, mut b] = files.clone();
    let opened = super::open_log(config(), &mut [&mut a as &mut dyn super::LogFile, &mut b as &mut dyn super::LogFile], ["a", "b"]);
    let why = opened.err().expect("refused");
    assert!(why.contains("a: no whole image at its start"), "{why}");
}

#[test]
fn a_keeper_that_takes_over_writes_a_whole_image_first() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut first_keeper, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut first_keeper, &fs, &mut files, &mut log).unwrap();
    write_file(&fs, "one", b"1");
    save_log(&mut first_keeper, &fs, &mut files, &mut log).unwrap();
    // The first keeper dies having written a batch it never recorded.
    write_file(&fs, "two", b"2");
    let recorded = log.unwrap();
    let _ = fs.save_changes(&mut files[recorded.active], recorded.end, recorded.generation, recorded.next_index).unwrap();
    write_file(&fs, "three", b"3");
    let mut replacement = small_writer();
    save_log(&mut replacement, &fs, &mut files, &mut log).unwrap();
    let after = log.unwrap();
    assert_eq!((after.active, after.generation, after.next_index), (1 - recorded.active, recorded.generation + 1, 1), "a whole image into the other file");
    let (opened, _, notice) = open_files(&files).unwrap();
    assert_eq!(tree(&opened), tree(&fs));
    assert_eq!(notice, None);
    // From then on it appends as its own.
    write_file(&fs, "four", b"4");
    save_log(&mut replacement, &fs, &mut files, &mut log).unwrap();
    assert_eq!(log.unwrap().next_index, 2);
}

#[test]
fn a_full_storage_fails_the_save_in_its_words_and_loses_nothing() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    let before = log.unwrap();
    // A batch past the room: refused, the half-written tail cut off.
    files[before.active].room = Some(before.end + 1000);
    write_file(&fs, "big", &vec![3u8; 20_000]);
    let why = save_log(&mut writer, &fs, &mut files, &mut log).unwrap_err();
    assert_eq!(why, "saving: the storage is full");
    assert_eq!(log.unwrap(), before);
    assert_eq!(files[before.active].bytes.len() as u64, before.end);
    assert!(fs.has_unsaved_changes());
    // Room again: the same changes are stored.
    files[before.active].room = None;
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    assert_eq!(tree(&open_files(&files).unwrap().0), tree(&fs));
}

#[test]
fn a_compaction_that_does_not_fit_gives_its_room_back_and_waits_for_the_log_to_grow() {
    let fs = FileSystem::new(config()).unwrap();
    fs.track_changes();
    sample(&fs);
    let (mut writer, mut files, mut log) = (small_writer(), [MemFile::default(), MemFile::default()], None);
    save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
    // The other file has room for no image.
    files[1].room = Some(1000);
    let (mut failed_at, mut retried) = (None, 0);
    for i in 0..60 {
        write_file(&fs, &format!("f{i}"), &vec![i as u8; 5000]);
        let before = log.unwrap();
        save_log(&mut writer, &fs, &mut files, &mut log).unwrap();
        assert_eq!(log.unwrap().active, 0, "the log stays in the first file");
        assert!(files[1].bytes.is_empty(), "a failed compaction leaves the other file empty (save {i})");
        let tried = files[1].ops.iter().any(|op| matches!(op, FileOp::Truncate(0)));
        files[1].ops.clear();
        match failed_at {
            Some(at) if before.end < at + (64 << 10) => assert!(!tried, "save {i}: compaction retried {} bytes after it failed", before.end - at),
            Some(_) if tried => retried += 1,
            _ => {}
        }
        if tried {
            failed_at = Some(before.end);
        }
    }
    assert!(retried >= 1, "tried again once the log grew");
    assert!(failed_at.is_some(), "a compaction was tried");
    assert_eq!(tree(&open_files(&files).unwrap().0), tree(&fs));
}

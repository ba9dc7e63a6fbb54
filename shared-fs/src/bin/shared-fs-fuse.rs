//! Mounts an empty shared-fs with FUSE and serves it in the foreground until
//! it is unmounted (`fusermount3 -u MOUNTPOINT`).
//!
//! Usage: shared-fs-fuse [--initial-mib N] [--max-mib N] [--threads N] MOUNTPOINT

use std::path::PathBuf;
use std::process::ExitCode;

use shared_fs::{system_clock, Config, FileSystem};

const USAGE: &str = "usage: shared-fs-fuse [--initial-mib N] [--max-mib N] [--threads N] MOUNTPOINT";

fn main() -> ExitCode {
    let mut initial_mib = 1usize;
    let mut max_mib = 1024usize;
    let mut threads = 2usize;
    let mut mountpoint = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |what: &str| -> Option<usize> {
            let v = args.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("{what} needs a number\n{USAGE}");
            }
            v
        };
        match arg.as_str() {
            "--initial-mib" => match number("--initial-mib") { Some(v) => initial_mib = v, None => return ExitCode::from(2) },
            "--max-mib" => match number("--max-mib") { Some(v) => max_mib = v, None => return ExitCode::from(2) },
            "--threads" => match number("--threads") { Some(v) => threads = v, None => return ExitCode::from(2) },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if mountpoint.is_none() && !arg.starts_with('-') => mountpoint = Some(PathBuf::from(arg)),
            _ => {
                eprintln!("unexpected argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(mountpoint) = mountpoint else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let config = Config { initial_bytes: initial_mib << 20, max_bytes: max_mib << 20, clock: system_clock };
    let fs = match FileSystem::new(config) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("shared-fs-fuse: cannot create the filesystem: {e}");
            return ExitCode::FAILURE;
        }
    };
    match shared_fs::fuse::mount(fs, &mountpoint, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shared-fs-fuse: mount {}: {e}", mountpoint.display());
            ExitCode::FAILURE
        }
    }
}

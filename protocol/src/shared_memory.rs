//! How the one shared memory is split between the filesystem's data and the
//! shared Rust heap (inodes, directories, names, worker stacks), and how a
//! worker that ran out of heap is told apart from other deaths.
//!
//! Both grow the same `WebAssembly.Memory` up to its maximum, and neither
//! gives memory back (a wasm memory cannot shrink). If files could take
//! every page, the heap could not grow once they had (even after they are
//! deleted: their blocks stay the filesystem's, free for files), and the
//! next allocation anywhere would trap. So the filesystem's data may take
//! what the memory can grow by, less a reserve the heap always keeps.

const MIB: u64 = 1 << 20;

/// The heap's reserve: 1/16 of the memory, at least 8 MiB and at most
/// 64 MiB. WordPress's heap peaks at 2.5 MiB (`make bench`); the reserve
/// covers a few tens of thousands of files' metadata in the smallest memory.
pub fn heap_reserve_bytes(memory_max_bytes: u64) -> u64 {
    (memory_max_bytes / 16).clamp(8 * MIB, 64 * MIB).min(memory_max_bytes / 2)
}

/// The most the filesystem's data may take of a memory that starts at
/// `initial_bytes` (the module's static data, its first stack and the
/// heap's start) and may grow to `memory_max_bytes`.
pub fn fs_max_bytes(memory_max_bytes: u64, initial_bytes: u64) -> u64 {
    memory_max_bytes.saturating_sub(initial_bytes).saturating_sub(heap_reserve_bytes(memory_max_bytes))
}

/// Whether a worker's last words (its trap's stack) say it died because
/// an allocation in the shared heap failed (std's `rust_oom` aborts).
pub fn ran_out_of_heap(death: &str) -> bool {
    death.contains("rust_oom") || death.contains("handle_alloc_error") || death.contains("memory allocation of")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_keeps_a_reserve_the_files_cannot_take() {
        assert_eq!(fs_max_bytes(96 * MIB, 2 * MIB), 86 * MIB);
        assert_eq!(fs_max_bytes(1024 * MIB, 2 * MIB), 958 * MIB);
        assert_eq!(fs_max_bytes(4096 * MIB, 0), 4032 * MIB);
        for max in [64 * MIB, 96 * MIB, 1024 * MIB, 4096 * MIB] {
            let reserve = heap_reserve_bytes(max);
            assert!(reserve >= 8 * MIB && reserve <= max / 2, "{max}: {reserve}");
            assert_eq!(fs_max_bytes(max, MIB) + reserve + MIB, max);
        }
        assert_eq!(fs_max_bytes(16 * MIB, 12 * MIB), 0, "no room is no room, not an overflow");
    }

    #[test]
    fn an_allocation_failure_is_told_from_other_traps() {
        let oom = "RuntimeError: unreachable\n    at worker.wasm.std::alloc::rust_oom::h1a2b (http://h/worker_bg.wasm:wasm-function[1]:0x1)";
        assert!(ran_out_of_heap(oom));
        assert!(!ran_out_of_heap("RuntimeError: unreachable\n    at php.wasm.zend_mm_alloc_huge"));
        assert!(!ran_out_of_heap("RuntimeError: memory access out of bounds"));
    }
}

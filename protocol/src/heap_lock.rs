//! The word of the shared heap's allocator lock (worker/src/fault.rs): who
//! holds it, written by the worker that takes it and read by the host when a
//! worker dies. One encoding for both.

/// The word's value while worker `index` holds the lock (0 means free).
pub fn held_by(index: u32) -> u32 {
    index.wrapping_add(1)
}

/// Whether worker `index` held the lock when the word read `word`.
pub fn is_held_by(word: u32, index: u32) -> bool {
    word != 0 && word == held_by(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_is_nobody_and_each_worker_is_itself() {
        assert!(!is_held_by(0, 0));
        assert!(is_held_by(held_by(0), 0));
        assert!(!is_held_by(held_by(1), 0));
        assert!(!is_held_by(held_by(u32::MAX), u32::MAX), "an index without a worker holds nothing");
    }
}

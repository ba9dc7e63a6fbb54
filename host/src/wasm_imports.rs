//! Reads the memory a wasm module imports (its minimum and maximum pages),
//! so the host creates a shared memory the worker module accepts without
//! hard-coding what the linker and wasm-bindgen chose.

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct MemoryLimits {
    pub min_pages: u64,
    pub max_pages: Option<u64>,
    pub shared: bool,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn leb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.pos = self.pos.checked_add(n).filter(|&p| p <= self.bytes.len())?;
        Some(())
    }

    fn name(&mut self) -> Option<()> {
        let len = self.leb()? as usize;
        self.skip(len)
    }

    fn limits(&mut self) -> Option<MemoryLimits> {
        let flags = self.byte()?;
        let min_pages = self.leb()?;
        let max_pages = if flags & 1 != 0 { Some(self.leb()?) } else { None };
        Some(MemoryLimits { min_pages, max_pages, shared: flags & 2 != 0 })
    }
}

/// The limits of the first imported memory, or `None` if the module imports
/// none or is malformed.
pub fn imported_memory(module: &[u8]) -> Option<MemoryLimits> {
    if module.get(..4)? != b"\0asm" {
        return None;
    }
    let mut r = Reader { bytes: module, pos: 8 };
    while r.pos < module.len() {
        let id = r.byte()?;
        let size = r.leb()? as usize;
        let end = r.pos.checked_add(size)?;
        if id != 2 {
            r.skip(size)?;
            continue;
        }
        let count = r.leb()?;
        for _ in 0..count {
            r.name()?;
            r.name()?;
            match r.byte()? {
                0 => {
                    r.leb()?;
                }
                1 => {
                    r.byte()?;
                    r.limits()?;
                }
                2 => return r.limits(),
                3 => {
                    r.byte()?;
                    r.byte()?;
                }
                _ => return None,
            }
        }
        r.pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module importing a function, then `env.memory` shared 513..65536 pages.
    fn module() -> Vec<u8> {
        let mut imports = vec![2u8]; // two imports
        imports.extend([3, b'e', b'n', b'v', 1, b'f', 0, 0]); // func, type 0
        imports.extend([3, b'e', b'n', b'v', 6, b'm', b'e', b'm', b'o', b'r', b'y', 2, 3]);
        imports.extend([0x81, 0x04]); // min 513
        imports.extend([0x80, 0x80, 0x04]); // max 65536
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        m.push(2);
        m.push(imports.len() as u8);
        m.extend(imports);
        m
    }

    #[test]
    fn finds_shared_memory_limits() {
        assert_eq!(
            imported_memory(&module()),
            Some(MemoryLimits { min_pages: 513, max_pages: Some(65536), shared: true })
        );
    }

    #[test]
    fn malformed_or_memoryless_modules_give_none() {
        let m = module();
        assert_eq!(imported_memory(&m[..m.len() - 2]), None);
        assert_eq!(imported_memory(b"\0asm\x01\0\0\0"), None);
        assert_eq!(imported_memory(b"not wasm"), None);
    }
}

//! `%XX` decoding, one rule for the whole runtime.

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The byte a `%XX` at `at` stands for.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    Some(hex(*bytes.get(at + 1)?)? << 4 | hex(*bytes.get(at + 2)?)?)
}

/// Every `%XX` decoded; a `%` that does not start one is kept, as browsers
/// keep it in a URL's path.
pub fn decode_lenient(text: &str) -> alloc::vec::Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = alloc::vec::Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], escape_at(bytes, i)) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Every `%XX` decoded; `None` when a `%` does not start one (a malformed
/// form field).
pub fn decode_strict(text: &str) -> Option<alloc::vec::Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = alloc::vec::Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(escape_at(bytes, i)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_a_stray_percent_is_kept_or_refused() {
        assert_eq!(decode_lenient("a%20b%2Fc%2fd"), b"a b/c/d");
        for stray in ["100%", "a%2", "%zz%41", "%", "%%41"] {
            assert_eq!(decode_strict(stray), None, "{stray}");
        }
        assert_eq!(decode_lenient("100%"), b"100%");
        assert_eq!(decode_lenient("a%2"), b"a%2");
        assert_eq!(decode_lenient("%zz%41"), b"%zzA");
        assert_eq!(decode_lenient("%%41"), b"%A");
        assert_eq!(decode_strict("x%3Dy%26z"), Some(b"x=y&z".to_vec()));
        assert_eq!(decode_lenient("%e2%82%ac"), "€".as_bytes());
    }
}

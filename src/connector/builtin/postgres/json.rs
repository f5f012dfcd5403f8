//! The innermost loop of reading and writing JSON strings, shared by the
//! source (which escapes COPY's text into JSON) and the destination (which
//! checks the strings of every record): where a run of bytes a JSON string
//! holds as they are ends.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The first byte of `b` a JSON string cannot hold as it is: a quote, a
/// backslash or a control character. Eight bytes at a time: strings are
/// most of a record's bytes.
#[inline]
pub(super) fn string_stop(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        // The classic zero-byte tests. A flag may be false only above a
        // true one (borrows run upwards), so the lowest flag is right.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q & HIGH;
        let s = w ^ (ONES * u64::from(b'\\'));
        let backslash = s.wrapping_sub(ONES) & !s & HIGH;
        let hits = control | quote | backslash;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// The first `byte` in `b`, eight bytes at a time: for the short runs of
/// a row's fields, where a SIMD search costs more to set up than it saves.
#[inline]
pub(super) fn find_byte(b: &[u8], byte: u8) -> Option<usize> {
    let mut i = 0;
    let pattern = ONES * u64::from(byte);
    while let Some(word) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ pattern;
        let hits = w.wrapping_sub(ONES) & !w & HIGH;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == byte).map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_a_string_cannot_hold_is_found() {
        let slow = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"plain ascii, no stop".to_vec()];
        for stop in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for at in 0..20 {
                let mut v = "é🚀x".repeat(3).into_bytes();
                v.truncate(at.min(v.len()));
                v.push(stop);
                v.extend_from_slice(b"\"tail\\");
                cases.push(v);
            }
        }
        // Bytes next to the stops that are not stops.
        cases.push(vec![
            0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff, 0x21, b'"',
        ]);
        for c in cases {
            assert_eq!(string_stop(&c), slow(&c), "{c:?}");
            for byte in [b'"', b'\\', 0, b'\t', 0xff] {
                let want = c.iter().position(|&x| x == byte);
                assert_eq!(find_byte(&c, byte), want, "{byte} in {c:?}");
            }
        }
    }
}

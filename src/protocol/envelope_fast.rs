//! The fast path of the envelope scanner, in the manner of simdjson, one
//! line at a time:
//!
//! 1. Each 64-byte block is classified with SIMD (AVX2 when the CPU has it,
//!    else SSE2, which x86_64 always has) into bit masks: quotes,
//!    backslashes, spaces and structural characters. From them come the
//!    escaped characters (odd runs of backslashes), the bytes inside strings
//!    (a prefix XOR of the unescaped quotes) and the tokens: structural
//!    characters outside strings, opening quotes, and the first byte of
//!    every run of other bytes outside strings (a number, a literal, or
//!    garbage). A line inside a larger buffer is read in place, the bytes
//!    past its end masked off, so only a buffer's last line is copied.
//! 2. The line's tokens are walked by a small grammar that checks the JSON
//!    structure and picks out the envelope's fields; containers the envelope
//!    does not look inside go to a validator that follows the grammar in
//!    its branches (the branch predictor learns a stream's record shape).
//!
//! It answers only for lines it has fully validated. A line it declines
//! (an escaped key, bad JSON of any kind) goes to the scalar scanner, which
//! gives the precise error; so does a line with anything unusual (a control
//! character, a string left open, bytes that are not UTF-8); it goes
//! line by line through the scalar path. So this path must never accept a
//! line the scalar scanner refuses, and must extract exactly what it
//! extracts; the tests in `envelope` hold it to both.

use super::envelope::{find_string_stop, Envelope, MessageKind, RecordEnvelope};
use std::arch::x86_64::*;
use std::borrow::Cow;
use std::cell::RefCell;

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;
const MAX_DEPTH: usize = 64;

/// Masks of one 64-byte block.
#[derive(Default)]
struct Block {
    quote: u64,
    backslash: u64,
    space: u64,
    structural: u64,
    /// Bytes below 0x20.
    control: u64,
    /// Bytes at or above 0x80.
    high: u64,
}

/// `{` and `[` both become 0x7b when OR-ed with 0x20, `}` and `]` both 0x7d;
/// no other byte does.
const OPEN_FOLDED: i8 = 0x7b;
const CLOSE_FOLDED: i8 = 0x7d;

/// One way to classify a block; a type parameter, so each variant is
/// compiled (and inlined) with its own instruction set.
trait Classify {
    unsafe fn classify(chunk: &[u8; 64]) -> Block;
}

struct Sse2;
struct Avx2;

impl Classify for Sse2 {
    #[inline(always)]
    unsafe fn classify(chunk: &[u8; 64]) -> Block {
        classify_sse2(chunk)
    }
}

impl Classify for Avx2 {
    #[inline(always)]
    unsafe fn classify(chunk: &[u8; 64]) -> Block {
        classify_avx2(chunk)
    }
}

#[inline(always)]
unsafe fn classify_sse2(chunk: &[u8; 64]) -> Block {
    let mut b = Block::default();
    for k in 0..4 {
        let v = _mm_loadu_si128(chunk.as_ptr().add(16 * k) as *const __m128i);
        let shift = 16 * k as u32;
        let m = |x: __m128i| (_mm_movemask_epi8(x) as u32 as u64) << shift;
        let eq = |c: i8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c));
        b.quote |= m(eq(b'"' as i8));
        b.backslash |= m(eq(b'\\' as i8));
        b.space |= m(eq(b' ' as i8));
        let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let brackets = _mm_or_si128(
            _mm_cmpeq_epi8(folded, _mm_set1_epi8(OPEN_FOLDED)),
            _mm_cmpeq_epi8(folded, _mm_set1_epi8(CLOSE_FOLDED)),
        );
        let punct = _mm_or_si128(eq(b':' as i8), eq(b',' as i8));
        b.structural |= m(_mm_or_si128(brackets, punct));
        b.control |= m(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v));
        b.high |= m(v);
    }
    b
}

#[inline(always)]
unsafe fn classify_avx2(chunk: &[u8; 64]) -> Block {
    let mut b = Block::default();
    for k in 0..2 {
        let v = _mm256_loadu_si256(chunk.as_ptr().add(32 * k) as *const __m256i);
        let shift = 32 * k as u32;
        let m = |x: __m256i| (_mm256_movemask_epi8(x) as u32 as u64) << shift;
        let eq = |c: i8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c));
        b.quote |= m(eq(b'"' as i8));
        b.backslash |= m(eq(b'\\' as i8));
        b.space |= m(eq(b' ' as i8));
        let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        let brackets = _mm256_or_si256(
            _mm256_cmpeq_epi8(folded, _mm256_set1_epi8(OPEN_FOLDED)),
            _mm256_cmpeq_epi8(folded, _mm256_set1_epi8(CLOSE_FOLDED)),
        );
        let punct = _mm256_or_si256(eq(b':' as i8), eq(b',' as i8));
        b.structural |= m(_mm256_or_si256(brackets, punct));
        b.control |= m(_mm256_cmpeq_epi8(
            _mm256_min_epu8(v, _mm256_set1_epi8(0x1f)),
            v,
        ));
        b.high |= m(v);
    }
    b
}

/// Characters preceded by an odd run of backslashes. `carry` says whether
/// the block's first byte is escaped by a run that ended the last block.
#[inline(always)]
fn escaped(backslash: u64, carry: &mut u64) -> u64 {
    let starts_escaped = *carry;
    let b = backslash & !starts_escaped;
    let follows = (b << 1) | starts_escaped;
    let odd_starts = b & !EVEN_BITS & !follows;
    let (even_runs, overflow) = odd_starts.overflowing_add(b);
    *carry = overflow as u64;
    (EVEN_BITS ^ (even_runs << 1)) & follows
}

#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Checks the escape sequences of a block: each escaped character must be
/// one JSON allows, and `\u` needs four hex digits.
#[inline(never)]
fn escapes_valid(text: &[u8], base: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let p = base + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        match text.get(p) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
            Some(b'u') => {
                let hex = text.get(p + 1..p + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// What stage 1 learned of a chunk.
struct Summary {
    high: bool,
    backslash: bool,
}

/// Stage 1 over the line `buf[start..end]`: token positions, relative to
/// `start`, in order, into `tokens`. `None` when the line needs the scalar
/// path. Bytes of `buf` past `end` are read but never count.
#[inline(always)]
unsafe fn tokenize_with<C: Classify>(
    buf: &[u8],
    start: usize,
    end: usize,
    tokens: &mut Vec<u32>,
) -> Option<Summary> {
    let len = end - start;
    tokens.clear();
    // At most one token per byte, plus the padding of the last block.
    tokens.reserve(len + 64);
    let mut out = tokens.as_mut_ptr();
    let mut escape_carry = 0u64;
    let mut string_carry = 0u64;
    let mut other_carry = 0u64;
    let mut s = Summary {
        high: false,
        backslash: false,
    };
    let mut base = 0;
    let mut tail = [b' '; 64];
    while base < len {
        let at = start + base;
        let block: &[u8; 64] = match buf.get(at..at + 64) {
            Some(b) => b.try_into().expect("64 bytes"),
            None => {
                let rest = &buf[at..end];
                tail[..rest.len()].copy_from_slice(rest);
                &tail
            }
        };
        let mut m = C::classify(block);
        if len - base < 64 {
            // The bytes past the line's end are as spaces.
            let past = !0u64 << (len - base);
            m.quote &= !past;
            m.backslash &= !past;
            m.structural &= !past;
            m.control &= !past;
            m.high &= !past;
            m.space |= past;
        }
        // Any control byte (a newline, a tab: rare in protocol lines) sends
        // the line to the careful path.
        if m.control != 0 {
            return None;
        }
        s.high |= m.high != 0;
        if m.backslash != 0 {
            s.backslash = true;
        }
        let esc = escaped(m.backslash, &mut escape_carry);
        if esc != 0 && !escapes_valid(&buf[start..end], base, esc) {
            return None;
        }
        let quotes = m.quote & !esc;
        let in_string = prefix_xor(quotes) ^ string_carry;
        string_carry = ((in_string as i64) >> 63) as u64;
        let outside = !in_string;
        let other = !(m.quote | m.space | m.structural) & outside;
        let scalar_starts = other & !((other << 1) | other_carry);
        other_carry = other >> 63;
        // Opening quotes are the quotes inside (the closing ones are not).
        let mut bits = (m.structural & outside) | (quotes & in_string) | scalar_starts;
        while bits != 0 {
            // SAFETY: at most one token per byte of the line and its
            // padding, within the capacity reserved above.
            out.write(base as u32 + bits.trailing_zeros());
            out = out.add(1);
            bits &= bits - 1;
        }
        base += 64;
    }
    if string_carry != 0 {
        return None;
    }
    // SAFETY: every slot up to `out` was written above.
    let n = out.offset_from(tokens.as_ptr()) as usize;
    tokens.set_len(n);
    Some(s)
}

#[target_feature(enable = "avx2")]
unsafe fn tokenize_avx2(
    buf: &[u8],
    start: usize,
    end: usize,
    tokens: &mut Vec<u32>,
) -> Option<Summary> {
    tokenize_with::<Avx2>(buf, start, end, tokens)
}

unsafe fn tokenize_sse2(
    buf: &[u8],
    start: usize,
    end: usize,
    tokens: &mut Vec<u32>,
) -> Option<Summary> {
    tokenize_with::<Sse2>(buf, start, end, tokens)
}

fn tokenize(buf: &[u8], start: usize, end: usize, tokens: &mut Vec<u32>) -> Option<Summary> {
    if end - start >= u32::MAX as usize - 64 {
        return None;
    }
    // SAFETY: AVX2 is used only where the CPU reports it; SSE2 is always
    // present on x86_64.
    unsafe {
        if std::is_x86_feature_detected!("avx2") {
            tokenize_avx2(buf, start, end, tokens)
        } else {
            tokenize_sse2(buf, start, end, tokens)
        }
    }
}

thread_local! {
    static TOKENS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The envelope of the line `buf[start..end]` if it is valid, or `None` to
/// let the scalar scanner decide.
pub fn scan_in(buf: &[u8], start: usize, end: usize) -> Option<Envelope<'_>> {
    let line = &buf[start..end];
    TOKENS.with(|t| {
        let mut tokens = t.borrow_mut();
        let s = tokenize(buf, start, end, &mut tokens)?;
        if s.high && std::str::from_utf8(line).is_err() {
            return None;
        }
        walk(line, &tokens, s.backslash)
    })
}

/// Where a number or literal that starts at `p` ends; `None` if it is not one.
#[inline(always)]
fn scalar_end(b: &[u8], p: usize) -> Option<usize> {
    let lit = |w: &[u8]| (b.get(p..p + w.len()) == Some(w)).then_some(p + w.len());
    match b[p] {
        b't' => lit(b"true"),
        b'f' => lit(b"false"),
        b'n' => lit(b"null"),
        b'-' | b'0'..=b'9' => {
            let mut i = p;
            if b[i] == b'-' {
                i += 1;
            }
            let digits = |i: &mut usize| {
                let s = *i;
                while b.get(*i).is_some_and(u8::is_ascii_digit) {
                    *i += 1;
                }
                *i - s
            };
            match b.get(i) {
                Some(b'0') => i += 1,
                Some(b'1'..=b'9') => {
                    digits(&mut i);
                }
                _ => return None,
            }
            if b.get(i) == Some(&b'.') {
                i += 1;
                if digits(&mut i) == 0 {
                    return None;
                }
            }
            if matches!(b.get(i), Some(b'e' | b'E')) {
                i += 1;
                if matches!(b.get(i), Some(b'+' | b'-')) {
                    i += 1;
                }
                if digits(&mut i) == 0 {
                    return None;
                }
            }
            Some(i)
        }
        _ => None,
    }
}

/// Checks the number or literal at `p` and that it ends where its run of
/// plain bytes ends; returns its end.
#[inline(always)]
fn scalar(b: &[u8], p: usize) -> Option<usize> {
    let end = scalar_end(b, p)?;
    match b.get(end) {
        None | Some(b' ' | b'"' | b',' | b':' | b'{' | b'}' | b'[' | b']' | b'\n') => Some(end),
        _ => None,
    }
}

/// The closing quote of the string that opens at `o`. Escapes were already
/// checked, so skipping the byte after a backslash is enough.
#[inline(always)]
fn string_end(b: &[u8], o: usize) -> Option<usize> {
    let mut i = o + 1;
    loop {
        i += find_string_stop(&b[i..])?;
        match b[i] {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => return None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    /// After `{`: a key or `}`.
    KeyOrClose,
    /// After `,` in an object.
    Key,
    Colon,
    CommaOrClose,
    Done,
}

/// Which field's value comes next, for the fields the envelope needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    Type,
    Record,
    Stream,
    Namespace,
    Data,
}

// The container validator follows the grammar in its control flow, not in
// a state table: records of one stream all have the same shape, so the
// branch predictor learns it and each token costs a compare or two, where a
// table lookup would chain a dependent load per token.

/// The byte the token `i` starts with, if there is such a token.
#[inline(always)]
fn token(b: &[u8], tokens: &[u32], i: usize) -> Option<u8> {
    tokens.get(i).map(|&p| b[p as usize])
}

/// Validates the value whose first token is `tokens[i]`, inside `depth`
/// open containers; returns the index of its last token.
#[inline(always)]
fn value(b: &[u8], tokens: &[u32], i: usize, depth: usize) -> Option<usize> {
    let p = *tokens.get(i)? as usize;
    match b[p] {
        b'"' => Some(i),
        b'{' | b'[' => container_at(b, tokens, i, depth + 1),
        b'}' | b']' | b',' | b':' => None,
        _ => scalar(b, p).map(|_| i),
    }
}

/// Validates the container opening at `tokens[i]` as the `depth`th open
/// one; returns the index of its closing bracket's token.
#[inline(never)]
fn container_at(b: &[u8], tokens: &[u32], mut i: usize, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    i += 1;
    if b[tokens[i - 1] as usize] == b'{' {
        if token(b, tokens, i)? == b'}' {
            return Some(i);
        }
        loop {
            if token(b, tokens, i)? != b'"' || token(b, tokens, i + 1)? != b':' {
                return None;
            }
            i = value(b, tokens, i + 2, depth)? + 1;
            match token(b, tokens, i)? {
                b',' => i += 1,
                b'}' => return Some(i),
                _ => return None,
            }
        }
    } else {
        if token(b, tokens, i)? == b']' {
            return Some(i);
        }
        loop {
            i = value(b, tokens, i, depth)? + 1;
            match token(b, tokens, i)? {
                b',' => i += 1,
                b']' => return Some(i),
                _ => return None,
            }
        }
    }
}

/// Validates the container whose opening bracket is `tokens[i]`; returns
/// the index of its closing bracket's token.
#[inline(always)]
fn container(b: &[u8], tokens: &[u32], i: usize) -> Option<usize> {
    container_at(b, tokens, i, 1)
}

/// Stage 2 for one line: the grammar of the top object and the `record`
/// object, where the envelope's fields are; other containers go to
/// [`container`]. `tokens` are the line's tokens, positions into `b`.
#[inline(always)]
fn walk<'a>(b: &'a [u8], tokens: &[u32], has_backslash: bool) -> Option<Envelope<'a>> {
    let mut expect = Expect::Value;
    // 0 outside, 1 in the top object, 2 in the record object.
    let mut depth = 0usize;
    let mut field = Field::Other;
    let mut seen_record = false;
    let mut kind: Option<&[u8]> = None;
    let mut stream: Option<&[u8]> = None;
    let mut namespace: Option<Option<&[u8]>> = None;
    let mut data: Option<&[u8]> = None;
    let after_value = |depth: usize| {
        if depth == 0 {
            Expect::Done
        } else {
            Expect::CommaOrClose
        }
    };
    let mut i = 0;
    while i < tokens.len() {
        let p = tokens[i] as usize;
        let c = b[p];
        match c {
            b'"' => {
                let interesting =
                    matches!(expect, Expect::KeyOrClose | Expect::Key) || field != Field::Other;
                if !interesting {
                    if expect != Expect::Value {
                        return None;
                    }
                    expect = after_value(depth);
                    i += 1;
                    continue;
                }
                let e = string_end(b, p)?;
                let text = &b[p + 1..e];
                // An escaped key or name might spell anything: decode it slowly.
                let escaped = has_backslash && text.contains(&b'\\');
                match expect {
                    Expect::KeyOrClose | Expect::Key => {
                        if escaped {
                            return None;
                        }
                        field = match (depth, text) {
                            (1, b"type") => Field::Type,
                            (1, b"record") => Field::Record,
                            (2, b"stream") => Field::Stream,
                            (2, b"namespace") => Field::Namespace,
                            (2, b"data") => Field::Data,
                            _ => Field::Other,
                        };
                        expect = Expect::Colon;
                    }
                    Expect::Value => {
                        let slot_taken = match field {
                            Field::Type if !escaped => kind.replace(text).is_some(),
                            Field::Stream if !escaped => stream.replace(text).is_some(),
                            Field::Namespace if !escaped => namespace.replace(Some(text)).is_some(),
                            Field::Data => data.replace(&b[p..e + 1]).is_some(),
                            _ => true,
                        };
                        if slot_taken {
                            return None;
                        }
                        field = Field::Other;
                        expect = after_value(depth);
                    }
                    _ => return None,
                }
            }
            b',' => {
                if expect != Expect::CommaOrClose {
                    return None;
                }
                expect = Expect::Key;
            }
            b':' => {
                if expect != Expect::Colon {
                    return None;
                }
                expect = Expect::Value;
            }
            b'{' if expect == Expect::Value
                && (depth == 0 || (depth == 1 && field == Field::Record)) =>
            {
                if depth == 1 {
                    if seen_record {
                        return None;
                    }
                    seen_record = true;
                }
                depth += 1;
                field = Field::Other;
                expect = Expect::KeyOrClose;
            }
            b'{' | b'[' => {
                if expect != Expect::Value || depth == 0 {
                    return None;
                }
                let close = container(b, tokens, i)?;
                match field {
                    Field::Data => {
                        let q = tokens[close] as usize;
                        if data.replace(&b[p..q + 1]).is_some() {
                            return None;
                        }
                    }
                    Field::Other => {}
                    // A container where a string belongs: the scalar path
                    // reports it.
                    _ => return None,
                }
                i = close;
                field = Field::Other;
                expect = after_value(depth);
            }
            b'}' => {
                if !matches!(expect, Expect::CommaOrClose | Expect::KeyOrClose) || depth == 0 {
                    return None;
                }
                depth -= 1;
                field = Field::Other;
                expect = after_value(depth);
            }
            b']' | b'\n' => return None,
            _ => {
                if expect != Expect::Value {
                    return None;
                }
                let end = scalar(b, p)?;
                match field {
                    Field::Other => {}
                    Field::Namespace if &b[p..end] == b"null" => {
                        if namespace.replace(None).is_some() {
                            return None;
                        }
                    }
                    Field::Data => {
                        if data.replace(&b[p..end]).is_some() {
                            return None;
                        }
                    }
                    _ => return None,
                }
                field = Field::Other;
                expect = after_value(depth);
            }
        }
        i += 1;
    }
    if expect != Expect::Done {
        return None;
    }
    let kind = match kind? {
        b"RECORD" => MessageKind::Record,
        b"STATE" => MessageKind::State,
        b"LOG" => MessageKind::Log,
        b"TRACE" => MessageKind::Trace,
        b"SPEC" => MessageKind::Spec,
        b"CONNECTION_STATUS" => MessageKind::ConnectionStatus,
        b"CATALOG" => MessageKind::Catalog,
        b"CONTROL" => MessageKind::Control,
        b"DESTINATION_CATALOG" => MessageKind::DestinationCatalog,
        b"SLUICE_ROWS" => MessageKind::Rows,
        _ => return None,
    };
    let record = if kind == MessageKind::Record {
        // The text is valid UTF-8 (checked when it has bytes >= 0x80, and
        // ASCII otherwise), and the names end at ASCII quotes.
        let text = |s: &'a [u8]| std::str::from_utf8(s).ok();
        Some(RecordEnvelope {
            stream: Cow::Borrowed(text(stream?)?),
            namespace: match namespace {
                Some(Some(ns)) => Some(Cow::Borrowed(text(ns)?)),
                _ => None,
            },
            data: data?,
        })
    } else {
        None
    };
    Some(Envelope { kind, record })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escaped characters by the obvious method, for comparison.
    fn escaped_slow(bytes: &[u8]) -> Vec<bool> {
        let mut escape_next = false;
        bytes
            .iter()
            .map(|&c| {
                let this = escape_next;
                escape_next = !this && c == b'\\';
                this
            })
            .collect()
    }

    #[test]
    fn escape_masks_match_the_obvious_method_across_blocks() {
        let mut x: u64 = 12345;
        for _ in 0..5000 {
            let mut bytes = vec![0u8; 192];
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if x.is_multiple_of(3) { b'a' } else { b'\\' };
            }
            let want = escaped_slow(&bytes);
            let mut carry = 0;
            for blk in 0..3 {
                let mut mask = 0u64;
                for i in 0..64 {
                    if bytes[blk * 64 + i] == b'\\' {
                        mask |= 1 << i;
                    }
                }
                let e = escaped(mask, &mut carry);
                for i in 0..64 {
                    assert_eq!(e >> i & 1 == 1, want[blk * 64 + i], "block {blk} bit {i}");
                }
            }
        }
    }

    #[test]
    fn prefix_xor_marks_string_insides() {
        // Quotes at 1 and 4: bytes 1..4 are inside.
        assert_eq!(prefix_xor(0b10010), 0b01110);
    }

    #[test]
    fn sse2_and_avx2_classify_alike() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut x: u64 = 99;
        for _ in 0..2000 {
            let mut block = [0u8; 64];
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let alphabet = b"\"\\ \n{}[]:,a\x01\xc3";
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            // SAFETY: AVX2 was detected above.
            let (a, b) = unsafe { (classify_sse2(&block), classify_avx2(&block)) };
            assert_eq!(
                (
                    a.quote,
                    a.backslash,
                    a.space,
                    a.structural,
                    a.control,
                    a.high
                ),
                (
                    b.quote,
                    b.backslash,
                    b.space,
                    b.structural,
                    b.control,
                    b.high
                )
            );
        }
    }
}

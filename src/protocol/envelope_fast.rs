//! The fast path of the envelope scanner, in the manner of simdjson:
//!
//! 1. Each 64-byte block of the line is classified with SSE2 (part of
//!    x86_64 itself) into bit masks: quotes, backslashes, spaces and
//!    structural characters. From them come the escaped characters (odd runs
//!    of backslashes), the bytes inside strings (a prefix XOR of the
//!    unescaped quotes) and the tokens: structural characters outside
//!    strings, opening quotes, and the first byte of every run of other
//!    bytes outside strings (a number or a literal, or garbage).
//! 2. Only the tokens are walked, by a small grammar that checks the JSON
//!    structure and picks out the envelope's fields.
//!
//! It answers only for lines it has fully validated. Anything unusual (a
//! control character, an escaped key, bad JSON of any kind) returns `None`
//! and the scalar scanner decides, with its precise error. So this path
//! must never accept a line the scalar scanner refuses, and must extract
//! exactly what it extracts; the tests in `envelope` hold it to both.

use super::envelope::{Envelope, MessageKind, RecordEnvelope};
use std::arch::x86_64::*;
use std::borrow::Cow;
use std::cell::RefCell;

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;
const MAX_DEPTH: usize = 64;

/// What stage 1 learns of a whole line.
struct Summary {
    control: bool,
    high: bool,
    backslash: bool,
    /// Whether the line ends inside a string.
    open_string: bool,
}

/// Masks of one 64-byte block.
struct Block {
    quote: u64,
    backslash: u64,
    space: u64,
    structural: u64,
    control: bool,
    high: bool,
}

#[inline(always)]
fn classify(chunk: &[u8; 64]) -> Block {
    let mut b = Block {
        quote: 0,
        backslash: 0,
        space: 0,
        structural: 0,
        control: false,
        high: false,
    };
    // SAFETY: SSE2 is always present on x86_64; each load reads 16 bytes
    // inside the 64-byte array.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let space = _mm_set1_epi8(b' ' as i8);
        let lower = _mm_set1_epi8(0x20);
        // `{` and `[` both become 0x7b when OR-ed with 0x20, `}` and `]`
        // both 0x7d; no other byte does.
        let open = _mm_set1_epi8(0x7b);
        let close = _mm_set1_epi8(0x7d);
        let colon = _mm_set1_epi8(b':' as i8);
        let comma = _mm_set1_epi8(b',' as i8);
        let below = _mm_set1_epi8(0x1f);
        let mut controls = _mm_setzero_si128();
        let mut highs = _mm_setzero_si128();
        for k in 0..4 {
            let v = _mm_loadu_si128(chunk.as_ptr().add(16 * k) as *const __m128i);
            let shift = 16 * k as u32;
            let m = |x: __m128i| (_mm_movemask_epi8(x) as u32 as u64) << shift;
            b.quote |= m(_mm_cmpeq_epi8(v, quote));
            b.backslash |= m(_mm_cmpeq_epi8(v, backslash));
            b.space |= m(_mm_cmpeq_epi8(v, space));
            let folded = _mm_or_si128(v, lower);
            let brackets =
                _mm_or_si128(_mm_cmpeq_epi8(folded, open), _mm_cmpeq_epi8(folded, close));
            let punct = _mm_or_si128(_mm_cmpeq_epi8(v, colon), _mm_cmpeq_epi8(v, comma));
            b.structural |= m(_mm_or_si128(brackets, punct));
            controls = _mm_or_si128(controls, _mm_cmpeq_epi8(_mm_min_epu8(v, below), v));
            highs = _mm_or_si128(highs, v);
        }
        b.control = _mm_movemask_epi8(controls) != 0;
        b.high = _mm_movemask_epi8(highs) != 0;
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
fn escapes_valid(line: &[u8], base: usize, mut escaped: u64) -> bool {
    while escaped != 0 {
        let p = base + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        match line.get(p) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
            Some(b'u') => {
                let hex = line.get(p + 1..p + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// Stage 1: the line's token positions, in order, into `tokens`.
#[inline(always)]
fn tokenize(line: &[u8], tokens: &mut Vec<u32>) -> Option<Summary> {
    tokens.clear();
    // At most one token per byte.
    tokens.reserve(line.len() + 64);
    let mut out = tokens.as_mut_ptr();
    let mut escape_carry = 0u64;
    let mut string_carry = 0u64;
    let mut other_carry = 0u64;
    let mut s = Summary {
        control: false,
        high: false,
        backslash: false,
        open_string: false,
    };
    let mut base = 0;
    let mut tail = [b' '; 64];
    while base < line.len() {
        let block: &[u8; 64] = match line.get(base..base + 64) {
            Some(b) => b.try_into().expect("64 bytes"),
            None => {
                let rest = &line[base..];
                tail[..rest.len()].copy_from_slice(rest);
                &tail
            }
        };
        let m = classify(block);
        s.control |= m.control;
        s.high |= m.high;
        if m.backslash != 0 {
            s.backslash = true;
        }
        let esc = escaped(m.backslash, &mut escape_carry);
        if esc != 0 && !escapes_valid(line, base, esc) {
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
            // SAFETY: at most one token per byte, plus the padding of the
            // last block, all within the capacity reserved above.
            unsafe {
                out.write(base as u32 + bits.trailing_zeros());
                out = out.add(1);
            }
            bits &= bits - 1;
        }
        base += 64;
    }
    // SAFETY: every slot up to `out` was written above.
    unsafe {
        let len = out.offset_from(tokens.as_ptr()) as usize;
        tokens.set_len(len);
    }
    // Padding is spaces, so no token lies past the line.
    s.open_string = string_carry != 0;
    Some(s)
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

/// The closing quote of the string that opens at `o`. Escapes in the line
/// were already checked, so skipping the byte after a backslash is enough.
#[inline(always)]
fn string_end(b: &[u8], o: usize, has_backslash: bool) -> Option<usize> {
    let mut i = o + 1;
    if has_backslash {
        loop {
            match *b.get(i)? {
                b'"' => return Some(i),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    } else {
        memchr::memchr(b'"', &b[i..]).map(|n| i + n)
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

thread_local! {
    static TOKENS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The envelope of a valid line, or `None` to let the scalar scanner decide.
pub fn scan(line: &[u8]) -> Option<Envelope<'_>> {
    if line.len() >= u32::MAX as usize {
        return None;
    }
    TOKENS.with(|t| {
        let mut tokens = t.borrow_mut();
        let s = tokenize(line, &mut tokens)?;
        if s.control || s.open_string {
            return None;
        }
        if s.high && std::str::from_utf8(line).is_err() {
            return None;
        }
        walk(line, &tokens, s.backslash)
    })
}

// Token classes and states of the container validator.
const C_QUOTE: usize = 0;
const C_COLON: usize = 1;
const C_COMMA: usize = 2;
const C_OPEN_OBJ: usize = 3;
const C_OPEN_ARR: usize = 4;
const C_CLOSE_OBJ: usize = 5;
const C_CLOSE_ARR: usize = 6;
const C_SCALAR: usize = 7;

static CLASS: [u8; 256] = {
    let mut t = [C_SCALAR as u8; 256];
    t[b'"' as usize] = C_QUOTE as u8;
    t[b':' as usize] = C_COLON as u8;
    t[b',' as usize] = C_COMMA as u8;
    t[b'{' as usize] = C_OPEN_OBJ as u8;
    t[b'[' as usize] = C_OPEN_ARR as u8;
    t[b'}' as usize] = C_CLOSE_OBJ as u8;
    t[b']' as usize] = C_CLOSE_ARR as u8;
    t
};

const OBJ_START: u8 = 0; // after `{`: a key or `}`
const OBJ_KEY: u8 = 1; // after `,`: a key
const OBJ_COLON: u8 = 2; // after a key: `:`
const OBJ_VALUE: u8 = 3; // after `:`: a value
const OBJ_AFTER: u8 = 4; // after a value: `,` or `}`
const ARR_START: u8 = 5; // after `[`: a value or `]`
const ARR_VALUE: u8 = 6; // after `,`: a value
const ARR_AFTER: u8 = 7; // after a value: `,` or `]`
const PUSH: u8 = 16;
const POP: u8 = 17;
const BAD: u8 = 18;

/// Next state for each state and token class; PUSH and POP change depth.
static NEXT: [[u8; 8]; 8] = {
    let mut t = [[BAD; 8]; 8];
    t[OBJ_START as usize][C_QUOTE] = OBJ_COLON;
    t[OBJ_START as usize][C_CLOSE_OBJ] = POP;
    t[OBJ_KEY as usize][C_QUOTE] = OBJ_COLON;
    t[OBJ_COLON as usize][C_COLON] = OBJ_VALUE;
    t[OBJ_VALUE as usize][C_QUOTE] = OBJ_AFTER;
    t[OBJ_VALUE as usize][C_SCALAR] = OBJ_AFTER;
    t[OBJ_VALUE as usize][C_OPEN_OBJ] = PUSH;
    t[OBJ_VALUE as usize][C_OPEN_ARR] = PUSH;
    t[OBJ_AFTER as usize][C_COMMA] = OBJ_KEY;
    t[OBJ_AFTER as usize][C_CLOSE_OBJ] = POP;
    let mut s = ARR_START as usize;
    while s <= ARR_VALUE as usize {
        t[s][C_QUOTE] = ARR_AFTER;
        t[s][C_SCALAR] = ARR_AFTER;
        t[s][C_OPEN_OBJ] = PUSH;
        t[s][C_OPEN_ARR] = PUSH;
        s += 1;
    }
    t[ARR_START as usize][C_CLOSE_ARR] = POP;
    t[ARR_AFTER as usize][C_COMMA] = ARR_VALUE;
    t[ARR_AFTER as usize][C_CLOSE_ARR] = POP;
    t
};

/// Validates the container whose opening bracket is `tokens[i]`; returns
/// the index of its closing bracket's token.
#[inline(always)]
fn container(b: &[u8], tokens: &[u32], mut i: usize) -> Option<usize> {
    // What to return to when a nested container closes.
    let mut resume = [0u8; MAX_DEPTH];
    let mut depth = 1usize;
    let mut state = if b[tokens[i] as usize] == b'{' {
        OBJ_START
    } else {
        ARR_START
    };
    loop {
        i += 1;
        let p = *tokens.get(i)? as usize;
        let class = CLASS[b[p] as usize] as usize;
        let next = NEXT[state as usize][class];
        if next < PUSH {
            if class == C_SCALAR {
                scalar(b, p)?;
            }
            state = next;
            continue;
        }
        match next {
            PUSH => {
                if depth == MAX_DEPTH {
                    return None;
                }
                resume[depth] = if state < ARR_START {
                    OBJ_AFTER
                } else {
                    ARR_AFTER
                };
                depth += 1;
                state = if class == C_OPEN_OBJ {
                    OBJ_START
                } else {
                    ARR_START
                };
            }
            POP => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
                state = resume[depth];
            }
            _ => return None,
        }
    }
}

/// Checks the number or literal at `p` and that it ends where its run of
/// plain bytes ends; returns its end.
#[inline(always)]
fn scalar(b: &[u8], p: usize) -> Option<usize> {
    let end = scalar_end(b, p)?;
    match b.get(end) {
        None | Some(b' ' | b'"' | b',' | b':' | b'{' | b'}' | b'[' | b']') => Some(end),
        _ => None,
    }
}

/// Stage 2: the grammar of the top object and the `record` object, where
/// the envelope's fields are; other containers go to [`container`].
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
                let e = string_end(b, p, has_backslash)?;
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
                            Field::Other => false,
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
            b']' => return None,
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
        _ => return None,
    };
    let record = if kind == MessageKind::Record {
        // The line is valid UTF-8 (checked when it has bytes >= 0x80, and
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
                *b = if x % 3 == 0 { b'a' } else { b'\\' };
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
}

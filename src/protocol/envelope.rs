//! The envelope of a protocol line: its type and, for a RECORD, its stream,
//! namespace and the raw bytes of its `data`.
//!
//! This is the hot path of every sync. The scanner validates the whole line as
//! JSON (so a destination is never handed a broken line) but builds no value
//! tree: `data` stays a byte slice of the line. It must agree with
//! `serde_json` on what is valid JSON; the differential tests below hold it
//! to that.

use std::borrow::Cow;

/// The type of a protocol message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Record,
    State,
    Log,
    Spec,
    ConnectionStatus,
    Catalog,
    Trace,
    Control,
    DestinationCatalog,
    /// sluice's own `SLUICE_ROWS`: a batch of rows handed from a built-in
    /// source to a built-in destination (`connector::builtin::handoff`).
    Rows,
}

impl MessageKind {
    fn from_bytes(s: &[u8]) -> Option<MessageKind> {
        Some(match s {
            b"RECORD" => MessageKind::Record,
            b"STATE" => MessageKind::State,
            b"LOG" => MessageKind::Log,
            b"SPEC" => MessageKind::Spec,
            b"CONNECTION_STATUS" => MessageKind::ConnectionStatus,
            b"CATALOG" => MessageKind::Catalog,
            b"TRACE" => MessageKind::Trace,
            b"CONTROL" => MessageKind::Control,
            b"DESTINATION_CATALOG" => MessageKind::DestinationCatalog,
            b"SLUICE_ROWS" => MessageKind::Rows,
            _ => return None,
        })
    }
}

/// A RECORD's routing fields, borrowed from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEnvelope<'a> {
    pub stream: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    /// The raw JSON of `data`, exactly as it stands in the line.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub kind: MessageKind,
    /// Present exactly when `kind` is `Record`.
    pub record: Option<RecordEnvelope<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not valid JSON ({0} at byte {1})")]
    Syntax(&'static str, usize),
    #[error("not valid UTF-8")]
    Utf8,
    #[error("not a JSON object")]
    NotAnObject,
    #[error("no `type` field")]
    NoType,
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("a RECORD message without {0}")]
    BadRecord(&'static str),
    #[error("the `{0}` field appears twice")]
    Duplicate(&'static str),
}

/// Deepest nesting accepted; deeper lines are refused rather than risking the stack.
const MAX_DEPTH: usize = 512;

/// Scans one line (without its newline).
pub fn scan(line: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    scan_in(line, 0, line.len())
}

/// Scans the line `buf[start..end]` (without its newline) where it lies:
/// the fast path reads a line inside a larger buffer in place.
pub fn scan_in(buf: &[u8], start: usize, end: usize) -> Result<Envelope<'_>, EnvelopeError> {
    #[cfg(target_arch = "x86_64")]
    if let Some(envelope) = super::envelope_fast::scan_in(buf, start, end) {
        return Ok(envelope);
    }
    scan_scalar(&buf[start..end])
}

/// The scalar scanner: every line the fast path declines, with precise errors.
pub fn scan_scalar(line: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    // Validating UTF-8 up front lets the scanner treat bytes >= 0x80 as
    // opaque string content; std's check is word-at-a-time on ASCII.
    if std::str::from_utf8(line).is_err() {
        return Err(EnvelopeError::Utf8);
    }
    let mut s = Scanner { b: line, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        // Still tell garbage from valid non-object JSON for the error message.
        s.value(0)?;
        s.ws();
        if s.i != s.b.len() {
            return Err(s.err("trailing characters"));
        }
        return Err(EnvelopeError::NotAnObject);
    }
    let mut kind: Option<&[u8]> = None;
    let mut kind_owned: Option<String> = None;
    let mut record: Option<Result<RecordEnvelope<'_>, EnvelopeError>> = None;
    s.i += 1;
    s.object_fields(0, |s, key| {
        match key {
            b"type" => {
                if kind.is_some() || kind_owned.is_some() {
                    return Err(EnvelopeError::Duplicate("type"));
                }
                let (text, escaped) = s.string_value()?;
                if escaped {
                    kind_owned = Some(unescape(text)?.into_owned());
                } else {
                    kind = Some(&text[1..text.len() - 1]);
                }
            }
            b"record" => {
                if record.is_some() {
                    return Err(EnvelopeError::Duplicate("record"));
                }
                record = Some(s.record()?);
            }
            _ => {
                s.value(1)?;
            }
        }
        Ok(())
    })?;
    s.ws();
    if s.i != s.b.len() {
        return Err(s.err("trailing characters"));
    }
    let kind_bytes = match (&kind, &kind_owned) {
        (Some(k), _) => *k,
        (None, Some(k)) => k.as_bytes(),
        (None, None) => return Err(EnvelopeError::NoType),
    };
    let kind = MessageKind::from_bytes(kind_bytes).ok_or_else(|| {
        EnvelopeError::UnknownType(String::from_utf8_lossy(kind_bytes).into_owned())
    })?;
    let record = match (kind, record) {
        (MessageKind::Record, Some(r)) => Some(r?),
        (MessageKind::Record, None) => {
            return Err(EnvelopeError::BadRecord("its `record` field"));
        }
        _ => None,
    };
    Ok(Envelope { kind, record })
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// Bytes that end the fast run through a string: the quote, the backslash
/// and the control characters JSON forbids unescaped.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The first byte that ends a fast run through a string (see [`STRING_STOP`]).
/// Strings are most of a record's bytes, so this is the innermost loop.
#[inline(always)]
pub(super) fn find_string_stop(rest: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        // SSE2 is part of x86_64 itself: no feature detection needed.
        use std::arch::x86_64::*;
        let mut i = 0;
        while i + 16 <= rest.len() {
            // SAFETY: the 16 bytes at `i` are in bounds (loop condition);
            // unaligned loads are allowed by `_mm_loadu_si128`.
            let mask = unsafe {
                let v = _mm_loadu_si128(rest.as_ptr().add(i) as *const __m128i);
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // Unsigned v < 0x20 exactly when min(v, 0x1f) == v.
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        find_string_stop_swar(rest, i)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        find_string_stop_swar(rest, 0)
    }
}

/// Eight bytes at a time from `start`, then byte by byte.
#[inline(always)]
fn find_string_stop_swar(rest: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = start;
    while let Some(word) = rest.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        // Classic zero-byte tests. A flag may be false only above a true
        // one (borrows run upwards), so the lowest flag is always right.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let q = w ^ (ONES * b'"' as u64);
        let quote = q.wrapping_sub(ONES) & !q & HIGH;
        let bs = w ^ (ONES * b'\\' as u64);
        let backslash = bs.wrapping_sub(ONES) & !bs & HIGH;
        let hits = control | quote | backslash;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    rest[i..]
        .iter()
        .position(|&c| STRING_STOP[c as usize])
        .map(|p| i + p)
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> EnvelopeError {
        EnvelopeError::Syntax(what, self.i)
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), EnvelopeError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// Skips a string starting at its opening quote. Returns whether it had
    /// escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, EnvelopeError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.i += 1;
        let mut escaped = false;
        loop {
            let stop = find_string_stop(&self.b[self.i..]);
            let Some(n) = stop else {
                self.i = self.b.len();
                return Err(self.err("unterminated string"));
            };
            self.i += n;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            self.unicode_escape()?;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ => return Err(self.err("control character in string")),
            }
        }
    }

    /// The four hex digits after `\u`. Lone surrogates pass, as they do in
    /// serde_json, Python and Jackson: destinations decide what they mean.
    fn unicode_escape(&mut self) -> Result<(), EnvelopeError> {
        self.hex4().map(|_| ())
    }

    fn hex4(&mut self) -> Result<u16, EnvelopeError> {
        let digits = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("short unicode escape"))?;
        let mut v: u16 = 0;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("invalid unicode escape"))?;
            v = v * 16 + x as u16;
        }
        self.i += 4;
        Ok(v)
    }

    /// A string value; returns its raw text (quotes included) and whether it
    /// had escapes.
    fn string_value(&mut self) -> Result<(&'a [u8], bool), EnvelopeError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        let start = self.i;
        let escaped = self.string()?;
        Ok((&self.b[start..self.i], escaped))
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), EnvelopeError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), EnvelopeError> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    /// Skips any value, returning the span it covered.
    fn value(&mut self, depth: usize) -> Result<(usize, usize), EnvelopeError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let start = self.i;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{') => {
                self.i += 1;
                self.object_fields(depth, |s, _| s.value(depth + 1).map(|_| ()))?;
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        self.value(depth + 1)?;
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `]`")),
                        }
                    }
                }
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.err("expected a value")),
            None => return Err(self.err("unexpected end")),
        }
        Ok((start, self.i))
    }

    /// Walks the fields of an object whose `{` was just consumed, calling `f`
    /// with the scanner placed on each value. `f` must consume the value.
    fn object_fields(
        &mut self,
        depth: usize,
        mut f: impl FnMut(&mut Self, &[u8]) -> Result<(), EnvelopeError>,
    ) -> Result<(), EnvelopeError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let (raw, escaped) = self.string_value()?;
            let unescaped;
            let key: &[u8] = if escaped {
                unescaped = unescape(raw)?;
                unescaped.as_bytes()
            } else {
                &raw[1..raw.len() - 1]
            };
            self.ws();
            self.expect(b':', "expected `:`")?;
            self.ws();
            f(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected `,` or `}`")),
            }
        }
    }

    /// Scans a `record` field. The outer error is bad JSON, which fails the
    /// line whatever its type; the inner one is a record missing what a
    /// RECORD needs, which matters only if the line turns out to be one.
    #[allow(clippy::type_complexity)]
    fn record(&mut self) -> Result<Result<RecordEnvelope<'a>, EnvelopeError>, EnvelopeError> {
        if self.peek() != Some(b'{') {
            self.value(1)?;
            return Ok(Err(EnvelopeError::BadRecord("an object in `record`")));
        }
        self.i += 1;
        let mut stream: Option<Cow<'a, str>> = None;
        let mut namespace: Option<Option<Cow<'a, str>>> = None;
        let mut data: Option<&'a [u8]> = None;
        let mut problem: Option<EnvelopeError> = None;
        self.object_fields(1, |s, key| {
            match key {
                b"stream" if s.peek() == Some(b'"') => {
                    if stream.replace(s.str_field()?).is_some() {
                        problem.get_or_insert(EnvelopeError::Duplicate("stream"));
                    }
                }
                b"stream" => {
                    s.value(2)?;
                    problem.get_or_insert(EnvelopeError::BadRecord("a string `stream`"));
                }
                b"namespace" if s.peek() == Some(b'"') => {
                    if namespace.replace(Some(s.str_field()?)).is_some() {
                        problem.get_or_insert(EnvelopeError::Duplicate("namespace"));
                    }
                }
                b"namespace" if s.peek() == Some(b'n') => {
                    s.literal(b"null")?;
                    if namespace.replace(None).is_some() {
                        problem.get_or_insert(EnvelopeError::Duplicate("namespace"));
                    }
                }
                b"namespace" => {
                    s.value(2)?;
                    problem.get_or_insert(EnvelopeError::BadRecord("a string `namespace`"));
                }
                b"data" => {
                    let (a, b) = s.value(2)?;
                    if data.replace(&s.b[a..b]).is_some() {
                        problem.get_or_insert(EnvelopeError::Duplicate("data"));
                    }
                }
                _ => {
                    s.value(2)?;
                }
            }
            Ok(())
        })?;
        if let Some(p) = problem {
            return Ok(Err(p));
        }
        Ok((|| {
            Ok(RecordEnvelope {
                stream: stream.ok_or(EnvelopeError::BadRecord("its `stream`"))?,
                namespace: namespace.flatten(),
                data: data.ok_or(EnvelopeError::BadRecord("its `data`"))?,
            })
        })())
    }

    fn str_field(&mut self) -> Result<Cow<'a, str>, EnvelopeError> {
        let (raw, escaped) = self.string_value()?;
        if escaped {
            Ok(Cow::Owned(unescape(raw)?.into_owned()))
        } else {
            // The whole line was checked as UTF-8 and the quotes are ASCII.
            Ok(Cow::Borrowed(
                std::str::from_utf8(&raw[1..raw.len() - 1]).map_err(|_| EnvelopeError::Utf8)?,
            ))
        }
    }
}

fn unescape(raw: &[u8]) -> Result<Cow<'static, str>, EnvelopeError> {
    serde_json::from_slice::<String>(raw)
        .map(Cow::Owned)
        .map_err(|_| EnvelopeError::Syntax("invalid string", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> RecordEnvelope<'_> {
        scan(line.as_bytes()).unwrap().record.unwrap()
    }

    #[test]
    fn finds_record_routing_fields_in_any_order() {
        let r = rec(
            r#"{"record":{"data":{"a":[1,{"b":"}"}]},"emitted_at":1,"namespace":"ns","stream":"users"},"type":"RECORD"}"#,
        );
        assert_eq!(r.stream, "users");
        assert_eq!(r.namespace.as_deref(), Some("ns"));
        assert_eq!(r.data, br#"{"a":[1,{"b":"}"}]}"#);
    }

    #[test]
    fn escaped_names_and_keys_are_decoded() {
        let r = rec(r#"{"type":"RECORD","record":{"str\u0065am":"a\"b\u00e9","data":{}}}"#);
        assert_eq!(r.stream, "a\"bé");
        let e = scan(br#"{"t\u0079pe":"ST\u0041TE","state":{}}"#).unwrap();
        assert_eq!(e.kind, MessageKind::State);
    }

    #[test]
    fn null_namespace_is_none_and_other_kinds_have_no_record() {
        assert_eq!(
            rec(r#"{"type":"RECORD","record":{"stream":"s","namespace":null,"data":1}}"#).namespace,
            None
        );
        let e =
            scan(br#"{"type":"LOG","log":{"level":"INFO","message":"x"},"record":{}}"#).unwrap();
        assert_eq!(e.kind, MessageKind::Log);
        assert!(e.record.is_none());
    }

    #[test]
    fn string_stop_finds_the_first_special_byte_at_every_offset() {
        for len in 0..40 {
            let plain: Vec<u8> = [vec![b'a'; len], "é€".as_bytes().to_vec()].concat();
            assert_eq!(find_string_stop(&plain), None, "len {len}");
            assert_eq!(find_string_stop_swar(&plain, 0), None, "swar len {len}");
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                for pos in 0..len {
                    let mut s = plain.clone();
                    s[pos] = special;
                    // A later special byte must not win over the first.
                    if pos + 1 < len {
                        s[pos + 1] = b'"';
                    }
                    s.push(b'"');
                    assert_eq!(
                        find_string_stop(&s),
                        Some(pos),
                        "{special:#x} len {len} pos {pos}"
                    );
                    assert_eq!(
                        find_string_stop_swar(&s, 0),
                        Some(pos),
                        "swar {special:#x} len {len} pos {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn protocol_errors() {
        let cases: &[(&str, EnvelopeError)] = &[
            ("[1,2]", EnvelopeError::NotAnObject),
            (r#"{"log":{}}"#, EnvelopeError::NoType),
            (
                r#"{"type":"NOPE"}"#,
                EnvelopeError::UnknownType("NOPE".into()),
            ),
            (
                r#"{"type":"RECORD"}"#,
                EnvelopeError::BadRecord("its `record` field"),
            ),
            (
                r#"{"type":"RECORD","record":{"data":{}}}"#,
                EnvelopeError::BadRecord("its `stream`"),
            ),
            (
                r#"{"type":"RECORD","record":{"stream":"s"}}"#,
                EnvelopeError::BadRecord("its `data`"),
            ),
            (
                r#"{"type":"RECORD","record":{"stream":1,"data":{}}}"#,
                EnvelopeError::BadRecord("a string `stream`"),
            ),
            (
                r#"{"type":"RECORD","type":"LOG"}"#,
                EnvelopeError::Duplicate("type"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(&scan(line.as_bytes()).unwrap_err(), want, "{line}");
        }
        assert_eq!(
            scan(b"{\"type\":\"LOG\",\xff}").unwrap_err(),
            EnvelopeError::Utf8
        );
    }

    /// The scanner and serde_json must agree on validity, for every input.
    fn agrees_with_serde(input: &[u8]) {
        // serde_json's IgnoredAny does not check UTF-8 inside strings; the
        // protocol is UTF-8, so the scanner does.
        let serde_ok = std::str::from_utf8(input).is_ok()
            && serde_json::from_slice::<serde::de::IgnoredAny>(input).is_ok();
        let ours = scan(input);
        let ours_valid_json = !matches!(
            ours,
            Err(EnvelopeError::Syntax(..)) | Err(EnvelopeError::Utf8)
        );
        assert_eq!(
            ours_valid_json,
            serde_ok,
            "validity differs for {:?}: ours {:?}",
            String::from_utf8_lossy(input),
            ours
        );
    }

    /// Where the fast path answers, the scalar scanner gives the same answer.
    fn fast_agrees_with_scalar(input: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(fast) = super::super::envelope_fast::scan_in(input, 0, input.len()) {
            assert_eq!(
                Ok(fast),
                scan_scalar(input),
                "fast and scalar paths differ on {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_fast_path_answers_for_ordinary_lines() {
        #[cfg(target_arch = "x86_64")]
        for line in [
            &br#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"s":"a\"b\u00e9\\"},"emitted_at":1}}"#[..],
            br#" { "record" : { "namespace" : null , "data" : [1, {"x": [true, false, null, -0.5e+3]}], "stream" : "s" } , "type" : "RECORD" } "#,
            br#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}}}}"#,
            "{\"type\":\"RECORD\",\"record\":{\"stream\":\"\u{e9}t\u{e9}\",\"data\":\"\u{1f600}\"}}".as_bytes(),
        ] {
            let fast = super::super::envelope_fast::scan_in(line, 0, line.len());
            assert!(fast.is_some(), "declined {:?}", String::from_utf8_lossy(line));
            assert_eq!(Ok(fast.unwrap()), scan_scalar(line));
        }
    }

    #[test]
    fn lines_across_many_blocks_agree() {
        let mut data = String::from("{");
        for i in 0..200 {
            data.push_str(&format!(
                "\"k{i}\":[\"v\\\\{i}\\\"\",{i}.5,{{\"n\":null}}],"
            ));
        }
        data.push_str("\"end\":true}");
        let line = format!(r#"{{"type":"RECORD","record":{{"stream":"s","data":{data}}}}}"#);
        let fast = scan(line.as_bytes()).unwrap();
        assert_eq!(fast.record.as_ref().unwrap().data, data.as_bytes());
        assert_eq!(Ok(fast), scan_scalar(line.as_bytes()));
    }

    #[test]
    fn agrees_with_serde_json_on_validity() {
        let fixed: &[&[u8]] = &[
            b"",
            b" ",
            b"{",
            b"}",
            b"{}",
            b" {} ",
            b"{} x",
            b"{,}",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":1 \"b\":2}",
            b"[",
            b"[1,]",
            b"[01]",
            b"[-]",
            b"[1.]",
            b"[1e]",
            b"[1e+]",
            b"[-0.5e-7]",
            b"[.5]",
            b"[tru]",
            b"[nul]",
            b"[\"\\x\"]",
            b"[\"\\u12\"]",
            b"[\"\\ud800\"]",
            b"[\"\\udc00\"]",
            b"[\"\\ud800\\udc00\"]",
            b"[\"\\ud800\\u0041\"]",
            b"[\"a\tb\"]",
            b"[\"\x7f\"]",
            b"{\"type\":\"LOG\"}\n",
            b"\t{\"type\":\"LOG\"}\r",
            b"{\"a\":[[[[[]]]]]}",
            b"{\"a\":{\"b\":{\"c\":[true,false,null,-1,2.5E3]}}}",
            b"\"str\"",
            b"123",
            b"{\"a\":\"\\/\\b\\f\\n\\r\\t\\\\\\\"\"}",
        ];
        for input in fixed {
            agrees_with_serde(input);
            fast_agrees_with_scalar(input);
        }
    }

    /// The containers inside a record's data, which the fast path checks
    /// without looking for envelope fields, held to the same grammar.
    #[test]
    fn data_containers_agree_with_serde_json() {
        let datas: &[&str] = &[
            "{}",
            "[]",
            "{\"a\":[]}",
            "{\"a\":{}}",
            "[[],{},[{}]]",
            "{\"a\":[1,{\"b\":[true,null]}],\"c\":\"d\"}",
            "{\"a\":[1,]}",
            "{\"a\":[,1]}",
            "{\"a\":1,}",
            "{,\"a\":1}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1 \"b\":2}",
            "{1:2}",
            "{\"a\":1]",
            "[1}",
            "[\"a\":1]",
            "[1 2]",
            "[{]}",
            "{\"a\":[tru]}",
            "{\"a\":[01]}",
            "{\"a\":{\"b\":}}",
            "{\"a\":\"x\"\"y\"}",
            "{\"a\":{}{}}",
            "[[[[[[[[[[]]]]]]]]]]",
            "[[[[[[[[[[]]]]]]]]]",
        ];
        for data in datas {
            let line = format!(
                "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"s\",\"data\":{data},\"emitted_at\":1}}}}"
            );
            agrees_with_serde(line.as_bytes());
            fast_agrees_with_scalar(line.as_bytes());
            // The fast path itself answers for every valid one.
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                super::super::envelope_fast::scan_in(line.as_bytes(), 0, line.len()).is_some(),
                serde_json::from_str::<serde::de::IgnoredAny>(&line).is_ok(),
                "{line}"
            );
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for n in [62, 63, 64, 65, 66, 200] {
            let line = format!(
                "{{\"type\":\"RECORD\",\"record\":{{\"stream\":\"s\",\"data\":{}}}}}",
                deep(n)
            );
            fast_agrees_with_scalar(line.as_bytes());
        }
    }

    /// Scanning the lines of a chunk gives, line by line, what the scalar
    /// scanner gives.
    fn chunk_agrees_with_lines(chunk: &[u8]) {
        let got: Vec<_> = super::super::codec::lines(chunk)
            .map(|line| {
                (
                    line,
                    scan_in(chunk, line.start, line.start + line.text.len()),
                )
            })
            .collect();
        let want: Vec<_> = super::super::codec::lines(chunk)
            .map(|line| (line, scan_scalar(line.text)))
            .collect();
        assert_eq!(got, want, "chunk {:?}", String::from_utf8_lossy(chunk));
    }

    #[test]
    fn chunks_of_many_lines_scan_like_single_lines() {
        let good = br#"{"type":"RECORD","record":{"stream":"users","data":{"id":1,"s":"a\"b","n":[1,{"x":null}]},"emitted_at":1}}"#;
        let mut x: u64 = 7;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"{}[]\":,\\ ntfrue0123456789.-+eEuaZ\x01\t\r\xc3\xa9\n";
        for _ in 0..3000 {
            let mut chunk = Vec::new();
            for _ in 0..(1 + next() % 6) {
                let mut line = good.to_vec();
                if next() % 2 == 0 {
                    for _ in 0..(1 + next() % 2) {
                        let pos = (next() as usize) % line.len();
                        line[pos] = alphabet[(next() as usize) % alphabet.len()];
                    }
                }
                chunk.extend_from_slice(&line);
                chunk.push(b'\n');
                if next() % 7 == 0 {
                    chunk.extend_from_slice(b"  \n");
                }
            }
            if next() % 3 == 0 {
                chunk.pop();
            }
            chunk_agrees_with_lines(&chunk);
        }
    }

    #[test]
    fn agrees_with_serde_json_on_random_mutations() {
        // Mutate valid lines byte by byte with a fixed-seed generator: every
        // mutant must be judged the same way serde_json judges it.
        let seeds: &[&[u8]] = &[
            br#"{"type":"RECORD","record":{"stream":"users","namespace":"n","data":{"id":12,"name":"A\u00e9\"b","tags":["x",true,null],"f":-1.5e3},"emitted_at":1700000000000}}"#,
            br#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":[1,2,{}]}}}}"#,
        ];
        let alphabet = b"{}[]\":,\\/ntfrue0123456789.-+eEu\x01\x1f aZ\xc3\xa9";
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in seeds {
            for _ in 0..20_000 {
                let mut m = seed.to_vec();
                for _ in 0..(1 + next() % 3) {
                    let pos = (next() as usize) % m.len();
                    match next() % 3 {
                        0 => m[pos] = alphabet[(next() as usize) % alphabet.len()],
                        1 => {
                            m.remove(pos);
                        }
                        _ => m.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                    }
                }
                agrees_with_serde(&m);
                fast_agrees_with_scalar(&m);
                if let Ok(Envelope {
                    record: Some(r), ..
                }) = scan(&m)
                {
                    // The data span is itself valid JSON.
                    assert!(serde_json::from_slice::<serde::de::IgnoredAny>(r.data).is_ok());
                }
            }
        }
    }
}

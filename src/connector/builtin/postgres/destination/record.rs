//! A RECORD line read fast, in one pass that checks it is JSON while it
//! finds the record's `emitted_at`, `meta` and each column's raw value in
//! `data`: nothing is decoded or allocated but the list of values.
//!
//! It answers only for lines it has checked whole: valid JSON (as serde
//! reads it: UTF-8, no control character in a string, escapes and numbers
//! well formed, nothing after the object) that is a RECORD of a stream in
//! the catalog. A line it does not fully understand (an escaped key or
//! stream name, a key of the envelope twice, `data` that is not an object,
//! nesting deeper than serde allows) it declines, and the careful path
//! (the envelope scanner, then serde) reads it and words any error.

use super::encode::Encoder;
use super::plan::{plan_of, Plan};
use crate::connector::builtin::postgres::json::string_stop;

/// serde_json's limit: deeper lines go the careful way.
const MAX_DEPTH: usize = 128;

/// A RECORD line taken apart.
#[derive(Debug, PartialEq)]
pub(super) struct Record<'a> {
    /// The plan of the stream it names.
    pub(super) plan: usize,
    /// Its `emitted_at` in whole milliseconds, when plausible.
    pub(super) emitted_at: Option<i64>,
    /// Each column's raw JSON value (`None`: absent or null).
    pub(super) values: Values<'a>,
    /// Its `meta`, raw, when it has one.
    pub(super) meta: Option<&'a str>,
}

/// Reads `line` (without its newline) if it is a RECORD of a stream in the
/// catalog; `None` for anything else, or anything the careful path must
/// judge.
pub(super) fn read<'a>(line: &'a [u8], plans: &[Plan], encoders: &[Encoder]) -> Option<Record<'a>> {
    let text = if line.is_ascii() {
        // SAFETY: ASCII is UTF-8; `is_ascii` is several times cheaper
        // than the full check, and most lines are ASCII.
        unsafe { std::str::from_utf8_unchecked(line) }
    } else {
        std::str::from_utf8(line).ok()?
    };
    let mut p = Parser { b: line, i: 0 };
    let mut is_record = false;
    let mut record = None;
    p.members(0, true, |p, key| match key {
        b"type" if !is_record => {
            is_record = p.plain_string()? == b"RECORD";
            is_record.then_some(())
        }
        b"record" if record.is_none() => {
            record = Some(p.record(text, plans, encoders)?);
            Some(())
        }
        b"type" | b"record" => None,
        _ => p.value(1).map(drop),
    })?;
    p.ws();
    if p.i != line.len() || !is_record {
        return None;
    }
    record
}

/// A cursor over a line.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    #[inline]
    fn ws(&mut self) {
        // Protocol lines seldom have any.
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, passed.
    #[inline]
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// The `record` object: the plan of its stream, its `emitted_at`,
    /// `meta`, and its data split into that stream's columns.
    fn record(
        &mut self,
        text: &'a str,
        plans: &[Plan],
        encoders: &[Encoder],
    ) -> Option<Record<'a>> {
        let mut stream: Option<&[u8]> = None;
        let mut namespace: Option<Option<&[u8]>> = None;
        let (mut emitted_at, mut meta) = (None, None);
        // The data's span, and the plan it was split for with its values.
        let mut data: Option<(usize, usize)> = None;
        let mut split: Option<(usize, Values<'a>)> = None;
        self.members(1, true, |p, key| {
            match key {
                b"stream" if stream.is_none() => stream = Some(p.plain_string()?),
                b"namespace" if namespace.is_none() => {
                    p.ws();
                    namespace = Some(if p.b.get(p.i) == Some(&b'n') {
                        p.literal(b"null")?;
                        None
                    } else {
                        Some(p.plain_string()?)
                    });
                }
                b"emitted_at" if emitted_at.is_none() => emitted_at = Some(p.value(2)?),
                b"meta" if meta.is_none() => meta = Some(p.value(2)?),
                b"data" if data.is_none() => {
                    p.ws();
                    let start = p.i;
                    // Split while reading when the stream is known, as
                    // sources write it; else only checked, split below.
                    let plan = stream.and_then(|s| {
                        plan_of(
                            plans,
                            name(namespace.flatten())?,
                            std::str::from_utf8(s).ok()?,
                        )
                    });
                    match plan.filter(|&i| !encoders[i].whole) {
                        Some(i) if p.b.get(p.i) == Some(&b'{') => {
                            split = Some((i, p.split(text, &encoders[i])?));
                        }
                        _ => {
                            p.value(2)?;
                        }
                    }
                    data = Some((start, p.i));
                }
                b"stream" | b"namespace" | b"emitted_at" | b"meta" | b"data" => return None,
                _ => {
                    p.value(2)?;
                }
            }
            Some(())
        })?;
        let stream = std::str::from_utf8(stream?).ok()?;
        let plan = plan_of(plans, name(namespace.flatten())?, stream)?;
        let (start, end) = data?;
        let values = match split {
            Some((i, values)) if i == plan => values,
            _ if encoders[plan].whole => {
                let mut v = Values::new(1);
                v.as_mut_slice()[0] = Some(&text[start..end]);
                v
            }
            // Split for another stream (its namespace came after the
            // data), or not split: the data is checked, split it now.
            _ => Parser {
                b: self.b,
                i: start,
            }
            .split(text, &encoders[plan])?,
        };
        Some(Record {
            plan,
            emitted_at: emitted_at.and_then(|(a, b)| super::input::millis(&text[a..b])),
            values,
            meta: meta.map(|(a, b)| &text[a..b]),
        })
    }

    /// The data object here, split into the encoder's columns: the last
    /// value of a field given twice, JSON null as none.
    fn split(&mut self, text: &'a str, e: &Encoder) -> Option<Values<'a>> {
        let mut values = Values::new(e.types.len());
        let slots = values.as_mut_slice();
        // A stream's records name their fields in one order: the name of
        // the column after the last one found is tried first, as it is
        // written, which spares reading the key.
        let mut next = 0;
        if self.next()? != b'{' {
            return None;
        }
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(values);
        }
        loop {
            self.ws();
            let column = match e.index.quoted(next) {
                Some(q) if self.b[self.i..].starts_with(q) => {
                    self.i += q.len();
                    Some(next)
                }
                _ => {
                    let start = self.i + 1;
                    if self.string()? {
                        return None;
                    }
                    // No escapes: the key's bytes are its text.
                    e.index.get(&self.b[start..self.i - 1], next)
                }
            };
            if self.next()? != b':' {
                return None;
            }
            let (a, b) = self.value(3)?;
            if let Some(c) = column {
                next = c + 1;
                let v = &text[a..b];
                slots[c] = (v != "null").then_some(v);
            }
            match self.next()? {
                b',' => {}
                b'}' => return Some(values),
                _ => return None,
            }
        }
    }

    /// Calls `f` with each key of the object here (its bytes between the
    /// quotes) and the cursor before its value, which `f` must pass. With
    /// `plain`, a key with escapes declines the line.
    fn members(
        &mut self,
        depth: usize,
        plain: bool,
        mut f: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_DEPTH || self.next()? != b'{' {
            return None;
        }
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let start = self.i + 1;
            if self.string()? && plain {
                return None;
            }
            let key = &self.b[start..self.i - 1];
            if self.next()? != b':' {
                return None;
            }
            f(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A string without escapes here: its bytes between the quotes.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let start = self.i + 1;
        if self.string()? {
            return None;
        }
        Some(&self.b[start..self.i - 1])
    }

    /// Passes the string whose opening quote is here; whether it had
    /// escapes.
    #[inline]
    fn string(&mut self) -> Option<bool> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut escaped = false;
        loop {
            self.i += string_stop(self.b.get(self.i..)?)?;
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            // Any four hex digits, as serde reads a value.
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                0..=0x1f => return None,
                _ => {}
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Passes the value here, checking it; its span.
    fn value(&mut self, depth: usize) -> Option<(usize, usize)> {
        self.ws();
        let start = self.i;
        match *self.b.get(self.i)? {
            b'"' => {
                self.string()?;
            }
            b'{' => self.members(depth, false, |p, _| p.value(depth + 1).map(drop))?,
            b'[' => {
                if depth > MAX_DEPTH {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.value(depth + 1)?;
                        match self.next()? {
                            b',' => {}
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        Some((start, self.i))
    }
}

/// A row's values, on the stack for the usual handful of columns: a row
/// must not cost an allocation.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // On the stack is the point.
pub(super) enum Values<'a> {
    Few([Option<&'a str>; FEW], usize),
    Many(Vec<Option<&'a str>>),
}

const FEW: usize = 16;

impl<'a> Values<'a> {
    /// `n` values, all none.
    fn new(n: usize) -> Self {
        if n <= FEW {
            Values::Few([None; FEW], n)
        } else {
            Values::Many(vec![None; n])
        }
    }

    pub(super) fn as_slice(&self) -> &[Option<&'a str>] {
        match self {
            Values::Few(v, n) => &v[..*n],
            Values::Many(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Option<&'a str>] {
        match self {
            Values::Few(v, n) => &mut v[..*n],
            Values::Many(v) => v,
        }
    }
}

/// A namespace's text, `None` kept: `Some(None)` is "no namespace".
fn name(namespace: Option<&[u8]>) -> Option<Option<&str>> {
    match namespace {
        None => Some(None),
        Some(n) => std::str::from_utf8(n).ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the parser accepts `json` as one value.
    fn accepts(json: &str) -> bool {
        let mut p = Parser {
            b: json.as_bytes(),
            i: 0,
        };
        p.value(0).is_some() && {
            p.ws();
            p.i == json.len()
        }
    }

    #[test]
    fn values_are_checked_as_serde_checks_them() {
        for json in [
            r#""a\"b\\c\/\b\f\n\r\t\u00e9\ud800 é🚀""#,
            "0",
            "-0.5e+10",
            "12E-3",
            " [ 1 , { \"a\" : [ ] } , null , true , false ] ",
            "{}",
            r#"{"":""}"#,
            r#"{"a\"b":1}"#,
            "\"twelve bytes and more, to pass eight at a time\"",
            "[1,2,[3,[4,[5]]]]",
            "\"\u{7f}\"",
            "\"x\" ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"\\u12\"",
            "\"tab\tinside\"",
            "\"open",
            "[1 2]",
            "1 2",
            "NaN",
            "{\"a\":1}}",
        ] {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok();
            assert_eq!(accepts(json), serde, "{json:?}");
        }
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(accepts(&deep(100)));
        assert!(!accepts(&deep(200)), "deeper than serde goes");
    }
}

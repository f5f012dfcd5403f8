//! Values in COPY's binary format (`COPY ... FROM STDIN (FORMAT binary)`).
//!
//! PostgreSQL takes a binary value as it stores it, without the text
//! parsing that costs it most of a load into the Destinations V2 layout
//! (three timestamps, a uuid and a numeric per row here): the same rows load
//! in about half the server time. Only the shapes nearly every value has are
//! converted; for anything else [`value`] says so and the row goes as COPY
//! text, whose checks decide it.

use super::json::find_byte;
use super::types::ColType;
use std::borrow::Cow;

/// The stream's header: signature, flags, header extension length.
pub(super) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The stream's end: a tuple of -1 fields.
pub(super) const TRAILER: &[u8] = &[0xff, 0xff];

/// Days and microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS * 86_400_000_000;
const MICROS: i64 = 1_000_000;

/// What became of one value.
#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    Wrote,
    /// It does not fit the column: NULL, and a change in `_airbyte_meta`.
    Misfit,
    /// A shape left to COPY text: the whole row goes that way.
    Text,
}

/// A tuple's start: its number of fields.
pub(super) fn tuple(fields: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(fields as i16).to_be_bytes());
}

/// Where the tuple at `at` of COPY's binary format ends, when `bytes` holds
/// it whole: its field count, then each field's length (-1 for NULL) and
/// bytes. `Err` when it is not a tuple (COPY's end marker, -1, included).
pub(super) fn tuple_end(bytes: &[u8], at: usize) -> Result<Option<(usize, usize)>, i16> {
    let Some(head) = bytes.get(at..at + 2) else {
        return Ok(None);
    };
    let fields = i16::from_be_bytes([head[0], head[1]]);
    if fields < 0 {
        return Err(fields);
    }
    Ok(fields_end(bytes, at + 2, fields as usize).map(|end| (fields as usize, end)))
}

/// Where `n` fields of a binary tuple that start at `at` end, when `bytes`
/// holds them whole.
pub(super) fn fields_end(bytes: &[u8], at: usize, n: usize) -> Option<usize> {
    let mut i = at;
    for _ in 0..n {
        let len = bytes.get(i..i + 4)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        i += 4 + usize::try_from(len).unwrap_or(0);
        if i > bytes.len() {
            return None;
        }
    }
    Some(i)
}

pub(super) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// A field of `bytes`, length first.
pub(super) fn field(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub(super) fn int8(v: i64, out: &mut Vec<u8>) {
    field(&v.to_be_bytes(), out);
}

/// A jsonb field: format version 1, then the JSON text.
pub(super) fn jsonb(text: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
    out.push(1);
    out.extend_from_slice(text);
}

/// A timestamptz field for `ms` milliseconds since the Unix epoch.
pub(super) fn timestamp_millis(ms: i64, out: &mut Vec<u8>) {
    int8(ms * 1000 - PG_EPOCH_MICROS, out);
}

/// Writes the JSON value `raw` as a field of a column of type `t`.
pub(super) fn value(t: ColType, raw: &str, out: &mut Vec<u8>) -> Outcome {
    let fit = |ok: bool| if ok { Outcome::Wrote } else { Outcome::Misfit };
    match t {
        ColType::Text => fit(text_of(raw).map(|s| field(s.as_bytes(), out)).is_some()),
        ColType::Jsonb => fit(jsonb_fits(raw)
            .then(|| jsonb(raw.as_bytes(), out))
            .is_some()),
        ColType::Bool => fit(bool_of(raw).map(|b| field(&[u8::from(b)], out)).is_some()),
        ColType::BigInt => fit(bigint_of(raw).map(|v| int8(v, out)).is_some()),
        ColType::Numeric => numeric(raw, out),
        ColType::Date
        | ColType::Time
        | ColType::TimeTz
        | ColType::Timestamp
        | ColType::TimestampTz => {
            // Anything but a plain string is refused by the text path too.
            let Some(s) = raw
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .filter(|s| find_byte(s.as_bytes(), b'\\').is_none())
            else {
                return Outcome::Text;
            };
            let done = match t {
                ColType::Date => date(s, out),
                ColType::Time => time(s, false, out),
                ColType::TimeTz => time(s, true, out),
                _ => timestamp(s, t == ColType::TimestampTz, out),
            };
            if done {
                Outcome::Wrote
            } else {
                Outcome::Text
            }
        }
    }
}

/// A text column's value: a JSON string's text (NUL refused, as
/// PostgreSQL refuses it), else the JSON as written.
pub(super) fn text_of(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return Some(Cow::Borrowed(raw));
    }
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    if find_byte(inner.as_bytes(), b'\\').is_none() {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw)
        .ok()
        .filter(|s| !s.contains('\0'))
        .map(Cow::Owned)
}

/// Whether jsonb takes `raw`: it refuses the NUL character and lone
/// surrogates (serde refuses the latter too).
pub(super) fn jsonb_fits(raw: &str) -> bool {
    // Only a `\u` escape can be either; most JSON has no backslash.
    let escape = find_byte(raw.as_bytes(), b'\\').is_some() && raw.contains("\\u");
    !(escape
        && (raw.contains("\\u0000") || serde_json::from_str::<serde_json::Value>(raw).is_err()))
}

pub(super) fn bool_of(raw: &str) -> Option<bool> {
    match raw {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A JSON number that is a whole number a bigint holds.
pub(super) fn bigint_of(raw: &str) -> Option<i64> {
    if raw.starts_with('"') {
        return None;
    }
    if let Ok(v) = raw.parse::<i64>() {
        return Some(v);
    }
    match raw.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
        _ => None,
    }
}

/// A numeric field: sign, digits in base 10000 around the decimal point,
/// and the display scale (the digits written after the point). Numbers
/// with an exponent go as text.
fn numeric(raw: &str, out: &mut Vec<u8>) -> Outcome {
    const POS: u16 = 0x0000;
    const NEG: u16 = 0x4000;
    let special = match raw {
        "\"NaN\"" => Some(0xC000u16),
        "\"Infinity\"" => Some(0xD000),
        "\"-Infinity\"" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        out.extend_from_slice(&8i32.to_be_bytes());
        for v in [0, 0, sign, 0] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        return Outcome::Wrote;
    }
    let (sign, digits) = match raw.strip_prefix('-') {
        Some(d) => (NEG, d),
        None => (POS, raw),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !plain(int) || !plain(frac) {
        // A number with an exponent goes as text; anything else does not fit.
        return if matches!(raw.as_bytes().first(), Some(b'-' | b'0'..=b'9')) {
            Outcome::Text
        } else {
            Outcome::Misfit
        };
    }
    if int.len() > 4096 || frac.len() > 4096 {
        return Outcome::Text;
    }
    // Groups of four digits: the integer part aligned on the point from the
    // right, the fraction from the left (zero-padded).
    let group = |s: &[u8]| s.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    let mut groups: Vec<u16> = Vec::with_capacity(int.len() / 4 + frac.len() / 4 + 2);
    let lead = int.len() % 4;
    if lead > 0 {
        groups.push(group(&int.as_bytes()[..lead]));
    }
    groups.extend(int.as_bytes()[lead..].chunks(4).map(group));
    let weight = groups.len() as i16 - 1;
    for chunk in frac.as_bytes().chunks(4) {
        let mut padded = [b'0'; 4];
        padded[..chunk.len()].copy_from_slice(chunk);
        groups.push(group(&padded));
    }
    out.extend_from_slice(&(8 + 2 * groups.len() as i32).to_be_bytes());
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(frac.len() as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Outcome::Wrote
}

/// `YYYY-MM-DD` as days since 2000-01-01.
fn date(s: &str, out: &mut Vec<u8>) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (num(b, 0, 4), num(b, 5, 2), num(b, 8, 2)) else {
        return false;
    };
    if !real_day(y, m, d) {
        return false;
    }
    let days = days_from_civil(y, m, d) - PG_EPOCH_DAYS;
    out.extend_from_slice(&4i32.to_be_bytes());
    out.extend_from_slice(&(days as i32).to_be_bytes());
    true
}

/// `HH:MM:SS[.ffffff]` as microseconds since midnight; with a zone (`timetz`)
/// also the offset, in seconds west of UTC as PostgreSQL keeps it (none
/// given: the session's, UTC).
fn time(s: &str, zoned: bool, out: &mut Vec<u8>) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(h), Some(mi), Some(sec)) = (num(b, 0, 2), num(b, 3, 2), num(b, 6, 2)) else {
        return false;
    };
    let Some((frac, zone)) = fraction(&s[8..]) else {
        return false;
    };
    if h >= 24 || mi >= 60 || sec >= 60 {
        return false;
    }
    let micros = i64::from(h * 3600 + mi * 60 + sec) * MICROS + frac;
    if !zoned {
        if !zone.is_empty() {
            return false;
        }
        int8(micros, out);
        return true;
    }
    let Some(offset) = (if zone.is_empty() {
        Some(0)
    } else {
        offset(zone)
    }) else {
        return false;
    };
    out.extend_from_slice(&12i32.to_be_bytes());
    out.extend_from_slice(&micros.to_be_bytes());
    out.extend_from_slice(&(-offset).to_be_bytes());
    true
}

/// A timestamp of the usual shape as microseconds since 2000-01-01:
/// UTC for `timestamptz` (an offset applied; none given: the session's,
/// UTC), as written for `timestamp` (which takes no offset here).
fn timestamp(s: &str, zoned: bool, out: &mut Vec<u8>) -> bool {
    let Some(t) = usual_timestamp(s) else {
        return false;
    };
    let Some(frac) = fraction(t.frac).filter(|(_, rest)| rest.is_empty()) else {
        return false;
    };
    let offset = match (t.offset, zoned) {
        (Some(_), false) => return false,
        (o, _) => i64::from(o.unwrap_or(0)),
    };
    let secs = (t.days - PG_EPOCH_DAYS) * 86_400 + i64::from(t.seconds) - offset;
    int8(secs * MICROS + frac.0, out);
    true
}

/// `[.ffffff]` at the start of `s` as microseconds, and what follows; more
/// than six digits (which PostgreSQL rounds) is left to the text path.
#[inline]
fn fraction(s: &str) -> Option<(i64, &str)> {
    let Some(rest) = s.strip_prefix('.') else {
        return Some((0, s));
    };
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || n > 6 {
        return None;
    }
    let v = num(rest.as_bytes(), 0, n)?;
    Some((i64::from(v) * 10i64.pow(6 - n as u32), &rest[n..]))
}

/// A timestamp `YYYY-MM-DD[T ]HH:MM:SS[.f...][offset]`, taken apart.
pub(super) struct Usual<'a> {
    /// Days since 1970-01-01.
    pub days: i64,
    /// Seconds into the day.
    pub seconds: u32,
    /// `.` and the fraction's digits, or empty.
    pub frac: &'a str,
    /// Seconds east of UTC.
    pub offset: Option<i32>,
}

/// Reads a timestamp of the shape nearly every timestamp has, checked by
/// position, so quickly; None for anything else (valid or not).
#[inline]
pub(super) fn usual_timestamp(s: &str) -> Option<Usual<'_>> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(b, 0, 4)?, num(b, 5, 2)?, num(b, 8, 2)?);
    let (h, mi, sec) = (num(b, 11, 2)?, num(b, 14, 2)?, num(b, 17, 2)?);
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        i += digits;
    }
    let zone = &s[i..];
    let offset = if zone.is_empty() {
        None
    } else {
        Some(offset(zone)?)
    };
    if !real_day(y, mo, d) || h >= 24 || mi >= 60 || sec >= 60 {
        return None;
    }
    Some(Usual {
        days: days_from_civil(y, mo, d),
        seconds: h * 3600 + mi * 60 + sec,
        frac: &s[19..i],
        offset,
    })
}

/// An offset `Z`, `+HH`, `+HHMM`, `+HH:MM` or `+HH:MM:SS` (or `-`) in
/// seconds east of UTC, up to 15 hours as PostgreSQL allows.
#[inline]
pub(super) fn offset(o: &str) -> Option<i32> {
    if o == "Z" {
        return Some(0);
    }
    let b = o.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m, s) = match b.len() - 1 {
        2 => (num(b, 1, 2)?, 0, 0),
        4 => (num(b, 1, 2)?, num(b, 3, 2)?, 0),
        5 if b[3] == b':' => (num(b, 1, 2)?, num(b, 4, 2)?, 0),
        8 if b[3] == b':' && b[6] == b':' => (num(b, 1, 2)?, num(b, 4, 2)?, num(b, 7, 2)?),
        _ => return None,
    };
    (h <= 15 && m < 60 && s < 60).then(|| sign * (h as i32 * 3600 + m as i32 * 60 + s as i32))
}

/// The `n` ASCII digits of `b` at `at` as a number.
#[inline]
pub(super) fn num(b: &[u8], at: usize, n: usize) -> Option<u32> {
    b.get(at..at + n)?.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

/// Whether year `y`, month `m`, day `d` is a day of the calendar (the
/// range of a type is its caller's to check).
#[inline]
pub(super) fn real_day(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// Days since 1970-01-01 of a day of the proleptic Gregorian calendar.
#[inline]
fn days_from_civil(y: u32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(t: ColType, raw: &str) -> (Outcome, Vec<u8>) {
        let mut out = Vec::new();
        let o = value(t, raw, &mut out);
        (o, out)
    }

    fn int8_field(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        int8(v, &mut out);
        out
    }

    #[test]
    fn days_count_from_the_unix_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 3, 1), 19_783);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
    }

    #[test]
    fn timestamps_are_microseconds_since_2000() {
        let tz = ColType::TimestampTz;
        assert_eq!(bin(tz, r#""2000-01-01T00:00:00Z""#).1, int8_field(0));
        assert_eq!(
            bin(tz, r#""2000-01-01 01:00:00.5+01:00""#).1,
            int8_field(500_000)
        );
        assert_eq!(
            bin(tz, r#""1999-12-31T23:59:59.000001""#).1,
            int8_field(-999_999)
        );
        let ts = ColType::Timestamp;
        assert_eq!(
            bin(ts, r#""2000-01-02T00:00:00""#).1,
            int8_field(86_400 * MICROS)
        );
        // Left to the text path: an offset on a timestamp without zone,
        // more than six digits of fraction, other shapes.
        for raw in [
            r#""2000-01-02T00:00:00+02""#,
            r#""2000-01-02T00:00:00.1234567Z""#,
            r#""2000-01-02T00:00""#,
            r#""infinity""#,
            "12",
        ] {
            assert_eq!(bin(ts, raw).0, Outcome::Text, "{raw}");
        }
        assert_eq!(bin(tz, r#""2000-01-02T00:00:00é""#).0, Outcome::Text);
        // An offset in seconds, as PostgreSQL prints old local times.
        assert_eq!(
            bin(tz, r#""2000-01-01T00:00:01+00:00:01""#).1,
            int8_field(0)
        );
        assert_eq!(bin(tz, r#""2000-01-02T00:00:00X05""#).0, Outcome::Text);
    }

    #[test]
    fn numerics_are_base_10000_digits() {
        let (o, out) = bin(ColType::Numeric, "-12345.678");
        assert_eq!(o, Outcome::Wrote);
        let words: Vec<i16> = out[4..]
            .chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect();
        // ndigits, weight, sign, dscale, then 1 2345 . 6780
        assert_eq!(words, [3, 1, 0x4000, 3, 1, 2345, 6780]);
        assert_eq!(bin(ColType::Numeric, "1.5e3").0, Outcome::Text);
        assert_eq!(bin(ColType::Numeric, "\"12\"").0, Outcome::Misfit);
        assert_eq!(bin(ColType::Numeric, "true").0, Outcome::Misfit);
    }
}

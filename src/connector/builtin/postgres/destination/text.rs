//! COPY's text format, for the rows the binary format cannot carry: a JSON
//! value written for a column of a given type, the checks that say whether
//! it fits, COPY's escaping, and `_airbyte_extracted_at` as text.
//!
//! A value refused here is never half written: the caller writes NULL in
//! its place, so one odd value never fails the COPY of a whole batch.

use crate::connector::builtin::postgres::binary;
use crate::connector::builtin::postgres::types::ColType;
use std::borrow::Cow;
use std::io::Write;

/// Writes `raw` (a JSON value's text) as COPY text for a column of type
/// `t`; false when it does not fit (nothing is written then).
pub(super) fn encode(t: ColType, raw: &str, out: &mut Vec<u8>) -> bool {
    let b = raw.as_bytes();
    let string = b.first() == Some(&b'"');
    match t {
        ColType::Text => match binary::text_of(raw) {
            // A JSON string without escapes holds no control character: as is.
            Some(Cow::Borrowed(s)) if string => out.extend_from_slice(s.as_bytes()),
            Some(s) => copy_escape(s.as_bytes(), out),
            None => return false,
        },
        ColType::Jsonb => {
            if !binary::jsonb_fits(raw) {
                return false;
            }
            copy_escape(b, out);
        }
        ColType::Bool => match binary::bool_of(raw) {
            Some(true) => out.push(b't'),
            Some(false) => out.push(b'f'),
            None => return false,
        },
        ColType::BigInt => match binary::bigint_of(raw) {
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => return false,
        },
        ColType::Numeric => {
            if string {
                match raw {
                    "\"NaN\"" | "\"Infinity\"" | "\"-Infinity\"" => {
                        out.extend_from_slice(&b[1..b.len() - 1])
                    }
                    _ => return false,
                }
            } else if matches!(b.first(), Some(b'-' | b'0'..=b'9')) && numeric_fits(raw) {
                out.extend_from_slice(b);
            } else {
                return false;
            }
        }
        ColType::Date
        | ColType::Time
        | ColType::TimeTz
        | ColType::Timestamp
        | ColType::TimestampTz => {
            // Valid values are plain ASCII, never escaped.
            if !string || b.len() < 2 || memchr::memchr(b'\\', b).is_some() {
                return false;
            }
            let s = &raw[1..raw.len() - 1];
            let ok = match t {
                ColType::Date => valid_date(s),
                ColType::Time => valid_time(s),
                ColType::TimeTz => valid_time(s),
                _ => valid_timestamp(s),
            };
            if !ok {
                return false;
            }
            out.extend_from_slice(s.as_bytes());
        }
    }
    true
}

/// Whether a JSON number's exponent is within what `numeric` holds.
fn numeric_fits(raw: &str) -> bool {
    match raw.find(['e', 'E']) {
        None => true,
        Some(i) => raw[i + 1..]
            .trim_start_matches('+')
            .parse::<i64>()
            .is_ok_and(|e| e.abs() <= 100_000),
    }
}

/// COPY text escaping: backslash, newline, carriage return and tab.
fn copy_escape(b: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr3(b'\\', b'\n', b'\r', b).is_none() && memchr::memchr(b'\t', b).is_none() {
        out.extend_from_slice(b);
        return;
    }
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
}

pub(super) fn copy_escaped(b: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(b.len());
    copy_escape(b, &mut v);
    v
}

/// `s`, exactly `n` ASCII digits, as a number.
fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n).then(|| binary::num(s.as_bytes(), 0, n))?
}

/// `YYYY-MM-DD` (more year digits allowed, ` BC` too), a real calendar day
/// in PostgreSQL's range for dates; or `infinity`.
fn valid_date(s: &str) -> bool {
    if s == "infinity" || s == "-infinity" {
        return true;
    }
    match s.strip_suffix(" BC") {
        Some(day) => valid_day(day, true, LAST_DATE_YEAR),
        None => valid_day(s, false, LAST_DATE_YEAR),
    }
}

/// The last year of PostgreSQL's dates and of its timestamps; both start
/// on 4714-11-24 BC.
const LAST_DATE_YEAR: u32 = 5_874_897;
const LAST_TIMESTAMP_YEAR: u32 = 294_276;

/// `YYYY-MM-DD` (of the era before Christ when `bc`), a real calendar day
/// from 4714-11-24 BC to the end of year `last`.
fn valid_day(s: &str, bc: bool, last: u32) -> bool {
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if y.len() < 4 || y.len() > 7 || !y.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (Ok(y), Some(m), Some(d)) = (y.parse::<u32>(), digits(m, 2), digits(d, 2)) else {
        return false;
    };
    let in_range = if bc {
        y < 4714 || (y == 4714 && (m, d) >= (11, 24))
    } else {
        y <= last
    };
    in_range && binary::real_day(y, m, d)
}

/// Whether `s` has the shape nearly every timestamp has,
/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][offset]`, and is valid. False leaves the
/// verdict to [`valid_timestamp`].
fn usual_timestamp(s: &str) -> bool {
    binary::usual_timestamp(s).is_some()
}

/// `HH:MM[:SS[.ffffff]]`, then maybe an offset `Z`, `+HH`, `+HHMM`, `+HH:MM`.
fn valid_time(s: &str) -> bool {
    let (clock, offset) = match s.bytes().position(|b| matches!(b, b'+' | b'-' | b'Z')) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    // A time without a zone ignores an offset, as PostgreSQL does.
    offset.is_none_or(valid_offset) && valid_clock(clock)
}

fn valid_clock(s: &str) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let mut parts = hms.split(':');
    let (Some(h), Some(m)) = (
        parts.next().and_then(|h| digits(h, 2)),
        parts.next().and_then(|m| digits(m, 2)),
    ) else {
        return false;
    };
    let sec = match parts.next() {
        Some(x) => match digits(x, 2) {
            Some(v) => v,
            None => return false,
        },
        None => 0,
    };
    if parts.next().is_some() {
        return false;
    }
    (h < 24 && m < 60 && sec < 60)
        || (h == 24 && m == 0 && sec == 0 && frac.is_none_or(|f| f.bytes().all(|b| b == b'0')))
}

fn valid_offset(o: &str) -> bool {
    binary::offset(o).is_some()
}

/// A date, `T` or a space, a time, an optional offset; or `infinity`.
fn valid_timestamp(s: &str) -> bool {
    if usual_timestamp(s) || s == "infinity" || s == "-infinity" {
        return true;
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(x) => (x, true),
        None => (s, false),
    };
    let Some(i) = s.find(['T', ' ']) else {
        return false;
    };
    let (date, time) = (&s[..i], &s[i + 1..]);
    // An offset may move a time on the last or first day out of range
    // (west of UTC is later, east earlier): NULL rather than a failed load.
    let east = time
        .find(['+', '-'])
        .and_then(|i| binary::offset(&time[i..]))
        .unwrap_or(0);
    let at_an_end =
        (date == "294276-12-31" && east < 0) || (bc && date == "4714-11-24" && east > 0);
    valid_day(date, bc, LAST_TIMESTAMP_YEAR) && !at_an_end && valid_time(time)
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm+00`.
pub(super) fn write_millis(out: &mut Vec<u8>, ms: i64) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    out.extend_from_slice(
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}+00",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            ms.rem_euclid(1000)
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(t: ColType, raw: &str) -> Option<String> {
        let mut out = Vec::new();
        encode(t, raw, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_that_fit_are_written_as_copy_text() {
        assert_eq!(
            enc(ColType::Text, r#""a\tb\\c\n""#).as_deref(),
            Some("a\\tb\\\\c\\n")
        );
        assert_eq!(enc(ColType::Text, "12").as_deref(), Some("12"));
        assert_eq!(enc(ColType::BigInt, "-42").as_deref(), Some("-42"));
        assert_eq!(enc(ColType::BigInt, "3.0").as_deref(), Some("3"));
        assert_eq!(enc(ColType::Numeric, "1.50e3").as_deref(), Some("1.50e3"));
        assert_eq!(enc(ColType::Numeric, "\"NaN\"").as_deref(), Some("NaN"));
        assert_eq!(enc(ColType::Bool, "true").as_deref(), Some("t"));
        assert_eq!(
            enc(ColType::Jsonb, "\"\\u00e9\"").as_deref(),
            Some("\"\\\\u00e9\"")
        );
        assert_eq!(
            enc(ColType::Date, "\"2024-02-29\"").as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(
            enc(ColType::TimestampTz, "\"2024-01-01T10:00:00.123456+02:00\"").as_deref(),
            Some("2024-01-01T10:00:00.123456+02:00")
        );
        assert_eq!(
            enc(ColType::Timestamp, "\"2024-01-01 10:00:00\"").as_deref(),
            Some("2024-01-01 10:00:00")
        );
        assert_eq!(
            enc(ColType::TimeTz, "\"10:00:00+05:30\"").as_deref(),
            Some("10:00:00+05:30")
        );
        assert_eq!(
            enc(ColType::Time, "\"24:00:00\"").as_deref(),
            Some("24:00:00")
        );
        assert_eq!(
            enc(ColType::Jsonb, "{\"a\": [1, \"x\\ny\"]}").as_deref(),
            Some("{\"a\": [1, \"x\\\\ny\"]}")
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        for (t, raw) in [
            (ColType::BigInt, "\"12\""),
            (ColType::BigInt, "1.5"),
            (ColType::BigInt, "99999999999999999999"),
            (ColType::Numeric, "\"abc\""),
            (ColType::Numeric, "true"),
            (ColType::Bool, "1"),
            (ColType::Date, "\"2023-02-29\""),
            (ColType::Date, "\"0000-01-01\""),
            (ColType::Date, "\"yesterday\""),
            (ColType::Timestamp, "\"2024-01-01T25:00:00\""),
            (ColType::TimestampTz, "\"2024-13-01T00:00:00Z\""),
            (ColType::Time, "\"10:00\"x"),
            (ColType::Time, "\"10:60:00\""),
            (ColType::TimeTz, "\"10:00:00+16:00\""),
            (ColType::Text, "\"a\\u0000b\""),
            (ColType::Jsonb, "\"a\\u0000b\""),
            (ColType::Jsonb, "[\"\\ud800\"]"),
            (ColType::Numeric, "1e1000000"),
        ] {
            assert_eq!(enc(t, raw), None, "{t:?} {raw}");
        }
    }

    #[test]
    fn extracted_at_is_a_timestamp() {
        let mut v = Vec::new();
        write_millis(&mut v, 951_782_400_123);
        assert_eq!(String::from_utf8(v).unwrap(), "2000-02-29 00:00:00.123+00");
    }

    #[test]
    fn usual_timestamps_agree_with_the_general_check() {
        for s in [
            "2024-01-01T00:00:01Z",
            "2024-01-01 00:00:01+00",
            "2024-02-29T23:59:59.123456+05:30",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:60:00",
            "2024-01-01T00:00:00.",
            "2024-01-01T00:00:00+1",
            "2024-01-01T00:00:00+16",
            "2024-01-01T00:00:00 BC",
            "2024-01-01T00:00:00+01 BC",
            "0000-01-01T00:00:00",
            "2024-01-01X00:00:00",
            "2024-1-01T00:00:00Z",
        ] {
            if usual_timestamp(s) {
                assert!(valid_timestamp_general(s), "{s}");
            }
        }
        assert!(usual_timestamp("2024-06-01T00:00:02+00:00"));
        assert!(!usual_timestamp("2023-02-29T00:00:00"));
    }

    #[test]
    fn dates_and_timestamps_reach_to_postgresqls_ends_and_no_further() {
        for (s, ok) in [
            ("5874897-12-31", true),
            ("5874898-01-01", false),
            ("10000-01-01", true),
            ("4714-11-24 BC", true),
            ("4714-11-23 BC", false),
            ("5000-01-01 BC", false),
        ] {
            assert_eq!(valid_date(s), ok, "{s}");
        }
        for (s, ok) in [
            ("294276-12-31T23:59:59.999999", true),
            ("294276-12-31T23:59:59+00:00", true),
            ("294276-12-31T23:59:59-01:00", false),
            ("294277-01-01T00:00:00", false),
            ("100000-01-01T00:00:00+00:00", true),
            ("4714-11-24T00:00:00 BC", true),
            ("4714-11-23T23:59:59 BC", false),
            ("4714-11-24T00:00:00+00:00 BC", true),
            ("4714-11-24T00:00:00+01:00 BC", false),
        ] {
            assert_eq!(valid_timestamp(s), ok, "{s}");
        }
    }

    /// The general check alone, without the quick path.
    fn valid_timestamp_general(s: &str) -> bool {
        let i = s.find(['T', ' ']).unwrap();
        valid_date(&s[..i]) && valid_time(&s[i + 1..])
    }
}

//! Rendering answers: one trait for every list and get, behind
//! `--output table|json`.

use super::args::OutputFormat;
use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// A value that prints as table rows or as JSON.
pub trait CliOutput: Serialize {
    fn headers() -> Vec<&'static str>;
    fn row(&self) -> Vec<String>;
}

/// Prints items as a table, or as a JSON array.
pub fn print_list<T: CliOutput>(items: &[T], format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_json(&items),
        OutputFormat::Table => {
            let mut t = table(T::headers());
            for item in items {
                t.add_row(item.row());
            }
            print_table(&t)
        }
    }
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = stdout();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Prints a value as one line of JSON: an error under `--output json`, which
/// must parse whether the command's answer is one document or JSON lines.
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = stdout();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Standard output in blocks: its own buffer flushes at each line, a
/// system call per line of a long listing.
fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock())
}

/// A table in the house style.
pub fn table(headers: Vec<&'static str>) -> Table {
    let mut t = fields();
    t.set_header(headers);
    t
}

/// A table of named values, a name and its value a row: no header.
pub fn fields() -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if !std::io::stdout().is_terminal() {
        t.load_style(presets::ASCII_BORDERS_ONLY_CONDENSED);
    }
    t
}

pub fn print_table(t: &Table) -> anyhow::Result<()> {
    let mut out = stdout();
    writeln!(out, "{t}")?;
    out.flush()?;
    Ok(())
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 1536 -> "1.5 KiB", as sluice writes sizes everywhere.
pub fn bytes(n: u64) -> String {
    crate::api::human_bytes(n)
}

/// Why something failed, for people: "a config error in the source: ...".
pub fn failure(f: Option<&crate::api::Failure>) -> String {
    match f {
        Some(f) => {
            let kind = f.failure_type.as_str().replace('_', " ");
            let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            format!("{article} {kind} in the {}: {}", f.origin, f.message)
        }
        None => "no reason was given".into(),
    }
}

/// A duration as people read it: "850 ms", "12.3 s", "4 min 05 s".
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {:02} s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// A store timestamp (Unix milliseconds) as UTC, to the second.
pub fn timestamp(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(245_000), "4 min 05 s");
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}

//! The line codec: turns a connector's output into chunks of whole lines.
//!
//! Reads are large and a chunk holds as many complete lines as one read
//! brought, so the engine pays per chunk, not per line, for I/O. Memory is
//! bounded by the read size plus the longest line, and a line longer than
//! the configured limit fails the read instead of growing without end.

use bytes::{Bytes, BytesMut};
use std::future::Future;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The default bound on one protocol line: 100 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 100 * 1024 * 1024;

/// How much one read asks for.
pub const READ_SIZE: usize = 256 * 1024;

/// Where a [`LineReader`] gets its bytes.
pub trait Fill: Send {
    /// Appends more bytes to `buf`, up to its spare capacity; 0 at the end.
    fn fill(&mut self, buf: &mut BytesMut) -> impl Future<Output = std::io::Result<usize>> + Send;

    /// How many of the bytes filled so far were also put somewhere the
    /// engine can forward them from without copying (see `sync::splice`).
    fn mirrored(&self) -> u64 {
        0
    }
}

/// Fills from any reader.
pub struct ReadFill<R>(pub R);

impl<R: AsyncRead + Unpin + Send> Fill for ReadFill<R> {
    async fn fill(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.0.read_buf(buf).await
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("a single line is longer than the {limit}-byte limit (raise it with --max-line-size)")]
    LineTooLong { limit: usize },
    #[error("reading failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads chunks of complete lines from a connector's output.
pub struct LineReader<F> {
    inner: F,
    buf: BytesMut,
    /// How far `buf` is known to hold no newline.
    scanned: usize,
    max_line: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin + Send> LineReader<ReadFill<R>> {
    pub fn new(inner: R, max_line: usize) -> Self {
        LineReader::with_fill(ReadFill(inner), max_line)
    }
}

impl<F: Fill> LineReader<F> {
    pub fn with_fill(inner: F, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: BytesMut::with_capacity(READ_SIZE),
            scanned: 0,
            max_line,
            eof: false,
        }
    }

    pub fn fill_ref(&self) -> &F {
        &self.inner
    }

    /// `chunk`, unless one of its lines is longer than the limit. Only a
    /// chunk longer than the limit can hold such a line, so with the usual
    /// limits (far above [`READ_SIZE`]) the lines are not even looked at.
    fn checked(&self, chunk: Bytes) -> Result<Option<Bytes>, CodecError> {
        if chunk.len() > self.max_line {
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &chunk).chain([chunk.len()]) {
                if end - start > self.max_line {
                    return Err(CodecError::LineTooLong {
                        limit: self.max_line,
                    });
                }
                start = end + 1;
            }
        }
        Ok(Some(chunk))
    }

    /// The next chunk of one or more whole lines, each ending in `\n` except
    /// perhaps the very last line of the stream. `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, CodecError> {
        loop {
            if let Some(pos) = memchr::memrchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + pos + 1;
                self.scanned = 0;
                let chunk = self.buf.split_to(end).freeze();
                return self.checked(chunk);
            }
            self.scanned = self.buf.len();
            if self.eof {
                self.scanned = 0;
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let rest = self.buf.split().freeze();
                return self.checked(rest);
            }
            if self.buf.len() > self.max_line {
                return Err(CodecError::LineTooLong {
                    limit: self.max_line,
                });
            }
            if self.buf.capacity() - self.buf.len() < READ_SIZE / 4 {
                self.buf.reserve(READ_SIZE);
            }
            if self.inner.fill(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }
}

/// One line of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Where the line starts in the chunk.
    pub start: usize,
    /// Where the next line starts: just past this one's `\n`.
    pub end: usize,
    /// The line without its `\n` (and without a `\r` before it).
    pub text: &'a [u8],
}

/// The lines of a chunk. Blank lines are skipped.
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = Line<'_>> + '_ {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', chunk);
    let mut done = false;
    std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        let (line_start, text_end, next) = match ends.next() {
            Some(e) => (start, e, e + 1),
            None => {
                done = true;
                if start >= chunk.len() {
                    return None;
                }
                (start, chunk.len(), chunk.len())
            }
        };
        start = next;
        let mut text = &chunk[line_start..text_end];
        if let [rest @ .., b'\r'] = text {
            text = rest;
        }
        if text.iter().all(|c| c.is_ascii_whitespace()) {
            continue;
        }
        return Some(Line {
            start: line_start,
            end: next,
            text,
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn chunks(input: &[u8], max: usize) -> Result<Vec<Vec<u8>>, CodecError> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().await? {
            out.push(c.to_vec());
        }
        Ok(out)
    }

    #[tokio::test]
    async fn chunks_end_on_line_boundaries() {
        let got = chunks(b"a\nbb\nccc", 100).await.unwrap();
        assert_eq!(got, vec![b"a\nbb\n".to_vec(), b"ccc".to_vec()]);
        assert!(chunks(b"", 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_line_over_the_limit_fails_without_reading_it_all() {
        let mut big = vec![b'x'; 3 * READ_SIZE];
        big.push(b'\n');
        match chunks(&big, READ_SIZE).await {
            Err(CodecError::LineTooLong { limit }) => assert_eq!(limit, READ_SIZE),
            other => panic!("expected LineTooLong, got {other:?}"),
        }
        // The same line fits under a larger limit.
        assert_eq!(chunks(&big, 4 * READ_SIZE).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_limit_below_the_read_size_still_holds_for_every_line() {
        assert!(matches!(
            chunks(b"aaaa\nbbbbbb\nc", 5).await,
            Err(CodecError::LineTooLong { limit: 5 })
        ));
        assert!(matches!(
            chunks(b"aaaa\nbbbbb\ncccccc", 5).await,
            Err(CodecError::LineTooLong { limit: 5 })
        ));
        assert_eq!(
            chunks(b"aaaa\nbbbbb\nc", 5).await.unwrap().concat(),
            b"aaaa\nbbbbb\nc"
        );
    }

    #[tokio::test]
    async fn many_lines_are_all_returned_in_order() {
        let mut input = Vec::new();
        for i in 0..100_000 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let got = chunks(&input, 1000).await.unwrap();
        assert!(got.iter().all(|c| c.ends_with(b"\n")));
        assert_eq!(got.concat(), input);
    }

    #[test]
    fn lines_skips_blanks_and_carriage_returns() {
        let chunk = b"a\r\n\n  \nb\nc";
        let got: Vec<&[u8]> = lines(chunk).map(|l| l.text).collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"c"]);
        let spans: Vec<(usize, usize)> = lines(chunk).map(|l| (l.start, l.end)).collect();
        assert_eq!(spans, vec![(0, 3), (7, 9), (9, 10)]);
    }
}

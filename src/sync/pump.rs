//! The pump: moves the source's output to the destination.
//!
//! Three stages run at once, so scanning never stalls the pipes:
//! a reader drains the source into chunks of whole lines; each chunk is
//! scanned on the blocking pool (validation and routing, the costly part,
//! several chunks at a time when cores are free); and the apply stage takes
//! the scanned chunks in order, does what must happen in order (counting,
//! tracking states, logging) and writes to the destination. At most
//! [`SCAN_AHEAD`] chunks are in flight, which bounds memory and makes a
//! slow destination slow the source.

use super::mapping::{self, Mapping};
use super::splice::{Mirror, TeeFill};
use super::{control, Context, Failure, FailureOrigin, Keep, StreamDescriptor};
use crate::connector::builtin::handoff::RowsLine;
use crate::connector::{preview, Role, Stdin, Stdout};
use crate::protocol::codec::{self, CodecError, Fill, LineReader, ReadFill};
use crate::protocol::envelope::{self, EnvelopeError, MessageKind};
use crate::protocol::{
    now_millis, ErrorTrace, Extra, FailureType, LogLevel, Message, StreamStatus, StreamStatusTrace,
    TraceKind, TraceMessage,
};
use bytes::Bytes;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Chunks read ahead of the one being applied.
const SCAN_AHEAD: usize = 4;

pub(super) enum PumpEnd {
    SourceDone,
    DestinationGone,
    Aborted,
    TooLong(CodecError),
}

/// Each stream's name as the source writes it, and what the destination
/// gets: its name there and the fields its records keep.
pub(super) struct Names {
    streams: Vec<Route>,
    /// Whether `SLUICE_ROWS` lines are batches of rows to count and pass
    /// on (the connectors share a handoff), not stray lines.
    rows: bool,
}

struct Route {
    from: StreamDescriptor,
    to: StreamDescriptor,
    fields: Option<Vec<String>>,
    /// Whether its records change on the way (the hot path copies no
    /// bytes when none does).
    rewrite: bool,
}

impl Names {
    pub(super) fn new(
        catalog: &crate::protocol::ConfiguredAirbyteCatalog,
        mapping: &Mapping,
    ) -> Self {
        Names {
            streams: catalog
                .streams
                .iter()
                .map(|s| {
                    let from = s.stream.descriptor();
                    let fields = mapping.fields_of(&from).map(<[String]>::to_vec);
                    Route {
                        to: mapping.map(&from),
                        rewrite: !mapping.keeps_names() || fields.is_some(),
                        from,
                        fields,
                    }
                })
                .collect(),
            rows: false,
        }
    }

    /// Counts and passes on the batches of rows of a handoff.
    pub(super) fn with_rows(mut self) -> Self {
        self.rows = true;
        self
    }
}

/// What the scan found on one line.
enum Item {
    /// A record of a catalog stream; `rewrite` is its mapped line in
    /// [`Scanned::rewritten`], when names change.
    Record {
        stream: usize,
        data_len: usize,
        start: usize,
        end: usize,
        rewrite: Option<(usize, usize)>,
    },
    /// A batch of rows of a catalog stream handed over beside the line.
    Rows {
        stream: usize,
        count: u64,
        bytes: u64,
    },
    /// A record of a stream outside the catalog: dropped.
    Unknown {
        start: usize,
        end: usize,
        stream: StreamDescriptor,
    },
    /// Any other valid message, handled in order.
    Other {
        start: usize,
        end: usize,
        kind: MessageKind,
    },
    /// Not a protocol message: logged and skipped.
    Invalid {
        start: usize,
        end: usize,
        error: EnvelopeError,
    },
}

struct Scanned {
    chunk: Bytes,
    /// How many of the chunk's bytes are at the head of the mirror pipe.
    mirrored: usize,
    items: Vec<Item>,
    rewritten: Vec<u8>,
}

/// What goes to the destination for a chunk: ranges of it kept as they
/// are, and bytes put in place of the lines between them.
enum Seg {
    Keep(usize, usize),
    Insert(Vec<u8>),
}

/// Scans one chunk; runs on the blocking pool.
fn scan_chunk(chunk: Bytes, mirrored: usize, names: &Names) -> Scanned {
    let mut items = Vec::with_capacity(chunk.len() / 128 + 1);
    let mut rewritten = Vec::new();
    let mut last = 0usize;
    for line in codec::lines(&chunk) {
        let (start, end) = (line.start, line.end);
        let result = envelope::scan_in(&chunk, start, start + line.text.len());
        let item = match result {
            Ok(env) => match (env.kind, env.record) {
                (MessageKind::Record, Some(r)) => {
                    let hit = |d: &StreamDescriptor| {
                        d.name == r.stream && d.namespace.as_deref() == r.namespace.as_deref()
                    };
                    let found = if names.streams.get(last).is_some_and(|r| hit(&r.from)) {
                        Some(last)
                    } else {
                        names.streams.iter().position(|r| hit(&r.from))
                    };
                    match found {
                        Some(i) => {
                            last = i;
                            let route = &names.streams[i];
                            let rewrite = if !route.rewrite {
                                None
                            } else {
                                let from = rewritten.len();
                                match mapping::rewrite_record(
                                    line.text,
                                    &route.to,
                                    route.fields.as_deref(),
                                    &mut rewritten,
                                ) {
                                    Ok(()) => Some((from, rewritten.len())),
                                    Err(_) => {
                                        rewritten.truncate(from);
                                        Some((from, from))
                                    }
                                }
                            };
                            Item::Record {
                                stream: i,
                                data_len: r.data.len(),
                                start,
                                end,
                                rewrite,
                            }
                        }
                        None => Item::Unknown {
                            start,
                            end,
                            stream: StreamDescriptor::new(r.namespace.as_deref(), &r.stream),
                        },
                    }
                }
                (MessageKind::Rows, _) if names.rows => match RowsLine::parse(line.text) {
                    Some(r) => {
                        let d = r.descriptor();
                        match names.streams.iter().position(|x| x.from == d) {
                            Some(i) => Item::Rows {
                                stream: i,
                                count: r.count,
                                bytes: r.bytes,
                            },
                            None => Item::Unknown {
                                start,
                                end,
                                stream: d,
                            },
                        }
                    }
                    None => Item::Other {
                        start,
                        end,
                        kind: MessageKind::Rows,
                    },
                },
                (kind, _) => Item::Other { start, end, kind },
            },
            Err(error) => Item::Invalid { start, end, error },
        };
        items.push(item);
    }
    Scanned {
        chunk,
        mirrored,
        items,
        rewritten,
    }
}

/// Reads chunks, sends each to be scanned, in order; returns how reading ended.
async fn read_chunks<F: Fill>(
    mut reader: LineReader<F>,
    names: Arc<Names>,
    tx: tokio::sync::mpsc::Sender<tokio::task::JoinHandle<Scanned>>,
    abort: CancellationToken,
) -> PumpEnd {
    let mut emitted: u64 = 0;
    loop {
        let next = tokio::select! {
            biased;
            _ = abort.cancelled() => return PumpEnd::Aborted,
            r = reader.next_chunk() => r,
        };
        let chunk = match next {
            Ok(Some(c)) => c,
            Ok(None) | Err(CodecError::Io(_)) => return PumpEnd::SourceDone,
            Err(e @ CodecError::LineTooLong { .. }) => return PumpEnd::TooLong(e),
        };
        let mirrored =
            (reader.fill_ref().mirrored().saturating_sub(emitted) as usize).min(chunk.len());
        emitted += chunk.len() as u64;
        let names = names.clone();
        let job = tokio::task::spawn_blocking(move || scan_chunk(chunk, mirrored, &names));
        if tx.send(job).await.is_err() {
            return PumpEnd::Aborted;
        }
    }
}

/// Writes to the destination unless the sync is aborted first.
pub(super) async fn write_or_abort(
    dest_in: &mut (dyn AsyncWrite + Send + Unpin),
    bytes: &[u8],
    abort: &CancellationToken,
) -> Result<(), PumpEnd> {
    tokio::select! {
        biased;
        _ = abort.cancelled() => Err(PumpEnd::Aborted),
        r = dest_in.write_all(bytes) => r.map_err(|_| PumpEnd::DestinationGone),
    }
}

pub(super) struct Pump<'a> {
    cx: &'a Context,
    names: Arc<Names>,
    records: Vec<u64>,
    bytes: Vec<u64>,
    warned_unknown: Vec<StreamDescriptor>,
    completed: Vec<bool>,
}

impl<'a> Pump<'a> {
    pub(super) fn new(names: Names, cx: &'a Context) -> Self {
        let n = names.streams.len();
        Pump {
            cx,
            names: Arc::new(names),
            records: vec![0; n],
            bytes: vec![0; n],
            warned_unknown: Vec::new(),
            completed: vec![false; n],
        }
    }

    pub(super) async fn run(&mut self, stdout: Stdout, dest_in: &mut Stdin) -> PumpEnd {
        let (tx, mut rx) =
            tokio::sync::mpsc::channel::<tokio::task::JoinHandle<Scanned>>(SCAN_AHEAD);
        let abort = self.cx.abort.clone();
        let names = self.names.clone();
        let max_line = self.cx.max_line_bytes;
        // Zero-copy when both ends are OS pipes and a mirror can be made.
        let mirror = match (&stdout, &*dest_in) {
            (Stdout::Pipe(_), Stdin::Pipe(_)) => Mirror::new().ok(),
            _ => None,
        };
        let reader = match (stdout, &mirror) {
            (Stdout::Pipe(src), Some(m)) => {
                let fill = TeeFill::new(src, m.clone());
                tokio::spawn(read_chunks(
                    LineReader::with_fill(fill, max_line),
                    names,
                    tx,
                    abort,
                ))
            }
            (other, _) => tokio::spawn(read_chunks(
                LineReader::with_fill(ReadFill(other), max_line),
                names,
                tx,
                abort,
            )),
        };
        let end = loop {
            let job = tokio::select! {
                biased;
                _ = self.cx.abort.cancelled() => break Some(PumpEnd::Aborted),
                j = rx.recv() => j,
            };
            let Some(job) = job else {
                break None;
            };
            let Ok(scanned) = job.await else {
                break Some(PumpEnd::Aborted);
            };
            let segs = self.apply(&scanned);
            self.publish();
            let sent = tokio::select! {
                biased;
                _ = self.cx.abort.cancelled() => Err(PumpEnd::Aborted),
                r = send(&scanned, &segs, mirror.as_deref(), dest_in) => r.map_err(|_| PumpEnd::DestinationGone),
            };
            if let Err(end) = sent {
                break Some(end);
            }
        };
        drop(rx);
        if end.is_some() {
            // Nothing drains the reader any more: it may be waiting for
            // room in the mirror, which only sending frees, or for a source
            // that writes nothing. Stopping it closes the source's output,
            // so a source blocked on a full pipe ends too.
            reader.abort();
        }
        let reader_end = reader.await.unwrap_or(PumpEnd::Aborted);
        end.unwrap_or(reader_end)
    }

    /// Adds the counts so far to the shared counters.
    pub(super) fn publish(&mut self) {
        let mut s = self.cx.shared.lock().expect("engine lock");
        for (i, c) in s.tracker.streams.iter_mut().enumerate() {
            c.records += std::mem::take(&mut self.records[i]);
            c.bytes += std::mem::take(&mut self.bytes[i]);
        }
    }

    /// Does, in order, what a scanned chunk asks, and says what of it goes
    /// to the destination.
    fn apply(&mut self, s: &Scanned) -> Vec<Seg> {
        let chunk = &s.chunk[..];
        let mut segs = Vec::new();
        // `run_start` is where the current run of lines forwarded unchanged
        // began; a line that is changed or dropped ends the run.
        let mut run_start = 0;
        for item in &s.items {
            let (start, end, keep) = match item {
                Item::Record {
                    stream,
                    data_len,
                    start,
                    end,
                    rewrite,
                } => {
                    self.records[*stream] += 1;
                    self.bytes[*stream] += *data_len as u64;
                    let keep = match rewrite {
                        None => Keep::Same,
                        Some((a, b)) if a == b => Keep::Drop,
                        Some((a, b)) => Keep::Replace(s.rewritten[*a..*b].to_vec()),
                    };
                    (*start, *end, keep)
                }
                Item::Rows {
                    stream,
                    count,
                    bytes,
                } => {
                    self.records[*stream] += count;
                    self.bytes[*stream] += bytes;
                    continue;
                }
                Item::Unknown { start, end, stream } => {
                    self.unknown_stream(stream);
                    (*start, *end, Keep::Drop)
                }
                Item::Other { start, end, kind } => {
                    let text = trim_line(&chunk[*start..*end]);
                    (*start, *end, self.control_line(*kind, text))
                }
                Item::Invalid { start, end, error } => {
                    self.cx.shared.lock().expect("engine lock").lines_skipped += 1;
                    let text = trim_line(&chunk[*start..*end]);
                    self.cx.log.log(
                        "source",
                        LogLevel::Warn,
                        &format!(
                            "Skipped a line that is not a protocol message ({error}): {}",
                            preview(text)
                        ),
                    );
                    (*start, *end, Keep::Drop)
                }
            };
            match keep {
                Keep::Same => {}
                other => {
                    if start > run_start {
                        segs.push(Seg::Keep(run_start, start));
                    }
                    if let Keep::Replace(bytes) = other {
                        segs.push(Seg::Insert(bytes));
                    }
                    run_start = end;
                }
            }
        }
        if run_start < chunk.len() {
            segs.push(Seg::Keep(run_start, chunk.len()));
        }
        // The stream's very last line may lack its newline.
        if !chunk.is_empty() && !chunk.ends_with(b"\n") {
            segs.push(Seg::Insert(b"\n".to_vec()));
        }
        segs
    }

    fn unknown_stream(&mut self, d: &StreamDescriptor) {
        self.cx.shared.lock().expect("engine lock").records_dropped += 1;
        if !self.warned_unknown.contains(d) {
            self.cx.log.log(
                "sluice",
                LogLevel::Warn,
                &format!("Dropping records of stream `{d}`, which is not in the catalog."),
            );
            self.warned_unknown.push(d.clone());
        }
    }

    /// Any message but a RECORD. STATEs are tracked and forwarded, stream
    /// statuses forwarded, the rest logged.
    fn control_line(&mut self, kind: MessageKind, text: &[u8]) -> Keep {
        let msg = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.cx.shared.lock().expect("engine lock").lines_skipped += 1;
                self.cx.log.log(
                    "source",
                    LogLevel::Warn,
                    &format!(
                        "Skipped a {kind:?} line that does not match the protocol ({e}): {}",
                        preview(text)
                    ),
                );
                return Keep::Drop;
            }
        };
        match msg {
            Message::State(state) => {
                // Counts up to this state must be in the tracker first.
                self.publish();
                let mut s = self.cx.shared.lock().expect("engine lock");
                match s.tracker.from_source(state) {
                    Ok(forward) => Keep::Replace(Message::State(forward).to_line()),
                    Err(e) => {
                        drop(s);
                        self.cx
                            .log
                            .log("source", LogLevel::Warn, &format!("Skipped a state: {e}"));
                        Keep::Drop
                    }
                }
            }
            Message::Log(l) => {
                self.cx.log.log("source", l.level, &l.message);
                if let Some(trace) = &l.stack_trace {
                    self.cx.log.log("source", LogLevel::Debug, trace);
                }
                Keep::Drop
            }
            Message::Trace(t) => self.trace(t),
            Message::Control(c) => {
                control(&self.cx.config_sink, &*self.cx.log, Role::Source, c);
                Keep::Drop
            }
            other => {
                self.cx.log.log(
                    "source",
                    LogLevel::Debug,
                    &format!("Ignored a {} message.", other.kind()),
                );
                Keep::Drop
            }
        }
    }

    fn trace(&mut self, t: TraceMessage) -> Keep {
        match t.kind {
            TraceKind::Error => {
                let e = t.error.unwrap_or_else(|| ErrorTrace {
                    message: "the source reported an error without a message".into(),
                    internal_message: None,
                    stack_trace: None,
                    failure_type: None,
                    stream_descriptor: None,
                    extra: Extra::new(),
                });
                self.cx.log.log("source", LogLevel::Error, &e.message);
                if let Some(i) = &e.internal_message {
                    self.cx.log.log("source", LogLevel::Error, i);
                }
                if let Some(st) = &e.stack_trace {
                    self.cx.log.log("source", LogLevel::Debug, st);
                }
                let mut s = self.cx.shared.lock().expect("engine lock");
                s.source_error.get_or_insert_with(|| {
                    Failure::new(
                        FailureOrigin::Source,
                        e.failure_type.unwrap_or(FailureType::SystemError),
                        e.message,
                    )
                });
                Keep::Drop
            }
            TraceKind::Estimate => {
                if let Some(est) = t.estimate {
                    let d = StreamDescriptor::new(est.namespace.as_deref(), &est.name);
                    let mut s = self.cx.shared.lock().expect("engine lock");
                    if let (Some(i), Some(rows)) = (s.tracker.index_of(&d), est.row_estimate) {
                        s.estimates[i] = Some(rows.max(0) as u64);
                    }
                }
                Keep::Drop
            }
            TraceKind::StreamStatus => {
                let Some(ss) = t.stream_status else {
                    return Keep::Drop;
                };
                let mut s = self.cx.shared.lock().expect("engine lock");
                let Some(i) = s.tracker.index_of(&ss.stream_descriptor) else {
                    return Keep::Drop;
                };
                s.statuses[i] = Some(match ss.status {
                    StreamStatus::Started => "started",
                    StreamStatus::Running => "running",
                    StreamStatus::Complete => "complete",
                    StreamStatus::Incomplete => "incomplete",
                    StreamStatus::Unknown => "unknown",
                });
                drop(s);
                if ss.status == StreamStatus::Complete {
                    self.completed[i] = true;
                }
                // Destinations learn a stream is complete from this (an
                // overwrite swaps its table in then).
                let mapped = StreamStatusTrace {
                    stream_descriptor: self.names.streams[i].to.clone(),
                    ..ss
                };
                Keep::Replace(
                    Message::Trace(TraceMessage {
                        stream_status: Some(mapped),
                        ..t
                    })
                    .to_line(),
                )
            }
            TraceKind::Analytics | TraceKind::Unknown => {
                self.cx.log.log(
                    "source",
                    LogLevel::Debug,
                    &format!("Trace: {}", serde_json::to_string(&t).unwrap_or_default()),
                );
                Keep::Drop
            }
        }
    }

    /// STREAM_STATUS COMPLETE lines for the streams whose completion the
    /// source did not report; sent only when the source ended well.
    pub(super) fn completions_missing(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, route) in self.names.streams.iter().enumerate() {
            if !self.completed[i] {
                out.extend_from_slice(
                    &Message::Trace(TraceMessage {
                        kind: TraceKind::StreamStatus,
                        emitted_at: now_millis() as f64,
                        error: None,
                        estimate: None,
                        stream_status: Some(StreamStatusTrace {
                            stream_descriptor: route.to.clone(),
                            status: StreamStatus::Complete,
                            reasons: Vec::new(),
                            extra: Extra::new(),
                        }),
                        analytics: None,
                        extra: Extra::new(),
                    })
                    .to_line(),
                );
            }
        }
        out
    }
}

/// Sends a chunk's segments: spliced from the mirror when the chunk is in
/// it, copied otherwise.
async fn send(
    s: &Scanned,
    segs: &[Seg],
    mirror: Option<&Mirror>,
    dest_in: &mut Stdin,
) -> std::io::Result<()> {
    let len = s.chunk.len();
    match (mirror, &mut *dest_in) {
        (Some(m), Stdin::Pipe(dst)) if s.mirrored == len => {
            let mut pos = 0;
            for seg in segs {
                match seg {
                    Seg::Keep(a, b) => {
                        if *a > pos {
                            m.discard(a - pos)?;
                        }
                        m.forward(dst, b - a).await?;
                        pos = *b;
                    }
                    Seg::Insert(bytes) => dst.write_all(bytes).await?,
                }
            }
            if pos < len {
                m.discard(len - pos)?;
            }
            Ok(())
        }
        _ => {
            if let Some(m) = mirror {
                // The bytes of a line too long for the mirror: copied instead.
                m.discard(s.mirrored)?;
            }
            if let [Seg::Keep(0, end)] = segs {
                if *end == len {
                    return dest_in.write_all(&s.chunk).await;
                }
            }
            let mut out = Vec::with_capacity(len + 64);
            for seg in segs {
                match seg {
                    Seg::Keep(a, b) => out.extend_from_slice(&s.chunk[*a..*b]),
                    Seg::Insert(bytes) => out.extend_from_slice(bytes),
                }
            }
            dest_in.write_all(&out).await
        }
    }
}

/// A line without its `\n` (and a `\r` before it).
fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::mapping::NamespaceRule;

    fn names(identity: bool) -> Names {
        let cat: crate::protocol::ConfiguredAirbyteCatalog = serde_json::from_value(serde_json::json!({"streams":[
            {"stream":{"name":"a","json_schema":{},"supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh","destination_sync_mode":"append"},
            {"stream":{"name":"b","json_schema":{},"supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh","destination_sync_mode":"append"}]}))
        .unwrap();
        let mapping = if identity {
            Mapping::default()
        } else {
            Mapping {
                namespace: NamespaceRule::Source,
                prefix: "p_".into(),
                ..Mapping::default()
            }
        };
        Names::new(&cat, &mapping)
    }

    #[test]
    fn scanning_routes_each_line() {
        let chunk = Bytes::from_static(
            b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"b\",\"data\":{\"x\":1}}}\n\
              not json\n\
              {\"type\":\"RECORD\",\"record\":{\"stream\":\"zz\",\"data\":{}}}\n\
              {\"type\":\"LOG\",\"log\":{\"level\":\"INFO\",\"message\":\"m\"}}\n",
        );
        let s = scan_chunk(chunk, 0, &names(true));
        assert_eq!(s.items.len(), 4);
        assert!(matches!(
            s.items[0],
            Item::Record {
                stream: 1,
                data_len: 7,
                rewrite: None,
                ..
            }
        ));
        assert!(matches!(s.items[1], Item::Invalid { .. }));
        assert!(matches!(&s.items[2], Item::Unknown { stream, .. } if stream.name == "zz"));
        assert!(matches!(
            s.items[3],
            Item::Other {
                kind: MessageKind::Log,
                ..
            }
        ));
    }

    #[test]
    fn scanning_rewrites_names_when_mapped() {
        let chunk = Bytes::from_static(
            b"{\"type\":\"RECORD\",\"record\":{\"stream\":\"a\",\"data\":{}}}\n",
        );
        let s = scan_chunk(chunk, 0, &names(false));
        let Item::Record {
            rewrite: Some((x, y)),
            ..
        } = s.items[0]
        else {
            panic!("a mapped record is rewritten");
        };
        let line = std::str::from_utf8(&s.rewritten[x..y]).unwrap();
        assert!(line.contains("\"stream\":\"p_a\""), "{line}");
    }
}

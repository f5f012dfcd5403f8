//! Rows handed from a built-in source to a built-in destination of the same
//! sync without turning them into JSON and back.
//!
//! The engine makes a [`Handoff`] when both ends can use one (the postgres
//! source and the postgres destination) and the sync changes no stream's
//! name or fields on the way. The destination says, once its tables are
//! ready, which streams it takes as rows and with what columns
//! ([`Handoff::open`]); the source reads such a stream in PostgreSQL's
//! binary COPY format, cast to those columns, and puts batches of rows
//! here. For each batch it writes a `SLUICE_ROWS` line to its output, so
//! the engine still sees everything in order: it counts the rows, forwards
//! the line between the states around it, and the destination takes the
//! batch when the line reaches it. A stream the destination does not take
//! (or any stream, when it declines) goes as RECORD lines, as always.
//!
//! Memory stays bounded: at most [`BATCHES_AHEAD`] batches wait here, and a
//! source that finds the channel full waits for the destination.

use crate::protocol::StreamDescriptor;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Batches a source may hand over before the destination has taken them.
const BATCHES_AHEAD: usize = 4;

/// The type of the line that stands for a batch of rows in the engine's
/// stream of messages. Private to sluice: only a source given a handoff
/// writes it, and the engine passes it only between such connectors.
pub const ROWS_TYPE: &str = "SLUICE_ROWS";

/// A stream the destination takes as rows: its columns, in the order the
/// rows must give them, each with its SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub stream: StreamDescriptor,
    pub columns: Vec<(String, &'static str)>,
}

enum Offer {
    /// The destination has not said yet.
    Pending,
    Open(Vec<Accepted>),
    /// The destination takes no rows (it declined, or failed first).
    Closed,
}

/// One batch: whole rows in the agreed format.
pub struct Batch {
    pub seq: u64,
    pub rows: Vec<u8>,
}

/// What a `SLUICE_ROWS` line says of its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsLine {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Rows in the batch.
    pub count: u64,
    /// Bytes of the rows' values, for the sync's byte counts.
    pub bytes: u64,
    /// When the rows were read, in milliseconds since the epoch.
    pub emitted_at: i64,
    pub seq: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    rows: RowsLine,
}

impl RowsLine {
    /// The protocol line for this batch, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(&Envelope {
            kind: ROWS_TYPE,
            rows: self.clone(),
        })
        .expect("a rows line serializes");
        line.push(b'\n');
        line
    }

    /// Reads a `SLUICE_ROWS` line.
    pub fn parse(line: &[u8]) -> Option<RowsLine> {
        let e: Envelope<'_> = serde_json::from_slice(line).ok()?;
        (e.kind == ROWS_TYPE).then_some(e.rows)
    }

    pub fn descriptor(&self) -> StreamDescriptor {
        StreamDescriptor::new(self.namespace.as_deref(), &self.stream)
    }
}

/// The meeting point of one sync's source and destination.
pub struct Handoff {
    offer: Mutex<Offer>,
    said: Condvar,
    tx: SyncSender<Batch>,
    rx: Mutex<Option<Receiver<Batch>>>,
    /// The longest row handed over, as the sync's longest line: memory
    /// stays bounded the same way on either path.
    pub max_row_bytes: usize,
}

impl Handoff {
    pub fn new(max_row_bytes: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
        Handoff {
            offer: Mutex::new(Offer::Pending),
            said: Condvar::new(),
            tx,
            rx: Mutex::new(Some(rx)),
            max_row_bytes,
        }
    }

    /// The destination takes `streams` as rows; returns where the batches
    /// arrive (dropping it makes the source's next hand-over fail).
    pub fn open(&self, streams: Vec<Accepted>) -> Option<Receiver<Batch>> {
        let rx = self.rx.lock().expect("handoff lock").take();
        self.say(if rx.is_some() && !streams.is_empty() {
            Offer::Open(streams)
        } else {
            Offer::Closed
        });
        rx
    }

    /// The destination takes no rows.
    pub fn close(&self) {
        self.say(Offer::Closed);
    }

    fn say(&self, offer: Offer) {
        let mut o = self.offer.lock().expect("handoff lock");
        if matches!(*o, Offer::Pending) {
            *o = offer;
        }
        self.said.notify_all();
    }

    /// The columns the destination takes `stream`'s rows in, once it has
    /// said; None when it takes them as records. Gives up (None) when
    /// `stop` says so while it waits.
    pub fn accepted(
        &self,
        stream: &StreamDescriptor,
        stop: &dyn Fn() -> bool,
    ) -> Option<Vec<(String, &'static str)>> {
        let mut o = self.offer.lock().expect("handoff lock");
        loop {
            match &*o {
                Offer::Pending if stop() => return None,
                Offer::Pending => {
                    o = self
                        .said
                        .wait_timeout(o, Duration::from_millis(100))
                        .expect("handoff lock")
                        .0;
                }
                Offer::Closed => return None,
                Offer::Open(streams) => {
                    return streams
                        .iter()
                        .find(|a| &a.stream == stream)
                        .map(|a| a.columns.clone())
                }
            }
        }
    }

    /// Hands a batch over; false when the destination has stopped taking
    /// them.
    pub fn send(&self, batch: Batch) -> bool {
        self.tx.send(batch).is_ok()
    }
}

/// Closes the offer when dropped unless it was opened: a destination that
/// fails before it is ready must not leave the source waiting.
pub struct CloseOnDrop<'a>(pub Option<&'a Handoff>);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.0 {
            h.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_line_reads_back() {
        let line = RowsLine {
            stream: "t".into(),
            namespace: Some("public".into()),
            count: 3,
            bytes: 40,
            emitted_at: 1_700_000_000_000,
            seq: 7,
        };
        let text = line.to_line();
        assert!(text.ends_with(b"\n"));
        assert_eq!(RowsLine::parse(&text[..text.len() - 1]), Some(line));
        assert_eq!(RowsLine::parse(br#"{"type":"RECORD","rows":{}}"#), None);
    }

    #[test]
    fn the_source_waits_for_the_destination_and_a_failed_one_closes() {
        let h = std::sync::Arc::new(Handoff::new(1 << 20));
        let d = StreamDescriptor::new(Some("public"), "t");
        let waiter = {
            let (h, d) = (h.clone(), d.clone());
            std::thread::spawn(move || h.accepted(&d, &|| false))
        };
        std::thread::sleep(Duration::from_millis(50));
        let rx = h.open(vec![Accepted {
            stream: d.clone(),
            columns: vec![("id".into(), "bigint")],
        }]);
        assert!(rx.is_some());
        assert_eq!(
            waiter.join().unwrap(),
            Some(vec![("id".to_string(), "bigint")])
        );
        assert_eq!(
            h.accepted(&StreamDescriptor::new(None, "other"), &|| false),
            None
        );
        assert!(h.send(Batch {
            seq: 0,
            rows: vec![1]
        }));
        drop(rx);
        assert!(!h.send(Batch {
            seq: 1,
            rows: vec![1]
        }));

        let failed = Handoff::new(1 << 20);
        drop(CloseOnDrop(Some(&failed)));
        assert_eq!(failed.accepted(&d, &|| false), None);
        // Asked to stop while the destination has not said.
        assert_eq!(Handoff::new(1 << 20).accepted(&d, &|| true), None);
    }
}

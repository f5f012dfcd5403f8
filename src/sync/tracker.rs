//! The state tracker: which states are in flight, and what is committed.
//!
//! Every STATE the source emits is queued, in order, as it is forwarded. A
//! state is committed only when the destination emits it back, and only if
//! it is the oldest one still in flight: a destination that skips a state,
//! reorders them, or confirms one it was never sent breaks the guarantee
//! that everything before a committed state is durable, so the sync fails.
//!
//! The tracker also counts records per stream, so each forwarded state
//! carries `sourceStats.recordCount` as Airbyte's platform adds it, and the
//! report can say how many records each committed state covers.

use super::mapping::{Mapping, ReverseMap};
use crate::protocol::{
    json_equivalent, Extra, StateMessage, StateSnapshot, StateStats, StateType, StreamDescriptor,
};
use std::collections::VecDeque;

/// One stream of the sync, with its counters.
#[derive(Debug, Clone)]
pub struct StreamCounters {
    pub stream: StreamDescriptor,
    /// Records forwarded to the destination.
    pub records: u64,
    /// Bytes of those records' `data`.
    pub bytes: u64,
    /// Records covered by committed states.
    pub committed: u64,
    /// Committed states that covered this stream.
    pub checkpoints: u64,
    /// Records at the last state this stream was covered by (for recordCount).
    at_last_state: u64,
}

struct Pending {
    seq: u64,
    /// The state as the source sent it (without stats): what gets committed.
    original: StateMessage,
    /// `original` as JSON, what confirmations are compared with.
    key: serde_json::Value,
    /// Indexes of the streams it covers.
    covers: Vec<usize>,
    /// Records per stream when it was emitted.
    records_then: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    #[error(
        "the destination confirmed state #{confirmed} while #{oldest} was still unconfirmed: \
         destinations must emit back every state, in order"
    )]
    OutOfOrder { confirmed: u64, oldest: u64 },
    #[error("the destination emitted a state it was never sent{}", stream_suffix(.0))]
    Unknown(Option<String>),
    #[error("the source emitted an invalid state: {0}")]
    InvalidSource(String),
}

fn stream_suffix(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (stream {s})"))
        .unwrap_or_default()
}

/// What a confirmation committed.
#[derive(Debug, Clone)]
pub struct Commit {
    pub seq: u64,
    pub snapshot: StateSnapshot,
}

pub struct StateTracker {
    pub streams: Vec<StreamCounters>,
    pending: VecDeque<Pending>,
    committed: Option<StateSnapshot>,
    next_seq: u64,
    mapping: Mapping,
    reverse: ReverseMap,
}

impl StateTracker {
    pub fn new(
        streams: Vec<StreamDescriptor>,
        start: Option<StateSnapshot>,
        mapping: Mapping,
        reverse: ReverseMap,
    ) -> Self {
        StateTracker {
            streams: streams
                .into_iter()
                .map(|stream| StreamCounters {
                    stream,
                    records: 0,
                    bytes: 0,
                    committed: 0,
                    checkpoints: 0,
                    at_last_state: 0,
                })
                .collect(),
            pending: VecDeque::new(),
            committed: start,
            next_seq: 1,
            mapping,
            reverse,
        }
    }

    pub fn index_of(&self, d: &StreamDescriptor) -> Option<usize> {
        self.streams.iter().position(|s| &s.stream == d)
    }

    /// Takes a state from the source. Returns the state to forward to the
    /// destination: mapped to its names, with `sourceStats` filled in.
    pub fn from_source(&mut self, state: StateMessage) -> Result<StateMessage, TrackerError> {
        state.validate().map_err(TrackerError::InvalidSource)?;
        let covers: Vec<usize> = match state.state_type() {
            StateType::Stream => {
                let d = &state.stream.as_ref().expect("validated").stream_descriptor;
                // A state for a stream outside the catalog covers no records.
                self.index_of(d).into_iter().collect()
            }
            StateType::Global | StateType::Legacy => (0..self.streams.len()).collect(),
        };
        let since: u64 = covers
            .iter()
            .map(|&i| self.streams[i].records - self.streams[i].at_last_state)
            .sum();
        for &i in &covers {
            self.streams[i].at_last_state = self.streams[i].records;
        }
        let mut forwarded = self.mapping.map_state(&state);
        let stats = forwarded.source_stats.get_or_insert_with(|| StateStats {
            record_count: None,
            extra: Extra::new(),
        });
        if stats.record_count.is_none() {
            stats.record_count = Some(since as f64);
        }
        let original = state.without_stats();
        self.pending.push_back(Pending {
            seq: self.next_seq,
            key: serde_json::to_value(&original).expect("state serializes"),
            original,
            covers,
            records_then: self.streams.iter().map(|s| s.records).collect(),
        });
        self.next_seq += 1;
        Ok(forwarded)
    }

    /// Takes a state the destination emitted back. Commits it if it is the
    /// oldest in flight.
    pub fn from_destination(&mut self, echoed: &StateMessage) -> Result<Commit, TrackerError> {
        let original = self.reverse.unmap_state(echoed).without_stats();
        let key = serde_json::to_value(&original).expect("state serializes");
        let position = self
            .pending
            .iter()
            .position(|p| json_equivalent(&p.key, &key));
        match position {
            Some(0) => {
                let p = self.pending.pop_front().expect("position 0 exists");
                for &i in &p.covers {
                    let s = &mut self.streams[i];
                    s.committed = p.records_then[i];
                    s.checkpoints += 1;
                }
                StateSnapshot::apply(&mut self.committed, &p.original);
                Ok(Commit {
                    seq: p.seq,
                    snapshot: self.committed.clone().expect("just applied"),
                })
            }
            Some(n) => Err(TrackerError::OutOfOrder {
                confirmed: self.pending[n].seq,
                oldest: self.pending[0].seq,
            }),
            None => Err(TrackerError::Unknown(
                original
                    .stream
                    .as_ref()
                    .map(|s| s.stream_descriptor.to_string()),
            )),
        }
    }

    /// States forwarded but not confirmed.
    pub fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    pub fn committed(&self) -> Option<&StateSnapshot> {
        self.committed.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sd(name: &str) -> StreamDescriptor {
        StreamDescriptor::new(None, name)
    }

    fn tracker(mapping: Mapping) -> StateTracker {
        let cat: crate::protocol::ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams":[
            {"stream":{"name":"a","json_schema":{},"supported_sync_modes":["incremental"]},"sync_mode":"incremental","destination_sync_mode":"append"},
            {"stream":{"name":"b","json_schema":{},"supported_sync_modes":["incremental"]},"sync_mode":"incremental","destination_sync_mode":"append"}]})).unwrap();
        let reverse = mapping.reverse(&cat);
        StateTracker::new(vec![sd("a"), sd("b")], None, mapping, reverse)
    }

    fn st(name: &str, c: i64) -> StateMessage {
        StateMessage::stream(sd(name), json!({"c": c}))
    }

    #[test]
    fn record_counts_are_per_stream_since_its_last_state() {
        let mut t = tracker(Mapping::default());
        t.streams[0].records = 5;
        t.streams[1].records = 2;
        let f = t.from_source(st("a", 1)).unwrap();
        assert_eq!(f.source_stats.unwrap().record_count, Some(5.0));
        t.streams[0].records = 7;
        let f = t.from_source(st("a", 2)).unwrap();
        assert_eq!(f.source_stats.unwrap().record_count, Some(2.0));
        let f = t.from_source(st("b", 1)).unwrap();
        assert_eq!(f.source_stats.unwrap().record_count, Some(2.0));
    }

    #[test]
    fn a_count_the_source_gave_is_kept() {
        let mut t = tracker(Mapping::default());
        let mut s = st("a", 1);
        s.source_stats = Some(StateStats {
            record_count: Some(42.0),
            extra: Extra::new(),
        });
        let f = t.from_source(s).unwrap();
        assert_eq!(f.source_stats.unwrap().record_count, Some(42.0));
    }

    #[test]
    fn confirmations_commit_in_order() {
        let mut t = tracker(Mapping::default());
        t.streams[0].records = 3;
        let f1 = t.from_source(st("a", 1)).unwrap();
        t.streams[0].records = 9;
        let f2 = t.from_source(st("a", 2)).unwrap();
        // The destination may add its own stats and rewrite numbers.
        let mut echo1 = f1.clone();
        echo1.destination_stats = Some(StateStats {
            record_count: Some(3.0),
            extra: Extra::new(),
        });
        let c = t.from_destination(&echo1).unwrap();
        assert_eq!(c.seq, 1);
        assert_eq!(t.streams[0].committed, 3);
        let echo2: StateMessage = serde_json::from_str(
            &serde_json::to_string(&f2)
                .unwrap()
                .replace("\"c\":2", "\"c\":2.0"),
        )
        .unwrap();
        let c = t.from_destination(&echo2).unwrap();
        assert_eq!(
            c.snapshot.to_file_value()[0]["stream"]["stream_state"],
            json!({"c": 2})
        );
        assert_eq!((t.streams[0].committed, t.streams[0].checkpoints), (9, 2));
        assert_eq!(t.unconfirmed(), 0);
    }

    #[test]
    fn skipped_reordered_and_unknown_states_are_errors() {
        let mut t = tracker(Mapping::default());
        let _f1 = t.from_source(st("a", 1)).unwrap();
        let f2 = t.from_source(st("b", 1)).unwrap();
        assert_eq!(
            t.from_destination(&f2).unwrap_err(),
            TrackerError::OutOfOrder {
                confirmed: 2,
                oldest: 1
            }
        );
        assert!(matches!(
            t.from_destination(&st("a", 99)).unwrap_err(),
            TrackerError::Unknown(Some(_))
        ));
        assert_eq!(t.unconfirmed(), 2, "nothing was committed");
        assert!(t.committed().is_none());
    }

    #[test]
    fn echoes_are_mapped_back_to_source_names() {
        let mapping = Mapping {
            namespace: crate::sync::mapping::NamespaceRule::Custom("x".into()),
            prefix: "p_".into(),
            ..Mapping::default()
        };
        let mut t = tracker(mapping);
        let f = t.from_source(st("a", 1)).unwrap();
        assert_eq!(
            f.stream.as_ref().unwrap().stream_descriptor,
            StreamDescriptor::new(Some("x"), "p_a")
        );
        let c = t.from_destination(&f).unwrap();
        assert_eq!(
            c.snapshot.to_file_value()[0]["stream"]["stream_descriptor"],
            json!({"name": "a"})
        );
    }

    #[test]
    fn a_global_state_covers_every_stream() {
        let mut t = tracker(Mapping::default());
        t.streams[0].records = 2;
        t.streams[1].records = 3;
        let g: StateMessage = serde_json::from_value(json!({"type":"GLOBAL","global":{
            "shared_state":{"lsn":1},"stream_states":[{"stream_descriptor":{"name":"a"},"stream_state":{}}]}}))
        .unwrap();
        let f = t.from_source(g).unwrap();
        assert_eq!(f.source_stats.as_ref().unwrap().record_count, Some(5.0));
        t.from_destination(&f).unwrap();
        assert_eq!((t.streams[0].committed, t.streams[1].committed), (2, 3));
    }
}

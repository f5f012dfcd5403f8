//! State messages and the committed state of a connection.
//!
//! A [`StateSnapshot`] is what a sync has committed so far, and its file form
//! is exactly what Airbyte's platform hands a source in `--state`: a JSON array
//! of state messages (one per stream for STREAM, one for GLOBAL), or the bare
//! blob for LEGACY. A state file therefore moves between Airbyte and sluice
//! unchanged.

use super::{Extra, StreamDescriptor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum StateType {
    Global,
    Stream,
    Legacy,
}

impl StateType {
    pub fn as_str(self) -> &'static str {
        match self {
            StateType::Global => "GLOBAL",
            StateType::Stream => "STREAM",
            StateType::Legacy => "LEGACY",
        }
    }
}

impl std::str::FromStr for StateType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "GLOBAL" => Ok(StateType::Global),
            "STREAM" => Ok(StateType::Stream),
            "LEGACY" => Ok(StateType::Legacy),
            other => Err(format!("`{other}` is not a state type")),
        }
    }
}

impl std::fmt::Display for StateType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StateMessage {
    /// Absent means LEGACY, as the protocol says.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<StateType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalState>,
    /// The LEGACY state blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(
        rename = "sourceStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_stats: Option<StateStats>,
    #[serde(
        rename = "destinationStats",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_stats: Option<StateStats>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamState {
    pub stream_descriptor: StreamDescriptor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_state: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GlobalState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_state: Option<Value>,
    pub stream_states: Vec<StreamState>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StateStats {
    #[serde(
        rename = "recordCount",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record_count: Option<f64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl StateMessage {
    pub fn state_type(&self) -> StateType {
        self.kind.unwrap_or(StateType::Legacy)
    }

    /// A STREAM state for one stream.
    pub fn stream(descriptor: StreamDescriptor, state: Value) -> Self {
        StateMessage {
            kind: Some(StateType::Stream),
            stream: Some(StreamState {
                stream_descriptor: descriptor,
                stream_state: Some(state),
                extra: Extra::new(),
            }),
            ..StateMessage::default()
        }
    }

    /// The same state without the per-checkpoint statistics, as it is stored.
    pub fn without_stats(&self) -> StateMessage {
        StateMessage {
            source_stats: None,
            destination_stats: None,
            ..self.clone()
        }
    }

    /// Checks the message has the body its type needs.
    pub fn validate(&self) -> Result<(), String> {
        match self.state_type() {
            StateType::Stream if self.stream.is_none() => {
                Err("a STREAM state without its `stream` field".into())
            }
            StateType::Global if self.global.is_none() => {
                Err("a GLOBAL state without its `global` field".into())
            }
            StateType::Legacy if self.data.is_none() => {
                Err("a LEGACY state without its `data` field".into())
            }
            _ => Ok(()),
        }
    }
}

/// The committed state of a connection: the latest state per stream (STREAM),
/// the latest global state (GLOBAL), or the latest blob (LEGACY).
#[derive(Debug, Clone, PartialEq)]
pub enum StateSnapshot {
    Stream(Vec<StateMessage>),
    Global(Box<StateMessage>),
    Legacy(Value),
}

/// Why a state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("state entry {index} is not a state message: {source}")]
    Entry {
        index: usize,
        source: serde_json::Error,
    },
    #[error("state entry {index}: {reason}")]
    Invalid { index: usize, reason: String },
    #[error("a state file mixes {0} and {1} states; keep one type")]
    Mixed(&'static str, &'static str),
}

impl StateSnapshot {
    /// Reads the file form (see the module docs). `null` and `[]` are no state.
    pub fn from_file_value(value: Value) -> Result<Option<StateSnapshot>, StateFileError> {
        let items = match value {
            Value::Null => return Ok(None),
            Value::Array(items) => items,
            blob => return Ok(Some(StateSnapshot::Legacy(blob))),
        };
        let mut snapshot: Option<StateSnapshot> = None;
        for (index, item) in items.into_iter().enumerate() {
            let msg: StateMessage = serde_json::from_value(item)
                .map_err(|source| StateFileError::Entry { index, source })?;
            msg.validate()
                .map_err(|reason| StateFileError::Invalid { index, reason })?;
            if let Some(s) = &snapshot {
                if s.state_type() != msg.state_type() {
                    return Err(StateFileError::Mixed(
                        s.state_type().as_str(),
                        msg.state_type().as_str(),
                    ));
                }
            }
            StateSnapshot::apply(&mut snapshot, &msg);
        }
        Ok(snapshot)
    }

    /// The file form: what Airbyte passes to a source in `--state`.
    pub fn to_file_value(&self) -> Value {
        match self {
            StateSnapshot::Stream(states) => Value::Array(
                states
                    .iter()
                    .map(|s| serde_json::to_value(s).expect("state serializes"))
                    .collect(),
            ),
            StateSnapshot::Global(g) => Value::Array(vec![
                serde_json::to_value(g.as_ref()).expect("state serializes")
            ]),
            StateSnapshot::Legacy(blob) => blob.clone(),
        }
    }

    pub fn state_type(&self) -> StateType {
        match self {
            StateSnapshot::Stream(_) => StateType::Stream,
            StateSnapshot::Global(_) => StateType::Global,
            StateSnapshot::Legacy(_) => StateType::Legacy,
        }
    }

    /// Folds one committed state message into the snapshot. A message of
    /// another type than the snapshot's replaces it (a source that migrated
    /// from LEGACY to STREAM state, for example).
    pub fn apply(snapshot: &mut Option<StateSnapshot>, msg: &StateMessage) {
        let msg = msg.without_stats();
        match (msg.state_type(), snapshot.as_mut()) {
            (StateType::Stream, Some(StateSnapshot::Stream(states))) => {
                let key = msg.stream.as_ref().map(|s| &s.stream_descriptor);
                match states
                    .iter_mut()
                    .find(|s| s.stream.as_ref().map(|s| &s.stream_descriptor) == key)
                {
                    Some(slot) => *slot = msg,
                    None => states.push(msg),
                }
            }
            (StateType::Stream, _) => *snapshot = Some(StateSnapshot::Stream(vec![msg])),
            (StateType::Global, _) => *snapshot = Some(StateSnapshot::Global(Box::new(msg))),
            (StateType::Legacy, _) => {
                *snapshot = Some(StateSnapshot::Legacy(msg.data.unwrap_or(Value::Null)))
            }
        }
    }

    /// The state of one stream, if the snapshot has one for it.
    pub fn stream_state(&self, descriptor: &StreamDescriptor) -> Option<&Value> {
        let found = match self {
            StateSnapshot::Stream(msgs) => msgs
                .iter()
                .filter_map(|m| m.stream.as_ref())
                .find(|s| &s.stream_descriptor == descriptor),
            StateSnapshot::Global(g) => g.global.as_ref().and_then(|g| {
                g.stream_states
                    .iter()
                    .find(|s| &s.stream_descriptor == descriptor)
            }),
            StateSnapshot::Legacy(_) => None,
        };
        found.and_then(|s| s.stream_state.as_ref())
    }

    /// Drops the state of the given streams (all of them for LEGACY, which
    /// cannot be split). Returns `None` when nothing is left.
    pub fn without_streams(self, streams: &[StreamDescriptor]) -> Option<StateSnapshot> {
        match self {
            StateSnapshot::Stream(msgs) => {
                let left: Vec<StateMessage> = msgs
                    .into_iter()
                    .filter(|m| {
                        m.stream
                            .as_ref()
                            .is_none_or(|s| !streams.contains(&s.stream_descriptor))
                    })
                    .collect();
                (!left.is_empty()).then_some(StateSnapshot::Stream(left))
            }
            StateSnapshot::Global(mut g) => {
                let global = g.global.as_mut()?;
                global
                    .stream_states
                    .retain(|s| !streams.contains(&s.stream_descriptor));
                if global.stream_states.is_empty() {
                    None
                } else {
                    Some(StateSnapshot::Global(g))
                }
            }
            StateSnapshot::Legacy(_) => None,
        }
    }
}

/// JSON equality that treats `1` and `1.0` as the same number: a destination
/// that re-serializes a state it echoes may change how numbers are written.
pub fn json_equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equivalent(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream_msg(name: &str, cursor: i64) -> StateMessage {
        let mut m = StateMessage::stream(StreamDescriptor::new(None, name), json!({"c": cursor}));
        m.source_stats = Some(StateStats {
            record_count: Some(5.0),
            extra: Extra::new(),
        });
        m
    }

    #[test]
    fn stream_states_keep_the_latest_per_stream_without_stats() {
        let mut snap = None;
        StateSnapshot::apply(&mut snap, &stream_msg("a", 1));
        StateSnapshot::apply(&mut snap, &stream_msg("b", 1));
        StateSnapshot::apply(&mut snap, &stream_msg("a", 2));
        let file = snap.as_ref().unwrap().to_file_value();
        assert_eq!(
            file,
            json!([
                {"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":{"c":2}}},
                {"type":"STREAM","stream":{"stream_descriptor":{"name":"b"},"stream_state":{"c":1}}}
            ])
        );
        let back = StateSnapshot::from_file_value(file).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn legacy_state_is_the_bare_blob() {
        let snap = StateSnapshot::from_file_value(json!({"users": {"cursor": 3}}))
            .unwrap()
            .unwrap();
        assert_eq!(snap, StateSnapshot::Legacy(json!({"users": {"cursor": 3}})));
        assert_eq!(snap.to_file_value(), json!({"users": {"cursor": 3}}));
    }

    #[test]
    fn global_state_is_one_message_in_an_array() {
        let file = json!([{"type":"GLOBAL","global":{"shared_state":{"lsn":9},"stream_states":[
            {"stream_descriptor":{"name":"a","namespace":"public"},"stream_state":{"c":1}}]}}]);
        let snap = StateSnapshot::from_file_value(file.clone())
            .unwrap()
            .unwrap();
        assert_eq!(snap.state_type(), StateType::Global);
        assert_eq!(
            snap.stream_state(&StreamDescriptor::new(Some("public"), "a")),
            Some(&json!({"c":1}))
        );
        assert_eq!(snap.to_file_value(), file);
    }

    #[test]
    fn bad_state_files_are_refused_with_the_entry_named() {
        let err = StateSnapshot::from_file_value(json!([{"type":"STREAM"}])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "state entry 0: a STREAM state without its `stream` field"
        );
        let mixed = json!([
            {"type":"STREAM","stream":{"stream_descriptor":{"name":"a"}}},
            {"type":"GLOBAL","global":{"stream_states":[]}}
        ]);
        assert!(matches!(
            StateSnapshot::from_file_value(mixed),
            Err(StateFileError::Mixed("STREAM", "GLOBAL"))
        ));
        assert_eq!(StateSnapshot::from_file_value(json!([])).unwrap(), None);
    }

    #[test]
    fn removing_streams_from_a_snapshot() {
        let mut snap = None;
        StateSnapshot::apply(&mut snap, &stream_msg("a", 1));
        StateSnapshot::apply(&mut snap, &stream_msg("b", 1));
        let left = snap
            .unwrap()
            .without_streams(&[StreamDescriptor::new(None, "a")])
            .unwrap();
        assert_eq!(left.to_file_value().as_array().unwrap().len(), 1);
        assert_eq!(
            left.without_streams(&[StreamDescriptor::new(None, "b")]),
            None
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equivalent(
            &json!({"n": 1, "m": [2]}),
            &json!({"m": [2.0], "n": 1.0})
        ));
        assert!(!json_equivalent(&json!({"n": 1}), &json!({"n": 2})));
        assert!(!json_equivalent(&json!({"n": 1}), &json!({"n": 1, "x": 0})));
    }
}

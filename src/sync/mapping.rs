//! Namespace and stream-prefix mapping, and field selection, as Airbyte's
//! platform applies them.
//!
//! Records and states going to the destination carry the destination's
//! names; states coming back are mapped to the source's names before they
//! are compared and committed, so the stored state is always the source's.

use crate::protocol::{is_stream_named, ConfiguredAirbyteCatalog, StateMessage, StreamDescriptor};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use crate::model::NamespaceRule;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pub namespace: NamespaceRule,
    pub prefix: String,
    /// The top-level fields records keep, by stream name (`name` or
    /// `namespace.name`); a stream not named keeps all of its fields.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Mapping {
    /// Whether names pass unchanged.
    pub fn keeps_names(&self) -> bool {
        self.prefix.is_empty() && self.namespace == NamespaceRule::Source
    }

    /// The fields a stream's records keep, when a selection names it.
    pub fn fields_of(&self, d: &StreamDescriptor) -> Option<&[String]> {
        self.fields
            .iter()
            .find(|(wanted, _)| is_stream_named(wanted, d.namespace.as_deref(), &d.name))
            .map(|(_, f)| f.as_slice())
    }

    pub fn map(&self, d: &StreamDescriptor) -> StreamDescriptor {
        StreamDescriptor {
            name: format!("{}{}", self.prefix, d.name),
            namespace: match &self.namespace {
                NamespaceRule::Source => d.namespace.clone(),
                NamespaceRule::Destination => None,
                NamespaceRule::Custom(f) => {
                    Some(f.replace("${SOURCE_NAMESPACE}", d.namespace.as_deref().unwrap_or("")))
                }
            },
        }
    }

    /// The catalog the destination is given: the same streams under their
    /// destination names. Fails when two streams would land in one place.
    pub fn destination_catalog(
        &self,
        catalog: &ConfiguredAirbyteCatalog,
    ) -> Result<ConfiguredAirbyteCatalog, String> {
        let mut seen: HashMap<StreamDescriptor, StreamDescriptor> = HashMap::new();
        let mut out = catalog.clone();
        for s in &mut out.streams {
            let original = s.stream.descriptor();
            let mapped = self.map(&original);
            if let Some(other) = seen.insert(mapped.clone(), original.clone()) {
                return Err(format!(
                    "streams `{other}` and `{original}` would both be written to `{mapped}`; \
                     use --namespace source or a --prefix to keep them apart"
                ));
            }
            s.stream.name = mapped.name;
            s.stream.namespace = mapped.namespace;
        }
        Ok(out)
    }

    /// The reverse of [`Mapping::map`] for the streams of a catalog.
    pub fn reverse(&self, catalog: &ConfiguredAirbyteCatalog) -> ReverseMap {
        ReverseMap(
            catalog
                .streams
                .iter()
                .map(|s| {
                    let d = s.stream.descriptor();
                    (self.map(&d), d)
                })
                .collect(),
        )
    }

    /// A state message with its stream descriptors mapped.
    pub fn map_state(&self, state: &StateMessage) -> StateMessage {
        let mut s = state.clone();
        for_each_descriptor(&mut s, |d| *d = self.map(d));
        s
    }
}

/// Destination names back to source names.
#[derive(Debug, Clone, Default)]
pub struct ReverseMap(HashMap<StreamDescriptor, StreamDescriptor>);

impl ReverseMap {
    /// Maps a state's descriptors back; a descriptor the destination made up
    /// is left as it is (the tracker will then not find the state).
    pub fn unmap_state(&self, state: &StateMessage) -> StateMessage {
        let mut s = state.clone();
        for_each_descriptor(&mut s, |d| {
            if let Some(original) = self.0.get(d) {
                *d = original.clone();
            }
        });
        s
    }

    pub fn unmap(&self, d: &StreamDescriptor) -> Option<&StreamDescriptor> {
        self.0.get(d)
    }
}

fn for_each_descriptor(s: &mut StateMessage, mut f: impl FnMut(&mut StreamDescriptor)) {
    if let Some(stream) = &mut s.stream {
        f(&mut stream.stream_descriptor);
    }
    if let Some(global) = &mut s.global {
        for st in &mut global.stream_states {
            f(&mut st.stream_descriptor);
        }
    }
}

/// Rewrites a RECORD line's `stream` and `namespace`, and keeps only
/// `fields` of its `data` when given; every other field (and each value
/// kept) is copied byte for byte. Appends the new line, with its newline,
/// to `out`.
pub fn rewrite_record(
    line: &[u8],
    mapped: &StreamDescriptor,
    fields: Option<&[String]>,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let top: Vec<(String, Box<RawValue>)> = parse_raw_object(line)?;
    let mut wrote_record = false;
    out.push(b'{');
    let mut first = true;
    for (key, raw) in top {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, &key)?;
        out.push(b':');
        if key == "record" && !wrote_record {
            wrote_record = true;
            let inner = parse_raw_object(raw.get().as_bytes())?;
            out.push(b'{');
            let mut first_inner = true;
            let mut put = |out: &mut Vec<u8>, k: &str, v: &[u8]| {
                if !first_inner {
                    out.push(b',');
                }
                first_inner = false;
                serde_json::to_writer(&mut *out, k).expect("a string serializes");
                out.push(b':');
                out.extend_from_slice(v);
            };
            if let Some(ns) = &mapped.namespace {
                put(out, "namespace", serde_json::to_string(ns)?.as_bytes());
            }
            put(
                out,
                "stream",
                serde_json::to_string(&mapped.name)?.as_bytes(),
            );
            for (k, v) in inner {
                match (k.as_str(), fields) {
                    ("stream" | "namespace", _) => {}
                    ("data", Some(fields)) => {
                        let mut data = Vec::with_capacity(v.get().len());
                        select(v.get().as_bytes(), fields, &mut data)?;
                        put(out, &k, &data);
                    }
                    _ => put(out, &k, v.get().as_bytes()),
                }
            }
            out.push(b'}');
        } else {
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Writes the object `data` with only the top-level `fields`, each value
/// byte for byte.
fn select(data: &[u8], fields: &[String], out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.push(b'{');
    let mut first = true;
    for (k, v) in parse_raw_object(data)? {
        if fields.contains(&k) {
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, &k)?;
            out.push(b':');
            out.extend_from_slice(v.get().as_bytes());
        }
    }
    out.push(b'}');
    Ok(())
}

/// An object's fields as raw JSON, in order.
fn parse_raw_object(bytes: &[u8]) -> Result<Vec<(String, Box<RawValue>)>, serde_json::Error> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut v = Vec::new();
            while let Some((k, raw)) = map.next_entry::<String, Box<RawValue>>()? {
                v.push((k, raw));
            }
            Ok(v)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::Deserializer::deserialize_map(&mut de, Fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope;
    use serde_json::json;

    fn sd(ns: Option<&str>, name: &str) -> StreamDescriptor {
        StreamDescriptor::new(ns, name)
    }

    #[test]
    fn rules_map_names() {
        let m = Mapping {
            namespace: "custom:raw_${SOURCE_NAMESPACE}".parse().unwrap(),
            prefix: "src_".into(),
            ..Mapping::default()
        };
        assert_eq!(
            m.map(&sd(Some("public"), "users")),
            sd(Some("raw_public"), "src_users")
        );
        let m = Mapping {
            namespace: NamespaceRule::Destination,
            ..Mapping::default()
        };
        assert_eq!(m.map(&sd(Some("public"), "users")), sd(None, "users"));
        assert!("custom:".parse::<NamespaceRule>().is_err());
        assert!(Mapping::default().keeps_names());
    }

    #[test]
    fn rewrite_keeps_data_and_unknown_fields() {
        let line = br#"{"type":"RECORD","record":{"namespace":"a","stream":"s","data":{"x": [1, 2.50]},"emitted_at":5,"custom":true},"extra":1}"#;
        let mut out = Vec::new();
        rewrite_record(line, &sd(Some("b"), "p_s"), None, &mut out).unwrap();
        let env = envelope::scan(out.trim_ascii_end()).unwrap();
        let r = env.record.unwrap();
        assert_eq!((r.namespace.as_deref(), &*r.stream), (Some("b"), "p_s"));
        assert_eq!(r.data, br#"{"x": [1, 2.50]}"#, "data is byte for byte");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["record"]["custom"], json!(true));
        assert_eq!(v["extra"], json!(1));
        // Mapping to no namespace drops the field.
        let mut out = Vec::new();
        rewrite_record(line, &sd(None, "s"), None, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["record"].get("namespace").is_none());
    }

    #[test]
    fn selected_fields_are_kept_and_others_dropped() {
        let line = br#"{"type":"RECORD","record":{"stream":"s","data":{"id": 1,"bio":"long","meta":{"a": 1.50},"email":null},"emitted_at":5}}"#;
        let mut out = Vec::new();
        let fields = ["id".to_string(), "meta".into(), "email".into()];
        rewrite_record(line, &sd(None, "s"), Some(&fields), &mut out).unwrap();
        let env = envelope::scan(out.trim_ascii_end()).unwrap();
        let r = env.record.unwrap();
        assert_eq!(r.data, br#"{"id":1,"meta":{"a": 1.50},"email":null}"#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["record"]["emitted_at"], json!(5));
        let m = Mapping {
            fields: BTreeMap::from([("public.s".to_string(), fields.to_vec())]),
            ..Mapping::default()
        };
        assert_eq!(m.fields_of(&sd(Some("public"), "s")), Some(&fields[..]));
        assert_eq!(m.fields_of(&sd(Some("other"), "s")), None);
        assert!(m.keeps_names());
    }

    #[test]
    fn states_map_and_unmap() {
        let m = Mapping {
            namespace: NamespaceRule::Custom("dst".into()),
            prefix: "p_".into(),
            ..Mapping::default()
        };
        let cat: ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams":[
            {"stream":{"name":"users","namespace":"src","json_schema":{},"supported_sync_modes":["full_refresh"]},
             "sync_mode":"full_refresh","destination_sync_mode":"append"}]})).unwrap();
        let state = StateMessage::stream(sd(Some("src"), "users"), json!({"c": 1}));
        let mapped = m.map_state(&state);
        assert_eq!(
            mapped.stream.as_ref().unwrap().stream_descriptor,
            sd(Some("dst"), "p_users")
        );
        assert_eq!(m.reverse(&cat).unmap_state(&mapped), state);
        let dest = m.destination_catalog(&cat).unwrap();
        assert_eq!(
            dest.streams[0].stream.descriptor(),
            sd(Some("dst"), "p_users")
        );
    }

    #[test]
    fn collisions_are_refused() {
        let cat: ConfiguredAirbyteCatalog = serde_json::from_value(json!({"streams":[
            {"stream":{"name":"t","namespace":"a","json_schema":{},"supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh","destination_sync_mode":"append"},
            {"stream":{"name":"t","namespace":"b","json_schema":{},"supported_sync_modes":["full_refresh"]},"sync_mode":"full_refresh","destination_sync_mode":"append"}]})).unwrap();
        let m = Mapping {
            namespace: NamespaceRule::Destination,
            ..Mapping::default()
        };
        let err = m.destination_catalog(&cat).unwrap_err();
        assert!(err.contains("would both be written to `t`"), "{err}");
    }
}

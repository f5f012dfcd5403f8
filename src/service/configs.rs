//! What is done with a connector's updated config (a CONTROL message):
//! merged into the config it runs with, checked against its spec, its
//! secrets added to the log's, then kept where that config lives (the job
//! store, or the caller's file by way of an event). One merge for every
//! kind of sync.

use crate::connector::config;
use crate::connector::Role;
use crate::protocol::ConnectorSpecification;
use crate::sync::log::AttemptLog;
use crate::sync::ConfigSink;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Keeps a whole, checked config; says why not when it cannot.
pub type Keep = Box<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// One side's config: its spec, what it is now, and where it is kept.
pub struct Slot {
    spec: ConnectorSpecification,
    current: Mutex<Value>,
    keep: Keep,
}

impl Slot {
    pub fn new(spec: ConnectorSpecification, current: Value, keep: Keep) -> Self {
        Slot {
            spec,
            current: Mutex::new(current),
            keep,
        }
    }
}

/// The config updates of one sync.
pub struct ConfigUpdates {
    pub source: Slot,
    pub destination: Slot,
    pub log: Arc<AttemptLog>,
}

impl ConfigSink for ConfigUpdates {
    fn update(&self, role: Role, update: &Value) -> Result<(), String> {
        let slot = match role {
            Role::Source => &self.source,
            Role::Destination => &self.destination,
        };
        let schema = &slot.spec.connection_specification;
        let mut current = slot.current.lock().expect("config lock");
        let mut next = current.clone();
        if let (Some(obj), Some(upd)) = (next.as_object_mut(), update.as_object()) {
            for (k, v) in upd {
                obj.insert(k.clone(), v.clone());
            }
        }
        self.log.add_secrets(schema, &next);
        config::validate(schema, &next, "the updated config").map_err(|e| e.to_string())?;
        (slot.keep)(&next)?;
        *current = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::config::Secrets;
    use serde_json::json;

    fn spec() -> ConnectorSpecification {
        serde_json::from_value(json!({"connectionSpecification": {
            "type": "object", "required": ["host"],
            "properties": {"host": {"type": "string"},
                           "token": {"type": "string", "airbyte_secret": true}}
        }}))
        .unwrap()
    }

    #[test]
    fn updates_are_merged_checked_and_kept_with_their_secrets() {
        let kept = Arc::new(Mutex::new(Vec::<Value>::new()));
        let log = Arc::new(AttemptLog::memory(Secrets::default(), None));
        let into = kept.clone();
        let updates = ConfigUpdates {
            source: Slot::new(
                spec(),
                json!({"host": "h", "token": "old"}),
                Box::new(move |v| {
                    into.lock().unwrap().push(v.clone());
                    Ok(())
                }),
            ),
            destination: Slot::new(spec(), json!({"host": "d"}), Box::new(|_| Err("no".into()))),
            log: log.clone(),
        };
        updates
            .update(Role::Source, &json!({"token": "n3w-t0ken"}))
            .unwrap();
        assert_eq!(
            kept.lock().unwrap().as_slice(),
            [json!({"host": "h", "token": "n3w-t0ken"})]
        );
        assert_eq!(log.redact("got n3w-t0ken"), "got **********");
        let e = updates
            .update(Role::Source, &json!({"host": 5}))
            .unwrap_err();
        assert!(e.contains("the updated config"), "{e}");
        assert_eq!(kept.lock().unwrap().len(), 1);
        assert_eq!(
            updates.update(Role::Destination, &json!({"host": "x"})),
            Err("no".into())
        );
    }
}

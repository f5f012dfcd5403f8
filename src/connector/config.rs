//! Connector configs: validation against a connector's spec, and secrets.
//!
//! Spec fields marked `airbyte_secret` are secrets. Their values must never
//! reach a log, an error message or an API answer: [`Secrets`] finds them in
//! a config and redacts them from any text, and [`mask`] replaces them in a
//! config shown to the user.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// What secrets are replaced with.
pub const MASK: &str = "**********";

/// One reason a config does not match its spec, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON Pointer to the field (`/credentials/password`), `` for the root.
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} does not match the connector's spec:\n{}", list(.problems))]
    Invalid {
        what: String,
        problems: Vec<Problem>,
    },
    #[error("the connector's spec is not a valid JSON Schema: {0}")]
    BadSpec(String),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            if p.field.is_empty() {
                format!("  - {}", p.message)
            } else {
                format!("  - `{}`: {}", p.field, p.message)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validates `config` against a spec's `connectionSpecification`. `what`
/// names the config in the error ("source config").
pub fn validate(schema: &Value, config: &Value, what: &str) -> Result<(), ConfigError> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| ConfigError::BadSpec(e.to_string()))?;
    let secret_paths = secret_pointers(schema, config);
    let mut problems: Vec<Problem> = validator
        .iter_errors(config)
        .map(|e| {
            let field = e.instance_path().as_str().to_string();
            // A composite value may contain secrets; a secret field is one.
            let touches_secret = secret_paths
                .iter()
                .any(|p| p.starts_with(&field) || field.starts_with(p.as_str()));
            let message = if touches_secret || e.instance().is_object() || e.instance().is_array() {
                e.masked_with("the value").to_string()
            } else {
                e.to_string()
            };
            Problem { field, message }
        })
        .collect();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            what: what.to_string(),
            problems,
        })
    }
}

/// The JSON Pointers of the secret values in `config`, following the
/// schema through `properties`, `items` and `oneOf`/`anyOf`/`allOf`.
pub fn secret_pointers(schema: &Value, config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, config, String::new(), &mut |path, _| out.push(path));
    out
}

fn walk(schema: &Value, value: &Value, path: String, found: &mut dyn FnMut(String, &Value)) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    if schema.get("airbyte_secret").and_then(Value::as_bool) == Some(true) && !value.is_null() {
        found(path, value);
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            for branch in branches {
                walk(branch, value, path.clone(), found);
            }
        }
    }
    match value {
        Value::Object(fields) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if let Some(v) = fields.get(name) {
                        walk(sub, v, format!("{path}/{}", escape_pointer(name)), found);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(item_schema, v, format!("{path}/{i}"), found);
                }
            }
        }
        _ => {}
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A config with its secrets replaced by [`MASK`].
pub fn mask(schema: &Value, config: &Value) -> Value {
    let mut masked = config.clone();
    for pointer in secret_pointers(schema, config) {
        if let Some(v) = masked.pointer_mut(&pointer) {
            *v = Value::String(MASK.to_string());
        }
    }
    masked
}

/// A config with the values at `pointers` (from [`secret_pointers`])
/// replaced by [`MASK`]: masking without the spec at hand.
pub fn mask_pointers(config: &Value, pointers: &[String]) -> Value {
    let mut masked = config.clone();
    for pointer in pointers {
        if let Some(v) = masked.pointer_mut(pointer) {
            *v = Value::String(MASK.to_string());
        }
    }
    masked
}

/// Puts back secrets a user left masked: a field whose new value is the mask
/// keeps its old value. Lets `get` output be edited and applied again.
pub fn unmask(new: &Value, old: &Value) -> Value {
    match (new, old) {
        (Value::String(s), old) if s == MASK => old.clone(),
        (Value::Object(n), Value::Object(o)) => Value::Object(
            n.iter()
                .map(|(k, v)| {
                    let merged = match o.get(k) {
                        Some(ov) => unmask(v, ov),
                        None => v.clone(),
                    };
                    (k.clone(), merged)
                })
                .collect::<Map<String, Value>>(),
        ),
        _ => new.clone(),
    }
}

/// The secret values of one or more configs, to redact from text.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Collects the secrets of `config` under `schema`.
    pub fn from_config(schema: &Value, config: &Value) -> Self {
        let mut s = Secrets::default();
        s.add_config(schema, config);
        s
    }

    pub fn add_config(&mut self, schema: &Value, config: &Value) {
        walk(schema, config, String::new(), &mut |_, v| {
            collect_strings(v, &mut self.values)
        });
        // Longest first, so a secret that contains another is redacted whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
    }

    pub fn add(&mut self, value: &str) {
        if !value.is_empty() {
            self.values.push(value.to_string());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
            self.values.dedup();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
            // JSON-escaped forms appear in messages that quote a config.
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = &escaped[1..escaped.len().saturating_sub(1)];
            if escaped != secret && !escaped.is_empty() && out.contains(escaped) {
                out = Cow::Owned(out.replace(escaped, MASK));
            }
        }
        out
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(fields) => fields.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["host", "port"],
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer"},
                "password": {"type": "string", "airbyte_secret": true},
                "auth": {"oneOf": [
                    {"type": "object", "properties": {"method": {"const": "key"}, "api_key": {"type": "string", "airbyte_secret": true}}},
                    {"type": "object", "properties": {"method": {"const": "none"}}}
                ]},
                "tokens": {"type": "array", "items": {"type": "string", "airbyte_secret": true}}
            }
        })
    }

    #[test]
    fn validation_names_the_field() {
        let err = validate(
            &schema(),
            &json!({"host": "h", "port": "x"}),
            "source config",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("source config does not match the connector's spec:"));
        assert!(
            text.contains("`/port`: \"x\" is not of type \"integer\""),
            "{text}"
        );
        let err = validate(&schema(), &json!({"host": "h"}), "source config").unwrap_err();
        assert!(err.to_string().contains("\"port\" is a required property"));
    }

    #[test]
    fn validation_never_shows_a_secret() {
        let s = json!({"type":"object","properties":{"password":{"type":"string","minLength":50,"airbyte_secret":true}}});
        let err = validate(&s, &json!({"password": "hunter2"}), "config").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("`/password`"), "{text}");
    }

    #[test]
    fn secrets_are_found_through_one_of_and_arrays() {
        let config = json!({"host": "h", "port": 1, "password": "pw-1",
            "auth": {"method": "key", "api_key": "key-2"}, "tokens": ["t-3", "t-4"]});
        let s = Secrets::from_config(&schema(), &config);
        let text = "connecting with pw-1 and key-2, tokens t-3,t-4 to h";
        assert_eq!(
            s.redact(text),
            "connecting with ********** and **********, tokens **********,********** to h"
        );
        assert_eq!(
            mask_pointers(&config, &secret_pointers(&schema(), &config)),
            mask(&schema(), &config)
        );
        assert_eq!(
            mask(&schema(), &config),
            json!({"host": "h", "port": 1, "password": MASK,
                "auth": {"method": "key", "api_key": MASK}, "tokens": [MASK, MASK]})
        );
    }

    #[test]
    fn json_escaped_secrets_are_redacted_too() {
        let mut s = Secrets::default();
        s.add("p\"w");
        assert_eq!(
            s.redact(r#"{"password":"p\"w"}"#),
            r#"{"password":"**********"}"#
        );
    }

    #[test]
    fn unmask_keeps_old_secrets_where_the_mask_stands() {
        let old = json!({"password": "real", "host": "a"});
        let new = json!({"password": MASK, "host": "b"});
        assert_eq!(unmask(&new, &old), json!({"password": "real", "host": "b"}));
    }
}

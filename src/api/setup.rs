//! Setup files: the whole setup (sources, destinations, connections) as
//! one YAML document. `${VAR}` in it is read from the environment of
//! whoever applies it, before it is sent: a daemon never reads a client's
//! environment.

use super::{ApiError, Setup};
use serde_json::Value;

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Setup {
    /// Parses a setup file, replacing `${VAR}` in its strings with `env(VAR)`
    /// (`$${VAR}` stays `${VAR}`). `file` names it in errors.
    pub fn parse(
        text: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Setup, ApiError> {
        let raw: Value = serde_norway::from_str(text)
            .map_err(|e| ApiError::user(format!("{file} is not valid YAML: {e}")))?;
        let raw = if raw.is_null() { empty_object() } else { raw };
        let resolved = interpolate(raw, &env, file)?;
        serde_path_to_error::deserialize(resolved).map_err(|e| {
            // A wrong value is named by where it is; a wrong shape at the
            // top is not a setup at all.
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.contains('.') {
                ApiError::user(format!("{file}: {path}: {inner}"))
            } else {
                ApiError::user(format!("{file} is not a sluice setup: {inner}")).hint(
                    "it has `sources:`, `destinations:` and `connections:`, each a map by name; `sluice export` writes one",
                )
            }
        })
    }

    pub fn to_yaml(&self) -> Result<String, ApiError> {
        serde_norway::to_string(self).map_err(|e| ApiError::internal(e.to_string()))
    }
}

fn interpolate(
    v: Value,
    env: &impl Fn(&str) -> Option<String>,
    file: &str,
) -> Result<Value, ApiError> {
    Ok(match v {
        Value::String(s) => Value::String(substitute(&s, env, file)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| interpolate(i, env, file))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, interpolate(v, env, file)?)))
                .collect::<Result<_, ApiError>>()?,
        ),
        other => other,
    })
}

fn substitute(
    s: &str,
    env: &impl Fn(&str) -> Option<String>,
    file: &str,
) -> Result<String, ApiError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(ApiError::user(format!(
                    "{file}: `{s}` has a `${{` without its `}}`"
                )));
            };
            let name = &tail[..end];
            let value = env(name).ok_or_else(|| {
                ApiError::user(format!("{file} uses ${{{name}}}, which is not set"))
                    .hint(format!("export {name}=... before running sluice"))
            })?;
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_come_from_the_environment() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        let text = "sources:\n  a:\n    connector: sample\n    config:\n      token: ${TOKEN}\n      note: \"cost $5, literal $${TOKEN}\"\n";
        let s = Setup::parse(text, "sluice.yaml", env).unwrap();
        assert_eq!(s.sources["a"].config["token"], "s3cret");
        assert_eq!(s.sources["a"].config["note"], "cost $5, literal ${TOKEN}");
        let e =
            Setup::parse("sources:\n  a:\n    connector: ${NOPE}\n", "f.yaml", env).unwrap_err();
        assert_eq!(e.message, "f.yaml uses ${NOPE}, which is not set");
    }

    #[test]
    fn modes_and_policies_take_either_spelling() {
        let text = "connections:\n  c:\n    source: a\n    destination: d\n    sync_mode: full-refresh\n    destination_sync_mode: append-dedup\n    schema_change: propagate-fully\n";
        let s = Setup::parse(text, "f.yaml", |_| None).unwrap();
        let c = &s.connections["c"];
        assert_eq!(c.sync_mode, Some(crate::api::SyncMode::FullRefresh));
        assert_eq!(
            c.destination_sync_mode,
            Some(crate::api::DestinationSyncMode::AppendDedup)
        );
        assert_eq!(
            c.schema_change,
            crate::api::SchemaChangePolicy::PropagateFully
        );
        let yaml = s.to_yaml().unwrap();
        assert!(yaml.contains("sync_mode: full_refresh"), "{yaml}");
        assert!(
            yaml.contains("destination_sync_mode: append_dedup"),
            "{yaml}"
        );
        assert!(yaml.contains("schema_change: propagate_fully"), "{yaml}");
    }

    #[test]
    fn unknown_keys_are_refused_and_yaml_round_trips() {
        let e = Setup::parse("sourcez: {}\n", "f.yaml", |_| None).unwrap_err();
        assert!(
            e.message.starts_with("f.yaml is not a sluice setup"),
            "{}",
            e.message
        );
        // A wrong value deeper in is named by its place.
        let e = Setup::parse(
            "connections:\n  c1:\n    source: a\n    destination: d\n    schedule: cron:0 25 * * *\n",
            "f.yaml",
            |_| None,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with(
                "f.yaml: connections.c1.schedule: schedule `cron:0 25 * * *`: hour 25"
            ),
            "{}",
            e.message
        );
        assert_eq!(e.hint, None);
        let text = "sources:\n  a:\n    connector: sample\n    config:\n      count: 3\ndestinations: {}\nconnections:\n  c:\n    source: a\n    destination: d\n    streams:\n    - users\n    sync_mode: incremental\n    schedule: every:1h\n    namespace: custom:raw\n    status: active\n    schema_change: propagate_fully\n";
        let s = Setup::parse(text, "f.yaml", |_| None).unwrap();
        assert_eq!(s.connections["c"].namespace.to_string(), "custom:raw");
        let again = Setup::parse(&s.to_yaml().unwrap(), "f.yaml", |_| None).unwrap();
        assert_eq!(again, s);
        assert_eq!(
            Setup::parse("", "f.yaml", |_| None).unwrap(),
            Setup::default()
        );
    }
}

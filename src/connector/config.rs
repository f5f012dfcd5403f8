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
///
/// How far a secret is looked for depends on how likely its text is to turn
/// up by chance: masking a word wherever it stands would garble messages
/// and tell a reader which word the secret is.
/// - A secret of 8 or more characters that mixes kinds of characters (or
///   of 12 or more of one kind) is masked wherever it occurs, even inside
///   other text (a token in a URL path or a header).
/// - A shorter one of mixed kinds (4 to 7 characters) is masked as a whole
///   token: quoted, or between spaces or punctuation.
/// - Any other (1 to 3 characters, or a plain word or number such as
///   `password`, `sluice`, `1234`), and any secret that is also a value of
///   a config that is not secret (a password equal to the username), is
///   masked only where the text says it is a value: after a secret's key
///   (`password=S`, `"password": "S"`, `password: S`, `--password S`), or as
///   a URL's password (`postgres://user:S@host`).
///
/// Each secret is also looked for JSON-escaped and percent-encoded.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
    /// Values of the configs that are not secret (a username, a host).
    plain: Vec<String>,
    /// Field names secrets are kept under, lowercase, besides [`SECRET_KEYS`].
    keys: Vec<String>,
    /// What [`Secrets::redact`] looks for, longest first.
    forms: Vec<Form>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("values", &self.values.len())
            .finish_non_exhaustive()
    }
}

/// Names that mark the value after them as a secret (`db_password=...`,
/// `PGPASSWORD=...`, `"access_token": ...`): a key ending with one of them.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "private_key",
    "credential",
    "credentials",
    "authorization",
];

/// One text to look for, and where it counts.
#[derive(Clone)]
struct Form {
    text: String,
    finder: memchr::memmem::Finder<'static>,
    reach: Reach,
}

/// Where a secret's text is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Where the text says it is a value.
    Values,
    /// Also as a whole token.
    Tokens,
    /// Anywhere.
    Everywhere,
}

impl Secrets {
    /// Collects the secrets of `config` under `schema`.
    pub fn from_config(schema: &Value, config: &Value) -> Self {
        let mut s = Secrets::default();
        s.add_config(schema, config);
        s
    }

    pub fn add_config(&mut self, schema: &Value, config: &Value) {
        let mut pointers = Vec::new();
        walk(schema, config, String::new(), &mut |path, v| {
            collect_strings(v, &mut self.values);
            pointers.push(path);
        });
        for pointer in &pointers {
            let field = pointer
                .rsplit('/')
                .find(|seg| !seg.is_empty() && !seg.bytes().all(|b| b.is_ascii_digit()));
            if let Some(field) = field {
                let field = field.replace("~1", "/").replace("~0", "~").to_lowercase();
                if !self.keys.contains(&field) {
                    self.keys.push(field);
                }
            }
        }
        collect_plain(config, "", &pointers, &mut self.plain);
        self.rebuild();
    }

    pub fn add(&mut self, value: &str) {
        if !value.is_empty() {
            self.values.push(value.to_string());
            self.rebuild();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Works out what to look for from the secrets, their keys and the
    /// plain values known so far.
    fn rebuild(&mut self) {
        // The password in a connection URL is a secret of its own, and its
        // user is not one.
        let mut values = self.values.clone();
        for v in &self.values {
            if let Some((user, password)) = url_credentials(v) {
                values.extend([password.to_string(), percent_decode(password)]);
                if !user.is_empty() && !self.plain.iter().any(|p| p == user) {
                    self.plain.push(user.to_string());
                }
            }
        }
        values.retain(|v| !v.is_empty());
        values.sort();
        values.dedup();
        let mut forms: Vec<Form> = Vec::new();
        for v in &values {
            let reach = reach_of(v, &self.plain);
            let escaped = serde_json::to_string(v).unwrap_or_default();
            let escaped = escaped[1..escaped.len().saturating_sub(1)].to_string();
            for text in [v.clone(), escaped, percent_encode(v)] {
                if !text.is_empty() && !forms.iter().any(|f| f.text == text) {
                    let finder = memchr::memmem::Finder::new(text.as_bytes()).into_owned();
                    forms.push(Form {
                        text,
                        finder,
                        reach,
                    });
                }
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.text.len()));
        self.forms = forms;
    }

    /// `text` with every secret that stands where its reach says replaced
    /// by [`MASK`]. Runs on every log line: it allocates only when it masks.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for form in &self.forms {
            for i in form.finder.find_iter(bytes) {
                let j = i + form.text.len();
                if spans.iter().any(|&(a, b)| i < b && a < j) {
                    continue;
                }
                let masked = match form.reach {
                    Reach::Everywhere => true,
                    Reach::Tokens => whole_token(bytes, i, j) || self.stands_as_value(bytes, i, j),
                    Reach::Values => self.stands_as_value(bytes, i, j),
                };
                if masked {
                    spans.push((i, j));
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len() + spans.len() * MASK.len());
        let mut at = 0;
        for (i, j) in spans {
            out.push_str(&text[at..i]);
            out.push_str(MASK);
            at = j;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Whether `text[i..j]` is written as a value: a URL's password, or
    /// after a key that names a secret.
    fn stands_as_value(&self, text: &[u8], i: usize, j: usize) -> bool {
        let next = text.get(j).copied();
        if i > 0 && text[i - 1] == b':' && next == Some(b'@') {
            return url_password_at(&text[..i - 1]);
        }
        if !next.is_none_or(ends_value) {
            return false;
        }
        // Back over the value's opening quote (maybe JSON-escaped), then the
        // separator, then the key's closing quote, to the key.
        let mut k = i;
        let mut quoted = false;
        while k > 0 && i - k < 3 && matches!(text[k - 1], b'"' | b'\'' | b'\\') {
            quoted = true;
            k -= 1;
        }
        let skip_blanks = |mut k: usize| {
            while k > 0 && matches!(text[k - 1], b' ' | b'\t') {
                k -= 1;
            }
            k
        };
        k = skip_blanks(k);
        let separated = k > 0 && matches!(text[k - 1], b'=' | b':');
        if separated {
            k = skip_blanks(k - 1);
            while k > 0 && matches!(text[k - 1], b'"' | b'\'' | b'\\') {
                k -= 1;
            }
        } else if k == i {
            return false;
        }
        let end = k;
        while k > 0
            && end - k < 64
            && (text[k - 1].is_ascii_alphanumeric() || matches!(text[k - 1], b'_' | b'-' | b'.'))
        {
            k -= 1;
        }
        let key = &text[k..end];
        // `--password S` and `PASSWORD 'S'` have no separator.
        let flag = key.starts_with(b"-");
        if key.is_empty() || !(separated || quoted || flag) {
            return false;
        }
        let key = String::from_utf8_lossy(key).to_lowercase();
        SECRET_KEYS.iter().any(|name| key.ends_with(name))
            || self.keys.iter().any(|name| key.ends_with(name.as_str()))
    }
}

/// How far to look for a secret: see [`Secrets`]. Masking every mention of
/// a plain value (the username) would tell that the secret equals it, and
/// masking a short token inside one (`db1x` of `db1x.internal`) that the
/// secret is that part of it.
fn reach_of(secret: &str, plain: &[String]) -> Reach {
    if plain.iter().any(|p| p == secret) {
        return Reach::Values;
    }
    let n = secret.chars().count();
    let one_kind =
        secret.chars().all(char::is_alphabetic) || secret.chars().all(|c| c.is_ascii_digit());
    let inside_plain = plain.iter().any(|p| p.contains(secret));
    match (one_kind, n) {
        (true, 12..) | (false, 8..) => Reach::Everywhere,
        // A weak password (`letmein`, `qwerty`, `123456`) is still never
        // printed as a word of its own; a word that messages use (`data`,
        // `password`, `sluice`) is masked only as a value, or masking it
        // would say which word it is.
        (true, 4..) if !inside_plain && !is_common_word(secret) => Reach::Tokens,
        (false, 4..) if !inside_plain => Reach::Tokens,
        _ => Reach::Values,
    }
}

/// Words that messages are made of: a secret that is one of them is masked
/// only where it stands as a value.
fn is_common_word(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "access",
        "account",
        "after",
        "airbyte",
        "all",
        "already",
        "and",
        "are",
        "auth",
        "authentication",
        "bad",
        "batch",
        "before",
        "bytes",
        "cannot",
        "catalog",
        "check",
        "column",
        "columns",
        "config",
        "connect",
        "connection",
        "connector",
        "could",
        "cursor",
        "data",
        "database",
        "default",
        "denied",
        "destination",
        "does",
        "done",
        "error",
        "exists",
        "failed",
        "false",
        "field",
        "file",
        "files",
        "find",
        "for",
        "found",
        "from",
        "has",
        "have",
        "host",
        "info",
        "into",
        "invalid",
        "job",
        "key",
        "line",
        "local",
        "log",
        "login",
        "main",
        "message",
        "missing",
        "mode",
        "name",
        "new",
        "none",
        "not",
        "null",
        "off",
        "old",
        "only",
        "open",
        "password",
        "path",
        "port",
        "public",
        "read",
        "reading",
        "record",
        "records",
        "refused",
        "request",
        "required",
        "row",
        "rows",
        "run",
        "running",
        "schema",
        "secret",
        "server",
        "service",
        "shard",
        "sluice",
        "source",
        "spec",
        "started",
        "state",
        "status",
        "stopped",
        "stream",
        "streams",
        "sync",
        "table",
        "tables",
        "test",
        "that",
        "the",
        "this",
        "time",
        "timeout",
        "token",
        "true",
        "type",
        "unknown",
        "user",
        "users",
        "value",
        "version",
        "was",
        "when",
        "with",
        "write",
        "writing",
    ];
    let lower = word.to_lowercase();
    WORDS.contains(&lower.as_str())
}

/// A byte that can be part of a word (non-ASCII ones may be letters).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn whole_token(text: &[u8], i: usize, j: usize) -> bool {
    (i == 0 || !is_word(text[i - 1])) && text.get(j).is_none_or(|&b| !is_word(b))
}

/// Whether a byte can end a value: a blank, a quote, punctuation.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace() || b"\"'\\,;&)}]>`|.".contains(&b)
}

/// Whether `before` ends with `scheme://user`: what comes before a URL's
/// `:password@`.
fn url_password_at(before: &[u8]) -> bool {
    let user_start = before
        .iter()
        .rposition(|&b| b.is_ascii_whitespace() || b"/@:\"'".contains(&b))
        .map_or(0, |p| p + 1);
    before[..user_start].ends_with(b"://")
}

/// The user and password of `scheme://user:password@host...`.
fn url_credentials(url: &str) -> Option<(&str, &str)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':')
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// The values of `config` outside the `secret` pointers, as text.
fn collect_plain(config: &Value, path: &str, secret: &[String], out: &mut Vec<String>) {
    if secret.iter().any(|p| p == path) {
        return;
    }
    match config {
        Value::Object(fields) => {
            for (k, v) in fields {
                collect_plain(v, &format!("{path}/{}", escape_pointer(k)), secret, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_plain(v, &format!("{path}/{i}"), secret, out);
            }
        }
        Value::String(s) if !s.is_empty() && !out.contains(s) => out.push(s.clone()),
        Value::Number(n) if !out.contains(&n.to_string()) => out.push(n.to_string()),
        _ => {}
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

/// Calls `visit` with each string of `config` that its spec marks as a
/// path (`"sluice_path": true`), and the field's name (`a.b[0]`), through
/// properties, `oneOf` branches and array items.
pub fn visit_paths(schema: &Value, config: &mut Value, visit: &mut dyn FnMut(&str, &mut String)) {
    walk_paths(schema, config, String::new(), visit);
}

fn walk_paths(
    schema: &Value,
    value: &mut Value,
    at: String,
    visit: &mut dyn FnMut(&str, &mut String),
) {
    match value {
        Value::String(text) if schema.get("sluice_path") == Some(&Value::Bool(true)) => {
            visit(&at, text)
        }
        Value::Object(fields) => {
            for (name, v) in fields.iter_mut() {
                let field = format!("{at}{}{name}", if at.is_empty() { "" } else { "." });
                if let Some(sub) = schema.get("properties").and_then(|p| p.get(name)) {
                    walk_paths(sub, v, field.clone(), visit);
                }
                for branch in schema
                    .get("oneOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(sub) = branch.get("properties").and_then(|p| p.get(name)) {
                        walk_paths(sub, v, field.clone(), visit);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    walk_paths(sub, v, format!("{at}[{i}]"), visit);
                }
            }
        }
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
        // Tokens of 3 characters are masked only where they stand as values.
        assert_eq!(
            s.redact(text),
            "connecting with ********** and **********, tokens t-3,t-4 to h"
        );
        assert_eq!(
            s.redact(r#"{"tokens": "t-3", "token": "t-4"}"#),
            r#"{"tokens": "**********", "token": "**********"}"#
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

    /// The secrets of a database config with this user and password.
    fn login(user: &str, password: &str) -> Secrets {
        let schema = json!({"type": "object", "properties": {
            "host": {"type": "string"}, "username": {"type": "string"},
            "password": {"type": "string", "airbyte_secret": true}}});
        Secrets::from_config(
            &schema,
            &json!({"host": "db.example.com", "username": user, "password": password}),
        )
    }

    /// Each message, redacted, against what it must become.
    #[track_caller]
    fn redacts(s: &Secrets, cases: &[(&str, &str)]) {
        for (text, want) in cases {
            assert_eq!(s.redact(text), *want, "redacting {text:?}");
        }
    }

    /// Each message, which must stay as it is.
    #[track_caller]
    fn keeps(s: &Secrets, texts: &[&str]) {
        for text in texts {
            assert_eq!(s.redact(text), *text);
        }
    }

    /// Messages where the secret stands as a value, whatever its length.
    fn value_cases(user: &str, pw: &str) -> Vec<(String, String)> {
        let m = MASK;
        [
            (format!("connecting to postgres://{user}:{pw}@db.example.com:5432/app"),
             format!("connecting to postgres://{user}:{m}@db.example.com:5432/app")),
            (format!(r#"config: {{"host": "db.example.com", "username": "{user}", "password": "{pw}"}}"#),
             format!(r#"config: {{"host": "db.example.com", "username": "{user}", "password": "{m}"}}"#)),
            (format!(r#"{{\"password\":\"{pw}\"}}"#), format!(r#"{{\"password\":\"{m}\"}}"#)),
            (format!("password: {pw}\nusername: {user}"), format!("password: {m}\nusername: {user}")),
            (format!("psql host=db user={user} password={pw} dbname=app"),
             format!("psql host=db user={user} password={m} dbname=app")),
            (format!("PGPASSWORD='{pw}' psql -U {user}"), format!("PGPASSWORD='{m}' psql -U {user}")),
            (format!("run --password {pw} --user {user}"), format!("run --password {m} --user {user}")),
            (format!("ALTER ROLE {user} PASSWORD '{pw}'"), format!("ALTER ROLE {user} PASSWORD '{m}'")),
        ]
        .into_iter()
        .collect()
    }

    #[track_caller]
    fn redacts_values(s: &Secrets, user: &str, pw: &str) {
        for (text, want) in value_cases(user, pw) {
            assert_eq!(s.redact(&text), want, "redacting {text:?}");
        }
    }

    #[test]
    fn a_one_or_two_character_secret_is_masked_only_as_a_value() {
        let s = login("alice", "p");
        redacts_values(&s, "alice", "p");
        keeps(
            &s,
            &[
                r#"password authentication failed for user "alice" on pipeline p"#,
                "option -p 5432 is deprecated",
                // Not a URL's password: a host and port.
                "http://p:80@x",
            ],
        );
        let s = login("alice", "o5");
        redacts_values(&s, "alice", "o5");
        keeps(
            &s,
            &["the o5 shard of region o5 is down", "user=alice pw=o5x"],
        );
    }

    #[test]
    fn a_four_character_secret_is_masked_as_a_token_unless_it_is_a_plain_word() {
        let s = login("alice", "p4s!");
        redacts_values(&s, "alice", "p4s!");
        redacts(
            &s,
            &[
                ("login with p4s! failed", "login with ********** failed"),
                ("value 'p4s!' rejected", "value '**********' rejected"),
                ("xp4s!y stays", "xp4s!y stays"),
            ],
        );
        // A word: masking it in prose would say which word the secret is.
        let s = login("alice", "data");
        redacts_values(&s, "alice", "data");
        keeps(&s, &[r#"reading data from "data_raw": no data"#]);
    }

    #[test]
    fn a_secret_equal_to_the_username_is_masked_only_as_a_value() {
        for pw in ["sluice", "svc-loader-2024"] {
            let s = login(pw, pw);
            redacts_values(&s, pw, pw);
            let text = format!(r#"password authentication failed for user "{pw}" ({pw}@db)"#);
            assert_eq!(s.redact(&text), text);
        }
    }

    #[test]
    fn a_weak_password_that_is_no_common_word_is_masked_as_a_word() {
        for pw in ["letmein", "qwerty", "123456", "abcdefghijk"] {
            let s = login("alice", pw);
            redacts_values(&s, "alice", pw);
            assert_eq!(
                s.redact(&format!("auth failed for token {pw}")),
                "auth failed for token **********"
            );
            keeps(&s, &[&format!("x{pw}y stays")]);
        }
    }

    #[test]
    fn a_common_word_as_a_secret_leaves_the_words_alone() {
        for word in ["password", "sluice"] {
            let s = login("alice", word);
            redacts_values(&s, "alice", word);
            let text = "password authentication failed: sluice stopped reading the stream";
            assert_eq!(s.redact(text), text);
        }
    }

    #[test]
    fn a_long_random_secret_is_masked_wherever_it_occurs() {
        let pw = "Xk9mQ2vL7pW4zR8t";
        let s = login("alice", pw);
        redacts_values(&s, "alice", pw);
        redacts(
            &s,
            &[
                (
                    "GET https://api.example.com/v1/Xk9mQ2vL7pW4zR8t/items",
                    "GET https://api.example.com/v1/**********/items",
                ),
                (
                    "Authorization: Bearer Xk9mQ2vL7pW4zR8t",
                    "Authorization: Bearer **********",
                ),
                ("key=abcXk9mQ2vL7pW4zR8tdef;", "key=abc**********def;"),
            ],
        );
    }

    #[test]
    fn a_connection_url_masks_its_password_wherever_it_stands_and_not_its_user() {
        let schema = json!({"type": "object", "properties": {
            "url": {"type": "string", "airbyte_secret": true}}});
        let s = Secrets::from_config(&schema, &json!({"url": "postgres://bob:p%40ss@h:5432/app"}));
        redacts(
            &s,
            &[
                (
                    "cannot connect to postgres://bob:p%40ss@h:5432/app",
                    "cannot connect to **********",
                ),
                (
                    "retrying postgres://bob:p%40ss@h:5432/other as bob",
                    "retrying postgres://bob:**********@h:5432/other as bob",
                ),
                ("password=p@ss for bob", "password=********** for bob"),
            ],
        );
    }

    #[test]
    fn nothing_to_mask_borrows_the_text() {
        let s = login("alice", "p");
        assert!(matches!(s.redact("pipeline p paused"), Cow::Borrowed(_)));
        assert!(!format!("{s:?}").contains('p'), "{s:?}");
    }

    #[test]
    fn unmask_keeps_old_secrets_where_the_mask_stands() {
        let old = json!({"password": "real", "host": "a"});
        let new = json!({"password": MASK, "host": "b"});
        assert_eq!(unmask(&new, &old), json!({"password": "real", "host": "b"}));
    }
}

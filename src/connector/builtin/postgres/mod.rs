//! `postgres`: a native PostgreSQL source and destination, one connector.
//!
//! As a source it discovers the tables and views of the chosen schemas and
//! reads them with `COPY ... TO STDOUT`, PostgreSQL itself turning each row
//! into JSON (`source.rs`). As a destination it writes Airbyte's
//! Destinations V2 final tables with `COPY ... FROM STDIN` (`destination/`).
//! The password never reaches a message: every error text from the server
//! or the driver passes through `mask`, which redacts the config's secrets
//! as the engine's log does ([`Secrets`]).

mod binary;
mod destination;
mod json;
mod source;
mod types;

use super::{parse_config, Builtin, BuiltinError, BuiltinResult, Kind, Output};
use crate::connector::config::{Secrets, MASK};
use crate::protocol::{
    AirbyteCatalog, ConfiguredAirbyteCatalog, ConnectorSpecification, DestinationSyncMode, Extra,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use std::io::BufRead;
use std::str::FromStr;

pub struct Postgres;

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    /// `sslmode` as libpq spells it, or `ssl_mode` as Airbyte's connectors do.
    #[serde(default, alias = "ssl_mode")]
    sslmode: Option<Ssl>,
    /// Source: the schemas whose tables and views are streams.
    #[serde(default)]
    schemas: Option<Vec<String>>,
    /// Destination: where streams without a namespace go.
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    checkpoint_every: Option<u64>,
    /// Source: connections that read chunks of one large table at once.
    #[serde(default)]
    max_parallel: Option<usize>,
    /// Source: tables with fewer rows (estimated) are read in one piece.
    #[serde(default)]
    chunk_rows: Option<u64>,
    /// Destination: a table that is replaced is dropped with what depends
    /// on it (views, foreign keys), as Airbyte's destination-postgres does.
    #[serde(default)]
    drop_cascade: bool,
    /// The secrets of the config, to mask in messages.
    #[serde(skip)]
    secrets: Secrets,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("database", &self.database)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .finish_non_exhaustive()
    }
}

/// `sslmode`: a libpq mode name, or Airbyte's object form, which also
/// carries the certificates (PEM text) for `verify-ca` and `verify-full`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ssl {
    Mode(String),
    Object(SslObject),
}

#[derive(Deserialize)]
struct SslObject {
    mode: String,
    #[serde(default)]
    ca_certificate: Option<String>,
    #[serde(default)]
    client_certificate: Option<String>,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    client_key_password: Option<String>,
}

impl Ssl {
    fn apply(&self, o: PgConnectOptions) -> BuiltinResult<PgConnectOptions> {
        let mode = match self {
            Ssl::Mode(m) => m,
            Ssl::Object(s) => &s.mode,
        };
        let parsed = PgSslMode::from_str(mode).map_err(|_| {
            BuiltinError::config(format!(
                "unknown `sslmode` `{mode}` (use disable, allow, prefer, require, \
                 verify-ca or verify-full)"
            ))
        })?;
        let mut o = o.ssl_mode(parsed);
        let Ssl::Object(s) = self else {
            return Ok(o);
        };
        if s.client_key_password
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(BuiltinError::config(
                "`client_key_password`: encrypted client keys are not supported; \
                 give the key decrypted (`openssl pkey -in key.pem -out plain.pem`)",
            ));
        }
        // A PEM field left blank (as forms leave them) is not given.
        fn pem(f: &Option<String>) -> Option<&str> {
            f.as_deref().filter(|t| !t.trim().is_empty())
        }
        if let Some(ca) = pem(&s.ca_certificate) {
            o = o.ssl_root_cert_from_pem(ca.as_bytes().to_vec());
        }
        match (pem(&s.client_certificate), pem(&s.client_key)) {
            (Some(cert), Some(key)) => {
                o = o
                    .ssl_client_cert_from_pem(cert.as_bytes())
                    .ssl_client_key_from_pem(key.as_bytes());
            }
            (None, None) => {}
            _ => {
                return Err(BuiltinError::config(
                    "`client_certificate` and `client_key` go together: give both or neither",
                ))
            }
        }
        Ok(o)
    }
}

impl Config {
    fn parse(config: &Value) -> BuiltinResult<Config> {
        let mut c: Config = parse_config("postgres", config)?;
        c.secrets = Secrets::from_config(&spec(), config);
        // Without a URL, the fields say where and who; a field left out
        // would otherwise fail later as a refused login or a missing
        // database, which hides what to fix. (A URL is taken as complete:
        // it may carry the password, or the server may want none.)
        if c.url.is_none() {
            let missing: Vec<&str> = [
                ("host", &c.host),
                ("database", &c.database),
                ("username", &c.username),
                ("password", &c.password),
            ]
            .into_iter()
            .filter(|(_, v)| v.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| name)
            .collect();
            if !missing.is_empty() {
                let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
                return Err(BuiltinError::config(format!(
                    "the postgres config is missing {}: give `host`, `database`, `username` and \
                     `password` (and `port`, default 5432), or a `url`",
                    names.join(", ")
                )));
            }
        }
        if c.checkpoint_every == Some(0) {
            return Err(BuiltinError::config(
                "`checkpoint_every` must be at least 1",
            ));
        }
        Ok(c)
    }

    fn options(&self) -> BuiltinResult<PgConnectOptions> {
        let mut o = match &self.url {
            Some(url) => PgConnectOptions::from_str(url).map_err(|e| {
                BuiltinError::config(format!(
                    "invalid postgres `url`: {}",
                    self.mask(&e.to_string())
                ))
            })?,
            None => PgConnectOptions::new_without_pgpass(),
        };
        if let Some(h) = &self.host {
            o = o.host(h);
        }
        if let Some(p) = self.port {
            o = o.port(p);
        }
        if let Some(d) = &self.database {
            o = o.database(d);
        }
        if let Some(u) = &self.username {
            o = o.username(u);
        }
        if let Some(p) = &self.password {
            o = o.password(p);
        }
        if let Some(ssl) = &self.sslmode {
            o = ssl.apply(o)?;
        }
        Ok(o.application_name("sluice")
            .options([
                ("TimeZone", "UTC"),
                ("DateStyle", "ISO"),
                ("IntervalStyle", "postgres"),
                ("extra_float_digits", "1"),
            ])
            .disable_statement_logging())
    }

    /// The secrets in `text`, replaced.
    fn mask(&self, text: &str) -> String {
        self.secrets.redact(text).into_owned()
    }

    /// The schemas a source reads.
    fn schemas(&self) -> Vec<String> {
        self.schemas
            .clone()
            .unwrap_or_else(|| vec!["public".into()])
    }

    /// The schema a destination writes streams without a namespace to.
    fn default_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// Two readers by default, but one when the server shares this
    /// machine's few cores: a second reader then only adds the server's
    /// work (measured on 2 cores, a local server, 1 M rows to the built-in
    /// destination: 9% slower with two).
    fn max_parallel(&self) -> usize {
        match self.max_parallel {
            Some(n) => n.max(1),
            None => {
                let local = self.options().is_ok_and(|o| is_local(o.get_host()));
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                if local && cores < 4 {
                    1
                } else {
                    2
                }
            }
        }
    }

    fn chunk_rows(&self) -> u64 {
        self.chunk_rows.unwrap_or(250_000)
    }

    fn checkpoint_every(&self) -> u64 {
        self.checkpoint_every.unwrap_or(10_000)
    }
}

/// Whether a host names this machine (a Unix socket's directory too).
fn is_local(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One connection, with the config it came from for masking errors.
struct Conn {
    conn: PgConnection,
    config: std::sync::Arc<ConfigRef>,
}

/// What errors need from the config, shared by every connection.
struct ConfigRef {
    secrets: Secrets,
    target: String,
}

impl ConfigRef {
    fn mask(&self, text: &str) -> String {
        self.secrets.redact(text).into_owned()
    }
}

impl Conn {
    async fn open(config: &Config) -> BuiltinResult<Conn> {
        let options = config.options()?;
        let target = format!(
            "{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let r = ConfigRef {
            secrets: config.secrets.clone(),
            target,
        };
        let conn = options.connect().await.map_err(|e| {
            let text = r.mask(&e.to_string());
            let failure = match &e {
                sqlx::Error::Database(_) | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                    BuiltinError::config
                }
                _ => BuiltinError::system,
            };
            let hint = if matches!(e, sqlx::Error::Tls(_)) || text.contains("certificate") {
                "check `sslmode` and its certificates: a server whose CA is not in the \
                 system's store needs it as `ca_certificate` (sslmode's object form), and \
                 verify-full needs the host the certificate was issued for"
            } else {
                "check host, port, username and password"
            };
            failure(format!(
                "cannot connect to PostgreSQL as {}: {text}; {hint}",
                r.target
            ))
        })?;
        Ok(Conn {
            conn,
            config: std::sync::Arc::new(r),
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> BuiltinError {
        BuiltinError::system(format!("{what}: {}", self.config.mask(&e.to_string())))
    }

    async fn execute(&mut self, sql: &str) -> BuiltinResult<()> {
        sqlx::raw_sql(sql)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| {
                BuiltinError::system(format!(
                    "{}: {}",
                    first_line(sql),
                    self.config.mask(&e.to_string())
                ))
            })
    }

    async fn close(self) {
        let _ = self.conn.close().await;
    }
}

fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("");
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push_str("...");
    }
    format!("PostgreSQL failed on `{s}`")
}

/// A quoted identifier: `"a ""b"""`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `f` to its end on a runtime of this thread.
fn block_on<F: std::future::Future>(f: F) -> BuiltinResult<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BuiltinError::system(format!("cannot start a runtime: {e}")))?;
    Ok(rt.block_on(f))
}

impl Builtin for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn kind(&self) -> Kind {
        Kind::Both
    }

    fn description(&self) -> &'static str {
        "PostgreSQL tables, read and written with COPY"
    }

    fn spec(&self) -> ConnectorSpecification {
        ConnectorSpecification {
            documentation_url: None,
            changelog_url: None,
            connection_specification: spec(),
            supports_incremental: Some(true),
            supported_destination_sync_modes: vec![
                DestinationSyncMode::Overwrite,
                DestinationSyncMode::Append,
                DestinationSyncMode::AppendDedup,
            ],
            protocol_version: Some("0.5.2".into()),
            extra: Extra::new(),
        }
    }

    fn check(&self, config: &Value) -> BuiltinResult<()> {
        let config = Config::parse(config)?;
        block_on(async {
            let mut c = Conn::open(&config).await?;
            c.execute("SELECT 1").await?;
            // Only a source reads `schemas`; one that is not there would
            // make no streams, so the check says so.
            if let Some(schemas) = &config.schemas {
                source::check_schemas(&mut c, schemas).await?;
            }
            c.close().await;
            Ok(())
        })?
    }

    fn discover(&self, config: &Value) -> BuiltinResult<AirbyteCatalog> {
        let config = Config::parse(config)?;
        block_on(source::discover(&config))?
    }

    fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        state: Option<&Value>,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        let config = Config::parse(config)?;
        block_on(source::read(&config, catalog, state, out))?
    }

    fn write(
        &self,
        config: &Value,
        catalog: &ConfiguredAirbyteCatalog,
        input: &mut dyn BufRead,
        out: &mut Output,
    ) -> BuiltinResult<()> {
        // A destination that fails before it is ready must not keep a
        // source waiting to hear which streams it takes as rows.
        let handoff = out.handoff.clone();
        let _declined = super::handoff::CloseOnDrop(handoff.as_deref());
        let config = Config::parse(config)?;
        destination::write(&config, catalog, input, out)
    }

    fn hands_off_rows(&self) -> bool {
        true
    }
}

fn spec() -> Value {
    let modes = json!([
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full"
    ]);
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Postgres Spec",
        "type": "object",
        "properties": {
            "url": {"type": "string", "order": 0, "airbyte_secret": true,
                "title": "URL",
                "description": "postgres://user:password@host:port/database; instead of the fields below.",
                "examples": ["postgres://sluice:secret@localhost:5432/app"]},
            "host": {"type": "string", "order": 1, "title": "Host",
                "description": "Hostname of the database. Without a `url`, `host`, `database`, `username` and `password` are required."},
            "port": {"type": "integer", "order": 2, "title": "Port", "minimum": 0,
                "maximum": 65535, "default": 5432, "examples": ["5432"]},
            "database": {"type": "string", "order": 3, "title": "Database Name"},
            "username": {"type": "string", "order": 4, "title": "Username"},
            "password": {"type": "string", "order": 5, "title": "Password",
                "airbyte_secret": true},
            "schemas": {"type": "array", "order": 6, "title": "Schemas",
                "items": {"type": "string"}, "minItems": 1, "uniqueItems": true,
                "default": ["public"],
                "description": "Source: the schemas whose tables and views are streams."},
            "schema": {"type": "string", "order": 7, "title": "Default Schema",
                "default": "public",
                "description": "Destination: the schema of streams that have no namespace; created if missing."},
            "sslmode": {"order": 8, "title": "SSL Mode",
                "description": "As in libpq: disable, allow, prefer, require, verify-ca or verify-full; or Airbyte's object form (also read as `ssl_mode`) with the certificates as PEM. Trusts the system's CAs unless `ca_certificate` is given.",
                "default": "prefer",
                "oneOf": [
                    {"title": "Mode", "type": "string", "enum": modes},
                    {"title": "Mode and certificates", "type": "object", "required": ["mode"],
                        "properties": {
                            "mode": {"type": "string", "order": 0, "enum": modes},
                            "ca_certificate": {"type": "string", "order": 1, "multiline": true,
                                "title": "CA Certificate",
                                "description": "PEM of the CA (or CAs) that signed the server's certificate."},
                            "client_certificate": {"type": "string", "order": 2, "multiline": true,
                                "title": "Client Certificate",
                                "description": "PEM of a certificate to log in with, with `client_key`."},
                            "client_key": {"type": "string", "order": 3, "multiline": true,
                                "airbyte_secret": true, "title": "Client Key",
                                "description": "PEM of the client certificate's key, not encrypted."},
                            "client_key_password": {"type": "string", "order": 4,
                                "airbyte_secret": true, "title": "Client Key Password",
                                "description": "Not supported: give `client_key` decrypted."}
                        }}
                ]},
            "checkpoint_every": {"type": "integer", "order": 9, "minimum": 1, "default": 10000,
                "title": "Checkpoint Every",
                "description": "Source: records between state messages."},
            "max_parallel": {"type": "integer", "order": 10, "minimum": 1,
                "title": "Parallel Reads",
                "description": "Source: connections that read key ranges of one large table at once (full refresh, single integer primary key). Default 2, or 1 when the server is on this machine and it has fewer than 4 cores."},
            "chunk_rows": {"type": "integer", "order": 11, "minimum": 1, "default": 250000,
                "title": "Chunking Threshold",
                "description": "Source: tables with fewer rows (as PostgreSQL estimates them) are read on one connection."},
            "drop_cascade": {"type": "boolean", "order": 12, "default": false,
                "title": "Drop Tables with CASCADE",
                "description": "Destination: when overwrite or a refresh replaces a table, also drop the views and foreign keys that depend on it. Without it such a sync stops before loading, naming them."}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;

    /// A config of fields, every one given, with `more` on top.
    fn fields(more: Value) -> Value {
        let mut c = json!({"host": "h", "database": "d", "username": "u", "password": "p"});
        for (k, v) in more.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn parallel_reads_default_to_one_only_for_a_server_sharing_few_cores() {
        for local in ["localhost", "127.0.0.1", "[::1]", "/var/run/postgresql"] {
            assert!(is_local(local), "{local}");
        }
        for remote in ["db.example.com", "10.0.0.5", "h"] {
            assert!(!is_local(remote), "{remote}");
        }
        let remote = Config::parse(&fields(json!({}))).unwrap();
        assert_eq!(remote.max_parallel(), 2);
        let local = Config::parse(&json!({"url": "postgres://u@localhost/d"})).unwrap();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(local.max_parallel(), if cores < 4 { 1 } else { 2 });
        let given = Config::parse(&json!({"url": "postgres://u@localhost/d", "max_parallel": 3}));
        assert_eq!(given.unwrap().max_parallel(), 3);
    }

    #[test]
    fn missing_fields_are_named_before_connecting() {
        assert!(Config::parse(&fields(json!({}))).is_ok());
        assert!(Config::parse(&json!({"url": "postgres://u@h/d"})).is_ok());
        for (config, named) in [
            (
                json!({"host": "h", "database": "d", "username": "u"}),
                "`password`",
            ),
            (fields(json!({"password": ""})), "`password`"),
            (
                json!({"password": "p", "port": 5433}),
                "`host`, `database`, `username`",
            ),
            (json!({}), "`host`, `database`, `username`, `password`"),
        ] {
            let e = Config::parse(&config).unwrap_err();
            assert_eq!(e.failure_type, FailureType::ConfigError);
            assert!(
                e.message.contains(&format!("is missing {named}:")),
                "{config}: {}",
                e.message
            );
        }
    }

    #[test]
    fn secrets_are_masked_in_errors() {
        let c = Config::parse(&json!({"url": "postgres://u:s3cret@h/db"})).unwrap();
        assert_eq!(c.mask("bad s3cret"), format!("bad {MASK}"));
        let c = Config::parse(&json!({"url": "postgres://u:p@ss@h:1/db"})).unwrap();
        assert_eq!(
            c.mask("password=p@ss rejected for u"),
            format!("password={MASK} rejected for u")
        );
        // A short password leaves the server's words whole.
        let c = Config::parse(&fields(json!({"username": "postgres", "password": "ss"}))).unwrap();
        assert!(!format!("{c:?}").contains("\"ss\""));
        assert_eq!(
            c.mask(r#"password authentication failed for user "postgres""#),
            r#"password authentication failed for user "postgres""#
        );
    }

    #[test]
    fn sslmode_takes_libpq_names_and_airbyte_objects() {
        let modes = [
            (json!("disable"), PgSslMode::Disable),
            (json!("verify-full"), PgSslMode::VerifyFull),
            (json!({"mode": "require"}), PgSslMode::Require),
        ];
        for (mode, want) in modes {
            let c = Config::parse(&fields(json!({"ssl_mode": mode}))).unwrap();
            assert_eq!(
                format!("{:?}", c.options().unwrap().get_ssl_mode()),
                format!("{want:?}")
            );
        }
        let bad = [
            (json!("sometimes"), "unknown `sslmode`"),
            (
                json!({"mode": "verify-ca", "client_key": "k"}),
                "go together",
            ),
            (
                json!({"mode": "verify-ca", "client_key_password": "x"}),
                "not supported",
            ),
        ];
        for (mode, want) in bad {
            let c = Config::parse(&fields(json!({"sslmode": mode}))).unwrap();
            let e = c.options().unwrap_err();
            assert!(e.message.contains(want), "{}", e.message);
        }
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident("a \"b\""), "\"a \"\"b\"\"\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}

//! `Remote`: the Api over HTTP, to a daemon on a Unix socket or on TCP.
//!
//! Every request is a value of the wire contract ([`super::types`]); a
//! long operation answers with JSON lines ([`RunLine`]): its events as
//! they happen, then its answer or its error, so a [`Run`] reads the same
//! whichever side runs it. An error answers with `{"error": ApiError}`.
//! This file reads nothing of the client's machine and prints nothing:
//! what it cannot reach is an `unreachable` error naming the address.

use super::*;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use utoipa::ToSchema;

/// The header a daemon names a run in, for cancelling it.
pub const RUN_HEADER: &str = "sluice-run";
/// The header every daemon answer carries its version in.
pub const VERSION_HEADER: &str = "sluice-version";
/// The media type of a run's JSON lines.
pub const RUN_MEDIA_TYPE: &str = "application/x-ndjson";

/// Where a daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:///path/to/daemon.sock`
    Unix(PathBuf),
    /// `http://host:port` or `https://host:port`, without a trailing slash.
    Http(String),
}

impl Endpoint {
    /// Reads `unix:///path`, `http://host:port` or `https://host:port`.
    pub fn parse(text: &str) -> Result<Endpoint, ApiError> {
        let bad = || {
            ApiError::user(format!("`{text}` is not a daemon address"))
                .hint("give unix:///path/to/daemon.sock or http(s)://host:port")
        };
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(bad());
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let url = Url::parse(text).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad());
        }
        Ok(Endpoint::Http(text.trim_end_matches('/').to_string()))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Http(url) => f.write_str(url),
        }
    }
}

/// One line of a run's answer body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunLine<T> {
    Event(Event),
    Answer(T),
    Error(ApiError),
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// The Api of a daemon.
#[derive(Clone)]
pub struct Remote {
    endpoint: Endpoint,
    base: Url,
    client: reqwest::Client,
    token: Option<String>,
    /// Runs under way: this side's id, then the daemon's once it answered.
    runs: Arc<Mutex<HashMap<String, Option<String>>>>,
}

impl Remote {
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Result<Remote, ApiError> {
        let builder =
            reqwest::Client::builder().user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        let (builder, base) = match &endpoint {
            Endpoint::Unix(path) => (builder.unix_socket(path.clone()), "http://localhost"),
            Endpoint::Http(url) => (builder, url.as_str()),
        };
        // The system's root certificates take a few milliseconds to load:
        // only for HTTPS.
        let builder = builder.tls_built_in_native_certs(base.starts_with("https:"));
        // reqwest takes rustls without choosing its crypto, and wants one
        // even for plain HTTP: the same provider as the store's TLS.
        // Installed once; a second install is refused and harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = builder
            .build()
            .map_err(|e| ApiError::internal(format!("cannot make an HTTP client: {e}")))?;
        let base = Url::parse(base).map_err(|_| Endpoint::parse(base).unwrap_err())?;
        Ok(Remote {
            endpoint,
            base,
            client,
            token,
            runs: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `/healthz`: whether a daemon answers, and which sluice it is.
    pub async fn health(&self) -> Result<Health, ApiError> {
        self.call(Method::GET, &["healthz"], &[], None::<&()>).await
    }

    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http base")
            .pop_if_empty()
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    fn request(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let mut req = self.client.request(method, self.url(path, query));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| ApiError::internal(format!("cannot encode a request: {e}")))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        Ok(req)
    }

    fn unreachable(&self, e: reqwest::Error) -> ApiError {
        // The deepest cause says it: "Connection refused", "No such file".
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            why = c.to_string();
            cause = c.source();
        }
        ApiError::unreachable(format!(
            "no sluice daemon answers at {}: {why}",
            self.endpoint
        ))
        .hint("start it with `sluice daemon start`, or check --host and SLUICE_HOST")
    }

    /// Sends a request: the daemon's answer, whatever its status.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        self.daemons_answer(resp).await
    }

    /// The answer, if it comes from a sluice daemon: every answer of one
    /// carries its version, or is one of its errors (an older daemon's
    /// token check answered without the version). Another answer is
    /// another server's, say a web server's HTML page at the address given.
    async fn daemons_answer(&self, resp: reqwest::Response) -> Result<reqwest::Response, ApiError> {
        if resp.headers().contains_key(VERSION_HEADER) {
            return Ok(resp);
        }
        let status = resp.status();
        let kind = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
            .unwrap_or_else(|| "no content type".into());
        let bytes = resp.bytes().await.unwrap_or_default();
        if !status.is_success() && serde_json::from_slice::<ErrorBody>(&bytes).is_ok() {
            return Err(self.error_from(status, &bytes));
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
        let head: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let head = match head.chars().take(80).collect::<String>() {
            h if h.is_empty() => String::new(),
            h => format!(": {h}"),
        };
        Err(ApiError::unreachable(format!(
            "{} does not look like a sluice daemon (it answered {status}, {kind}{head})",
            self.endpoint
        ))
        .hint(
            "check --host and SLUICE_HOST: name the address the daemon listens on \
             (`sluice daemon status` on its machine shows it)",
        ))
    }

    /// An answer that is not a success, as the error it carries.
    async fn error_of(&self, resp: reqwest::Response) -> ApiError {
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        self.error_from(status, &bytes)
    }

    /// The error an answer's status and body carry.
    fn error_from(&self, status: StatusCode, bytes: &[u8]) -> ApiError {
        match serde_json::from_slice::<ErrorBody>(bytes) {
            Ok(body) if body.error.code == ErrorCode::Unauthorized => {
                let refused = self.refused();
                ApiError {
                    hint: body.error.hint.or(refused.hint),
                    ..refused
                }
            }
            Ok(body) => body.error,
            Err(_) if status == StatusCode::UNAUTHORIZED => self.refused(),
            Err(_) => ApiError::failed(format!(
                "the daemon at {} answered {status}: {}",
                self.endpoint,
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )),
        }
    }

    fn refused(&self) -> ApiError {
        let (what, hint) = if self.token.is_some() {
            (
                "refused the token given",
                "check --token or SLUICE_TOKEN against what `sluice daemon token` prints on the daemon's machine (`--rotate` there replaces it)",
            )
        } else {
            (
                "wants a token",
                "pass --token or SLUICE_TOKEN; `sluice daemon token` on the daemon's machine prints it",
            )
        };
        ApiError::new(
            ErrorCode::Unauthorized,
            format!("the daemon at {} {what}", self.endpoint),
        )
        .hint(hint)
    }

    /// One request, its JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        let resp = self.send(self.request(method, path, query, body)?).await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp).await);
        }
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::internal(format!(
                "the daemon at {} answered what this sluice cannot read ({e})",
                self.endpoint
            ))
            .hint("run the same version of sluice on both sides (`sluice daemon status`)")
        })
    }

    /// A long operation: its events, then its answer, as JSON lines.
    fn run<T, B>(&self, method: Method, path: &[&str], body: &B) -> Run<T>
    where
        T: DeserializeOwned + Send + 'static,
        B: Serialize,
    {
        let id = registry::new_run_id();
        let (tx, rx) = mpsc::unbounded_channel();
        let request = self
            .request(method, path, &[], Some(body))
            .map(|r| r.header(reqwest::header::ACCEPT, RUN_MEDIA_TYPE));
        let runs = self.runs.clone();
        runs.lock().expect("runs lock").insert(id.clone(), None);
        let run_id = id.clone();
        let endpoint = self.endpoint.clone();
        let this = self.clone();
        let answer = Box::pin(async move {
            let answer = async {
                let resp = this.send(request?).await?;
                if !resp.status().is_success() {
                    return Err(this.error_of(resp).await);
                }
                if let Some(server) = resp.headers().get(RUN_HEADER) {
                    let server = server.to_str().unwrap_or_default().to_string();
                    runs.lock()
                        .expect("runs lock")
                        .insert(run_id.clone(), Some(server));
                }
                read_run_lines(resp, &tx, &endpoint).await
            }
            .await;
            runs.lock().expect("runs lock").remove(&run_id);
            answer
        });
        Run::new(id, rx, answer)
    }
}

/// Reads a run's JSON lines: events to `tx`, then the answer.
async fn read_run_lines<T: DeserializeOwned>(
    resp: reqwest::Response,
    tx: &mpsc::UnboundedSender<Event>,
    endpoint: &Endpoint,
) -> Result<T, ApiError> {
    use futures_util::StreamExt;
    let cut = || {
        ApiError::failed(format!(
            "the daemon at {endpoint} stopped answering before the end"
        ))
        .hint("`sluice daemon status` says whether it still runs; a job it ran is in `sluice job list`")
    };
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    loop {
        while let Some(i) = memchr::memchr(b'\n', &buf) {
            let line: Vec<u8> = buf.drain(..=i).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<RunLine<T>>(&line) {
                Ok(RunLine::Event(e)) => {
                    let _ = tx.send(e);
                }
                Ok(RunLine::Answer(a)) => return Ok(a),
                Ok(RunLine::Error(e)) => return Err(e),
                Err(e) => {
                    return Err(ApiError::internal(format!(
                        "the daemon at {endpoint} sent a line this sluice cannot read ({e})"
                    ))
                    .hint("run the same version of sluice on both sides (`sluice daemon status`)"))
                }
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(_)) | None => return Err(cut()),
        }
    }
}

/// The path word of a kind: `sources`, `destinations`.
pub fn kind_path(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Source => "sources",
        ActorKind::Destination => "destinations",
    }
}

fn yes_no(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// An answer of nothing.
type Nothing = Option<()>;

#[async_trait]
impl Api for Remote {
    async fn sync(&self, req: SyncRequest) -> Run<SyncAnswer> {
        self.run(Method::POST, &["api", "v1", "sync"], &req)
    }

    async fn cancel(&self, run: &str, now: bool) -> Result<(), ApiError> {
        let server = self
            .runs
            .lock()
            .expect("runs lock")
            .get(run)
            .cloned()
            .flatten()
            .unwrap_or_else(|| run.to_string());
        let _: Nothing = self
            .call(
                Method::POST,
                &["api", "v1", "runs", &server, "cancel"],
                &[("now", yes_no(now))],
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    async fn connector_spec(&self, req: ConnectorRequest) -> Run<ConnectorSpecification> {
        self.run(Method::POST, &["api", "v1", "connectors", "spec"], &req)
    }

    async fn connector_check(&self, req: ConnectorRequest) -> Run<CheckResult> {
        self.run(Method::POST, &["api", "v1", "connectors", "check"], &req)
    }

    async fn connector_discover(&self, req: ConnectorRequest) -> Run<AirbyteCatalog> {
        self.run(Method::POST, &["api", "v1", "connectors", "discover"], &req)
    }

    async fn connector_read(&self, _req: ReadRequest) -> (Run<ConnectorExit>, ByteStream) {
        (
            in_process_only("read"),
            Box::pin(futures_util::stream::empty()),
        )
    }

    async fn connector_write(
        &self,
        _req: WriteRequest,
        _input: ByteStream,
    ) -> (Run<ConnectorExit>, ByteStream) {
        (
            in_process_only("write"),
            Box::pin(futures_util::stream::empty()),
        )
    }

    async fn connector_install(&self, req: ConnectorRequest) -> Run<ConnectorInfo> {
        self.run(Method::POST, &["api", "v1", "connectors", "install"], &req)
    }

    async fn connector_pull(&self, req: ConnectorRequest) -> Run<ConnectorInfo> {
        self.run(Method::POST, &["api", "v1", "connectors", "pull"], &req)
    }

    async fn connector_list(&self) -> Result<Vec<ConnectorInfo>, ApiError> {
        self.call(Method::GET, &["api", "v1", "connectors"], &[], None::<&()>)
            .await
    }

    async fn system_sweep(&self) -> Result<SweepReport, ApiError> {
        self.call(
            Method::POST,
            &["api", "v1", "system", "sweep"],
            &[],
            None::<&()>,
        )
        .await
    }

    async fn db_status(&self) -> Result<DbStatus, ApiError> {
        self.call(Method::GET, &["api", "v1", "db"], &[], None::<&()>)
            .await
    }

    async fn actor_create(&self, req: ActorCreate) -> Run<Actor> {
        self.run(Method::POST, &["api", "v1", kind_path(req.kind)], &req)
    }

    async fn actor_update(&self, req: ActorUpdate) -> Run<Actor> {
        let name = req.name.clone();
        self.run(
            Method::PATCH,
            &["api", "v1", kind_path(req.kind), &name],
            &req,
        )
    }

    async fn actor_list(
        &self,
        kind: ActorKind,
        show_secrets: bool,
    ) -> Result<Vec<Actor>, ApiError> {
        self.call(
            Method::GET,
            &["api", "v1", kind_path(kind)],
            &[("show_secrets", yes_no(show_secrets))],
            None::<&()>,
        )
        .await
    }

    async fn actor_get(
        &self,
        kind: ActorKind,
        name: &str,
        show_secrets: bool,
    ) -> Result<Actor, ApiError> {
        self.call(
            Method::GET,
            &["api", "v1", kind_path(kind), name],
            &[("show_secrets", yes_no(show_secrets))],
            None::<&()>,
        )
        .await
    }

    async fn actor_delete(&self, kind: ActorKind, name: &str) -> Result<(), ApiError> {
        let _: Nothing = self
            .call(
                Method::DELETE,
                &["api", "v1", kind_path(kind), name],
                &[],
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    async fn actor_check(&self, req: ActorRun) -> Run<CheckResult> {
        let name = req.name.clone();
        self.run(
            Method::POST,
            &["api", "v1", kind_path(req.kind), &name, "check"],
            &req.options,
        )
    }

    async fn source_discover(&self, req: ActorRun) -> Run<AirbyteCatalog> {
        let name = req.name.clone();
        self.run(
            Method::POST,
            &["api", "v1", "sources", &name, "discover"],
            &req.options,
        )
    }

    async fn connection_create(&self, req: ConnectionCreate) -> Run<Connection> {
        self.run(Method::POST, &["api", "v1", "connections"], &req)
    }

    async fn connection_update(&self, req: ConnectionUpdate) -> Run<Connection> {
        let name = req.name.clone();
        self.run(Method::PATCH, &["api", "v1", "connections", &name], &req)
    }

    async fn connection_list(&self) -> Result<Vec<Connection>, ApiError> {
        self.call(Method::GET, &["api", "v1", "connections"], &[], None::<&()>)
            .await
    }

    async fn connection_get(&self, name: &str) -> Result<Connection, ApiError> {
        self.call(
            Method::GET,
            &["api", "v1", "connections", name],
            &[],
            None::<&()>,
        )
        .await
    }

    async fn connection_delete(&self, name: &str) -> Result<(), ApiError> {
        let _: Nothing = self
            .call(
                Method::DELETE,
                &["api", "v1", "connections", name],
                &[],
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    async fn connection_set_status(
        &self,
        name: &str,
        status: ConnectionStatus,
    ) -> Result<(), ApiError> {
        let verb = match status {
            ConnectionStatus::Active => "enable",
            ConnectionStatus::Inactive => "disable",
        };
        let _: Nothing = self
            .call(
                Method::POST,
                &["api", "v1", "connections", name, verb],
                &[],
                None::<&()>,
            )
            .await?;
        Ok(())
    }

    async fn connection_job(&self, req: JobRequest) -> Run<JobDetail> {
        let name = req.connection.clone();
        self.run(
            Method::POST,
            &["api", "v1", "connections", &name, "jobs"],
            &req,
        )
    }

    async fn job_list(&self, filter: JobFilter) -> Result<Vec<Job>, ApiError> {
        let mut query = vec![("limit", filter.limit.to_string())];
        if let Some(c) = filter.connection {
            query.push(("connection", c));
        }
        if let Some(s) = filter.status {
            query.push(("status", s.to_string()));
        }
        self.call(Method::GET, &["api", "v1", "jobs"], &query, None::<&()>)
            .await
    }

    async fn job_get(&self, id: JobRef) -> Result<JobDetail, ApiError> {
        self.call(
            Method::GET,
            &["api", "v1", "jobs", &id.to_string()],
            &[],
            None::<&()>,
        )
        .await
    }

    async fn job_logs(&self, id: JobRef, attempt: Option<i64>) -> Result<JobLog, ApiError> {
        let query: Vec<_> = attempt
            .map(|a| ("attempt", a.to_string()))
            .into_iter()
            .collect();
        self.call(
            Method::GET,
            &["api", "v1", "jobs", &id.to_string(), "logs"],
            &query,
            None::<&()>,
        )
        .await
    }

    async fn job_enqueue(&self, req: JobRequest) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &["api", "v1", "connections", &req.connection, "jobs"],
            &[("detach", yes_no(true))],
            Some(&req),
        )
        .await
    }

    async fn job_cancel(&self, id: JobRef) -> Result<Job, ApiError> {
        self.call(
            Method::POST,
            &["api", "v1", "jobs", &id.to_string(), "cancel"],
            &[],
            None::<&()>,
        )
        .await
    }

    fn jobs_run_apart(&self) -> bool {
        true
    }

    async fn job_logs_follow(
        &self,
        id: JobRef,
        attempt: Option<i64>,
    ) -> Result<ByteStream, ApiError> {
        use futures_util::StreamExt;
        let mut query = vec![("follow", yes_no(true))];
        if let Some(a) = attempt {
            query.push(("attempt", a.to_string()));
        }
        let resp = self
            .send(self.request(
                Method::GET,
                &["api", "v1", "jobs", &id.to_string(), "logs"],
                &query,
                None::<&()>,
            )?)
            .await?;
        if !resp.status().is_success() {
            return Err(self.error_of(resp).await);
        }
        Ok(Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        ))
    }

    async fn state_get(&self, connection: &str) -> Result<Option<ConnectionState>, ApiError> {
        self.call(
            Method::GET,
            &["api", "v1", "connections", connection, "state"],
            &[],
            None::<&()>,
        )
        .await
    }

    async fn state_set(&self, connection: &str, state: serde_json::Value) -> Result<(), ApiError> {
        let _: Nothing = self
            .call(
                Method::PUT,
                &["api", "v1", "connections", connection, "state"],
                &[],
                Some(&state),
            )
            .await?;
        Ok(())
    }

    async fn state_reset(&self, connection: &str, streams: &[String]) -> Result<(), ApiError> {
        let _: Nothing = self
            .call(
                Method::DELETE,
                &["api", "v1", "connections", connection, "state"],
                &[],
                Some(&StateReset {
                    streams: streams.to_vec(),
                }),
            )
            .await?;
        Ok(())
    }

    async fn apply(&self, req: ApplyRequest) -> Run<ApplyPlan> {
        self.run(Method::POST, &["api", "v1", "apply"], &req)
    }

    async fn export(&self) -> Result<Setup, ApiError> {
        self.call(Method::GET, &["api", "v1", "export"], &[], None::<&()>)
            .await
    }

    async fn daemon_status(&self) -> Result<DaemonStatus, ApiError> {
        self.call(Method::GET, &["api", "v1", "daemon"], &[], None::<&()>)
            .await
    }
}

/// What `DELETE .../state` takes: the streams to reset, all when empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateReset {
    #[serde(default)]
    pub streams: Vec<String>,
}

/// A run refused at once: what only runs in the client's process.
fn in_process_only(what: &str) -> Run<ConnectorExit> {
    let (_tx, rx) = mpsc::unbounded_channel();
    let error = ApiError::user(format!(
        "`connector {what}` streams a connector's own input and output, so it runs in this process, not through a daemon"
    ))
    .hint("run it without --host (and with SLUICE_HOST unset)");
    Run::new(
        registry::new_run_id(),
        rx,
        Box::pin(async move { Err(error) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_unix_paths_or_http_urls() {
        assert_eq!(
            Endpoint::parse("unix:///run/sluice/daemon.sock").unwrap(),
            Endpoint::Unix(PathBuf::from("/run/sluice/daemon.sock"))
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8080/").unwrap(),
            Endpoint::Http("http://127.0.0.1:8080".into())
        );
        for bad in ["unix://relative.sock", "ftp://x", "localhost:8080", ""] {
            let e = Endpoint::parse(bad).unwrap_err();
            assert_eq!(e.class, ErrorClass::User, "{bad}");
        }
        assert_eq!(
            Endpoint::parse("https://sluice.example:443")
                .unwrap()
                .to_string(),
            "https://sluice.example:443"
        );
    }

    #[test]
    fn run_lines_read_back() {
        let lines: Vec<RunLine<i64>> = vec![
            RunLine::Event(Event::Step {
                message: "pulling".into(),
            }),
            RunLine::Answer(7),
            RunLine::Error(ApiError::not_found("no such connection")),
        ];
        for line in lines {
            let text = serde_json::to_string(&line).unwrap();
            assert!(!text.contains('\n'));
            assert_eq!(serde_json::from_str::<RunLine<i64>>(&text).unwrap(), line);
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_naming_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let remote = Remote::new(Endpoint::Unix(sock.clone()), None).unwrap();
        let e = remote.connection_list().await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Unreachable);
        assert!(e.message.contains(&sock.display().to_string()), "{e:?}");
    }
}

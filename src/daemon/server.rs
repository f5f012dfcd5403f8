//! The daemon's HTTP API: every operation of the `Api` under `/api/v1`,
//! each handler a few lines over the same in-process `Local` the CLI uses
//! without a daemon, so an answer is the same whichever way it is asked.
//!
//! A long operation answers with JSON lines (events, then the answer or
//! the error) when asked for `application/x-ndjson`, else with its answer
//! alone once it ends. It runs on a task of its own: a client that goes
//! away does not stop a job. Every error is `{"error": ApiError}` with an
//! HTTP status from its code; an internal one says nothing of the inside.
//! On TCP every request needs the daemon's token (or a browser session
//! signed in with it, `session.rs`) but `/healthz`, which says no more than
//! alive and the version; the Unix socket is guarded by its file mode
//! instead. The web UI's files are served at `/` (`ui.rs`).

use crate::api::remote::{ErrorBody, RunLine, StateReset, RUN_HEADER, RUN_MEDIA_TYPE};
use crate::api::{
    Actor, ActorCreate, ActorKind, ActorRun, ActorUpdate, AirbyteCatalog, Api, ApiError, ApplyPlan,
    ApplyRequest, CheckResult, Connection, ConnectionCreate, ConnectionState, ConnectionStatus,
    ConnectionUpdate, ConnectorInfo, ConnectorRequest, DaemonStatus, DbStatus, ErrorCode, Event,
    Health, Job, JobDetail, JobFilter, JobLog, JobRef, JobRequest, JobStatus, Local, NextRun,
    Readiness, Run, RunOptions, Setup, SweepReport, SyncAnswer, SyncRequest,
};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

mod openapi;
pub mod session;
mod ui;
pub use openapi::document as openapi_document;

/// The largest request body taken: a setup file or a state, never data.
pub const BODY_LIMIT: usize = 16 << 20;

/// What every handler shares.
pub struct Daemon {
    pub api: Local,
    /// Runs queued jobs; its hub has the events of those running here.
    pub runner: super::runner::Runner,
    /// Cancelled when the daemon stops: followers let go then.
    pub stopping: tokio_util::sync::CancellationToken,
    pub started: Instant,
    /// Unix milliseconds.
    pub started_at: i64,
    /// The addresses it listens on, as clients write them.
    pub listen: Vec<String>,
    pub backend: String,
    /// The store's URL, its password masked.
    pub store: String,
    /// The token, and the browsers signed in with it.
    pub auth: session::Auth,
    /// The connections' listing, as last answered.
    pub connections: Kept,
    /// Whether its scheduler leads, and how late it fires.
    pub scheduler: super::scheduler::Gauges,
}

/// An answer kept with the store's revision it was made at (see
/// [`crate::store::Store::revision`]).
#[derive(Default)]
pub struct Kept(std::sync::Mutex<Option<(i64, Bytes)>>);

impl Kept {
    /// The answer made at this revision, if it is the one kept.
    fn get(&self, revision: i64) -> Option<Bytes> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|(at, _)| *at == revision)
            .map(|(_, body)| body.clone())
    }

    /// Keeps an answer made at `revision` (read before it was made: a
    /// change since then only makes it be made again).
    fn keep(&self, revision: i64, body: Bytes) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((revision, body));
    }
}

type Shared = Arc<Daemon>;

/// The routes, without the token check (the Unix socket's).
pub fn router(daemon: Shared) -> Router {
    routes(daemon).layer(middleware::map_response(with_headers))
}

/// The routes behind the token or a signed-in session (TCP). The token
/// check's refusals carry every answer's headers too: the headers go on
/// outside it.
pub fn router_with_token(daemon: Shared) -> Router {
    routes(daemon.clone())
        .layer(middleware::from_fn_with_state(daemon, session::require))
        .layer(middleware::map_response(with_headers))
}

/// Every route, with no check and no common headers.
fn routes(daemon: Shared) -> Router {
    let api = Router::new()
        .route("/daemon", get(daemon_status))
        .route("/db", get(db_status))
        .route("/sync", post(sync))
        .route("/runs/{id}/cancel", post(cancel))
        .route("/connectors", get(connector_list))
        .route("/connectors/{verb}", post(connector_run))
        .route("/system/sweep", post(sweep))
        .route("/sources", get(source_list).post(source_create))
        .route(
            "/sources/{name}",
            get(source_get).patch(source_update).delete(source_delete),
        )
        .route("/sources/{name}/check", post(source_check))
        .route("/sources/{name}/discover", post(source_discover))
        .route(
            "/destinations",
            get(destination_list).post(destination_create),
        )
        .route(
            "/destinations/{name}",
            get(destination_get)
                .patch(destination_update)
                .delete(destination_delete),
        )
        .route("/destinations/{name}/check", post(destination_check))
        .route("/connections", get(connection_list).post(connection_create))
        .route(
            "/connections/{name}",
            get(connection_get)
                .patch(connection_update)
                .delete(connection_delete),
        )
        .route("/connections/{name}/enable", post(connection_enable))
        .route("/connections/{name}/disable", post(connection_disable))
        .route("/connections/{name}/jobs", post(connection_job))
        .route(
            "/connections/{name}/state",
            get(state_get).put(state_set).delete(state_reset),
        )
        .route("/jobs", get(job_list))
        .route("/jobs/{id}", get(job_get))
        .route("/jobs/{id}/cancel", post(job_cancel))
        .route("/jobs/{id}/logs", get(job_logs))
        .route("/apply", post(apply))
        .route("/export", get(export))
        .route("/openapi.json", get(openapi::serve))
        .route("/session", post(session::sign_in).delete(session::sign_out));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(daemon)
}

/// What every answer carries, errors and the UI's files alike: the
/// daemon's version (clients check it), and the security headers that
/// keep a browser from sniffing a JSON answer as a page, framing it, or
/// sending its address on. The UI's answers add their policy (`ui.rs`).
async fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        crate::api::remote::VERSION_HEADER,
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The HTTP status of an error's code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        // It ran and failed: nothing wrong with the request or the daemon.
        ErrorCode::Failed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn error(e: ApiError) -> Response {
    let e = if e.code == ErrorCode::Internal {
        // The inside stays inside: the daemon's own log has it.
        tracing::error!(message = %e.message, "Internal error answered.");
        ApiError::internal("the daemon failed inside; its log says more")
    } else {
        e
    };
    (status_of(e.code), axum::Json(ErrorBody { error: e })).into_response()
}

fn answer<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => error(e),
    }
}

/// A run as the client asked for it: JSON lines, or the answer alone.
/// Either way it runs to its end on a task of its own.
async fn run_response<T: Serialize + Send + 'static>(
    headers: &HeaderMap,
    mut run: Run<T>,
) -> Response {
    let id = run.id().to_string();
    let streamed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(RUN_MEDIA_TYPE));
    if !streamed {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(run.answer().await);
        });
        let mut resp = answer(
            rx.await
                .unwrap_or_else(|_| Err(ApiError::internal("the run ended without an answer"))),
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(RUN_HEADER, v);
        }
        return resp;
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
    tokio::spawn(async move {
        let line = |l: &RunLine<T>| {
            let mut text = serde_json::to_vec(l).unwrap_or_else(|e| {
                serde_json::to_vec(&RunLine::<()>::Error(ApiError::internal(e.to_string())))
                    .expect("an error encodes")
            });
            text.push(b'\n');
            Ok(Bytes::from(text))
        };
        while let Some(event) = run.next_event().await {
            // A client that went away does not stop the run.
            let _ = tx.send(line(&RunLine::Event(event)));
        }
        let end = match run.answer().await {
            Ok(a) => RunLine::Answer(a),
            Err(e) => RunLine::Error(e),
        };
        let _ = tx.send(line(&end));
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RUN_MEDIA_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(RUN_HEADER, v);
    }
    resp
}

fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A JSON body, with errors as the API's own (400, 413).
struct Json<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                error(ApiError::new(
                    ErrorCode::TooLarge,
                    format!("the request body is over {} MiB", BODY_LIMIT >> 20),
                ))
            } else {
                error(ApiError::user(format!("cannot read the request body: {r}")))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map(Json).map_err(|e| {
            error(ApiError::user(format!(
                "the request body does not fit: {e}"
            )))
        })
    }
}

type Params = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;
type Name = Result<Path<String>, axum::extract::rejection::PathRejection>;

fn params(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::user(format!("bad query: {e}")))
}

fn name(p: Name) -> Result<String, ApiError> {
    p.map(|Path(n)| n)
        .map_err(|e| ApiError::user(format!("bad path: {e}")))
}

fn flag(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::user(format!(
            "`{key}` takes true or false, not `{other}`"
        ))),
    }
}

fn id_of(p: Name) -> Result<JobRef, ApiError> {
    name(p)?.parse().map_err(ApiError::user)
}

/// The value, or the error answered at once.
macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return error(e),
        }
    };
}

/// What no route takes: the web UI's, or no such route.
async fn fallback(req: Request) -> Response {
    ui::answer(req.method(), req.uri(), req.headers()).unwrap_or_else(|| {
        error(ApiError::not_found("no such route").hint("the routes are under /api/v1"))
    })
}

/// A route asked with a method it does not take: the API's error, as every
/// other 4xx (axum's own has no body).
async fn method_not_allowed() -> Response {
    let mut resp = error(
        ApiError::user("this route does not take that method")
            .hint("the routes and their methods are in /api/v1/openapi.json"),
    );
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp
}

/// Whether the daemon is alive, and which sluice it is: asked without the
/// token (a load balancer's probe has none), so it must never say more.
#[utoipa::path(get, path = "/healthz", tag = "daemon", security(()), responses((status = 200, description = "Alive.", body = Health)))]
async fn healthz() -> Response {
    answer(Ok(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// Whether the daemon can answer: its job store is reachable.
#[utoipa::path(get, path = "/readyz", tag = "daemon", responses((status = 200, description = "Ready.", body = Readiness)))]
async fn readyz(State(d): State<Shared>) -> Response {
    match d.api.db_status().await {
        Ok(_) => answer(Ok(Readiness {
            status: "ready".into(),
        })),
        Err(e) => {
            let mut resp = error(ApiError::unreachable(format!(
                "the job store is not ready: {}",
                e.message
            )));
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            resp
        }
    }
}

/// The daemon's figures in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "daemon", responses((status = 200, description = "Jobs by status, records and bytes per connection, attempt durations, queue depth.", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(d): State<Shared>) -> Response {
    let store = attempt!(d.api.service().store().await);
    let figures = attempt!(store
        .figures(&super::metrics::ATTEMPT_BOUNDS_MS)
        .await
        .map_err(ApiError::from));
    let scrape = super::metrics::Scrape {
        figures,
        uptime_s: d.started.elapsed().as_secs(),
        scheduler_lag_s: d.scheduler.lag_seconds(),
    };
    match super::metrics::render(scrape) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => error(ApiError::internal("cannot encode the metrics")),
    }
}

/// The daemon: its version, uptime, store, addresses and jobs.
#[utoipa::path(get, path = "/api/v1/daemon", tag = "daemon", responses((status = 200, description = "The daemon.", body = DaemonStatus)))]
async fn daemon_status(State(d): State<Shared>) -> Response {
    let count = |status| {
        let api = &d.api;
        async move {
            api.job_list(JobFilter {
                status: Some(status),
                ..JobFilter::default()
            })
            .await
            .map(|jobs| jobs.len())
        }
    };
    let running = attempt!(count(JobStatus::Running).await);
    let queued = attempt!(count(JobStatus::Pending).await);
    answer(Ok(DaemonStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        started_at: d.started_at,
        uptime_s: d.started.elapsed().as_secs(),
        backend: d.backend.clone(),
        store: d.store.clone(),
        listen: d.listen.clone(),
        jobs_running: running,
        jobs_queued: queued,
        scheduler_leads: d.scheduler.leads(),
        next_runs: attempt!(next_runs(&d).await),
    }))
}

/// The next runs the scheduler has set, soonest first.
async fn next_runs(d: &Daemon) -> Result<Vec<NextRun>, ApiError> {
    let store = d.api.service().store().await?;
    let mut runs: Vec<NextRun> = store
        .scheduled_connections()
        .await?
        .into_iter()
        .filter(|c| c.status == ConnectionStatus::Active)
        .filter_map(|c| {
            c.next_run_at.map(|at| NextRun {
                connection: c.name,
                at,
            })
        })
        .collect();
    runs.sort_by_key(|r| r.at);
    runs.truncate(10);
    Ok(runs)
}

/// The job store and its migrations.
#[utoipa::path(get, path = "/api/v1/db", tag = "daemon", responses((status = 200, description = "The store.", body = DbStatus)))]
async fn db_status(State(d): State<Shared>) -> Response {
    answer(d.api.db_status().await)
}

/// One sync from a source to a destination, by connector references and
/// configs, run to its end without saving a connection.
#[utoipa::path(post, path = "/api/v1/sync", tag = "syncs", request_body = SyncRequest, responses((status = 200, description = "How the sync went. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((SyncAnswer = "application/json"), (RunLine<SyncAnswer> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn sync(State(d): State<Shared>, headers: HeaderMap, body: Json<SyncRequest>) -> Response {
    run_response(&headers, d.api.sync(body.0).await).await
}

/// Cancels a run under way (its `sluice-run` header), at once or after its
/// current checkpoint.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "syncs", params(("id" = String, Path, description = "The run's id."), ("now" = Option<bool>, Query, description = "Stop at once instead of at the next checkpoint.")), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn cancel(State(d): State<Shared>, id: Name, q: Params) -> Response {
    let id = attempt!(name(id));
    let q = attempt!(params(q));
    let now = attempt!(flag(&q, "now"));
    answer(d.api.cancel(&id, now).await.map(|()| None::<()>))
}

/// The connectors built in or installed on the daemon's machine.
#[utoipa::path(get, path = "/api/v1/connectors", tag = "connectors", responses((status = 200, description = "The connectors.", body = Vec<ConnectorInfo>)))]
async fn connector_list(State(d): State<Shared>) -> Response {
    answer(d.api.connector_list().await)
}

/// Runs a connector's `spec`, `check` or `discover`, or installs (Python)
/// or pulls (Docker) it. Each verb answers with its own type.
#[utoipa::path(post, path = "/api/v1/connectors/{verb}", tag = "connectors", params(("verb" = String, Path, description = "What to do.", pattern = "^(spec|check|discover|install|pull)$")), request_body = ConnectorRequest, responses((status = 200, description = "A spec, a check's result, a catalog, or the connector installed or pulled. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((openapi::ConnectorAnswer = "application/json"), (RunLine<openapi::ConnectorAnswer> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn connector_run(
    State(d): State<Shared>,
    verb: Name,
    headers: HeaderMap,
    body: Json<ConnectorRequest>,
) -> Response {
    let req = body.0;
    match attempt!(name(verb)).as_str() {
        "spec" => run_response(&headers, d.api.connector_spec(req).await).await,
        "check" => run_response(&headers, d.api.connector_check(req).await).await,
        "discover" => run_response(&headers, d.api.connector_discover(req).await).await,
        "install" => run_response(&headers, d.api.connector_install(req).await).await,
        "pull" => run_response(&headers, d.api.connector_pull(req).await).await,
        other => error(
            ApiError::not_found(format!("connectors have no `{other}`"))
                .hint("spec, check, discover, install or pull"),
        ),
    }
}

/// Removes finished or orphaned connector containers.
#[utoipa::path(post, path = "/api/v1/system/sweep", tag = "daemon", responses((status = 200, description = "What was removed, and what kept.", body = SweepReport)))]
async fn sweep(State(d): State<Shared>) -> Response {
    answer(d.api.system_sweep().await)
}

// -- sources and destinations -----------------------------------------------------

async fn actor_list(d: Shared, kind: ActorKind, q: Params) -> Response {
    let q = attempt!(params(q));
    let show = attempt!(flag(&q, "show_secrets"));
    answer(d.api.actor_list(kind, show).await)
}

async fn actor_get(d: Shared, kind: ActorKind, n: Name, q: Params) -> Response {
    let n = attempt!(name(n));
    let q = attempt!(params(q));
    let show = attempt!(flag(&q, "show_secrets"));
    answer(d.api.actor_get(kind, &n, show).await)
}

async fn actor_create(d: Shared, kind: ActorKind, h: HeaderMap, mut req: ActorCreate) -> Response {
    req.kind = kind;
    run_response(&h, d.api.actor_create(req).await).await
}

async fn actor_update(
    d: Shared,
    kind: ActorKind,
    n: Name,
    h: HeaderMap,
    mut req: ActorUpdate,
) -> Response {
    req.kind = kind;
    req.name = attempt!(name(n));
    run_response(&h, d.api.actor_update(req).await).await
}

async fn actor_delete(d: Shared, kind: ActorKind, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.actor_delete(kind, &n).await.map(|()| None::<()>))
}

async fn actor_check(d: Shared, kind: ActorKind, n: Name, h: HeaderMap, o: RunOptions) -> Response {
    let req = ActorRun {
        kind,
        name: attempt!(name(n)),
        options: o,
    };
    run_response(&h, d.api.actor_check(req).await).await
}

/// The handlers of one kind, each a line over the shared ones.
macro_rules! actor_handlers {
    (
        $kind:expr, $tag:tt, $all:tt, $one:tt, $check_path:tt,
        $list:ident, $get:ident, $create:ident, $update:ident, $delete:ident, $check:ident
    ) => {
        /// All of this kind.
        #[utoipa::path(get, path = $all, tag = $tag, params(("show_secrets" = Option<bool>, Query, description = "Show secret config fields instead of their mask.")), responses((status = 200, description = "All of them, by name.", body = Vec<Actor>)))]
        async fn $list(State(d): State<Shared>, q: Params) -> Response {
            actor_list(d, $kind, q).await
        }
        /// One by name.
        #[utoipa::path(get, path = $one, tag = $tag, params(("name" = String, Path, description = "Its name, or its id (a UUID)."), ("show_secrets" = Option<bool>, Query, description = "Show secret config fields instead of their mask.")), responses((status = 200, description = "It.", body = Actor)))]
        async fn $get(State(d): State<Shared>, n: Name, q: Params) -> Response {
            actor_get(d, $kind, n, q).await
        }
        /// Saves a new one, its config checked against its connector's spec
        /// (and by the connector's check, unless `check` is false). The body
        /// may leave `kind` out: the path's is taken.
        #[utoipa::path(post, path = $all, tag = $tag, request_body = ActorCreate, responses((status = 200, description = "It, saved. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((Actor = "application/json"), (RunLine<Actor> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
        async fn $create(State(d): State<Shared>, h: HeaderMap, b: Json<ActorCreate>) -> Response {
            actor_create(d, $kind, h, b.0).await
        }
        /// Changes its connector or config; what is absent stays. The body
        /// may leave `kind` and `name` out: the path's are taken.
        #[utoipa::path(patch, path = $one, tag = $tag, params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body = ActorUpdate, responses((status = 200, description = "It, changed. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((Actor = "application/json"), (RunLine<Actor> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
        async fn $update(
            State(d): State<Shared>,
            n: Name,
            h: HeaderMap,
            b: Json<ActorUpdate>,
        ) -> Response {
            actor_update(d, $kind, n, h, b.0).await
        }
        /// Deletes it; refused while a connection uses it.
        #[utoipa::path(delete, path = $one, tag = $tag, params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "Done.", body = openapi::Null)))]
        async fn $delete(State(d): State<Shared>, n: Name) -> Response {
            actor_delete(d, $kind, n).await
        }
        /// Runs its connector's check with its config.
        #[utoipa::path(post, path = $check_path, tag = $tag, params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body = RunOptions, responses((status = 200, description = "The check's result. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((CheckResult = "application/json"), (RunLine<CheckResult> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
        async fn $check(
            State(d): State<Shared>,
            n: Name,
            h: HeaderMap,
            b: Json<RunOptions>,
        ) -> Response {
            actor_check(d, $kind, n, h, b.0).await
        }
    };
}

actor_handlers!(
    ActorKind::Source,
    "sources",
    "/api/v1/sources",
    "/api/v1/sources/{name}",
    "/api/v1/sources/{name}/check",
    source_list,
    source_get,
    source_create,
    source_update,
    source_delete,
    source_check
);
actor_handlers!(
    ActorKind::Destination,
    "destinations",
    "/api/v1/destinations",
    "/api/v1/destinations/{name}",
    "/api/v1/destinations/{name}/check",
    destination_list,
    destination_get,
    destination_create,
    destination_update,
    destination_delete,
    destination_check
);

/// Runs the source's discover: the streams it offers.
#[utoipa::path(post, path = "/api/v1/sources/{name}/discover", tag = "sources", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body = RunOptions, responses((status = 200, description = "Its catalog. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((AirbyteCatalog = "application/json"), (RunLine<AirbyteCatalog> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn source_discover(
    State(d): State<Shared>,
    n: Name,
    h: HeaderMap,
    b: Json<RunOptions>,
) -> Response {
    let req = ActorRun {
        kind: ActorKind::Source,
        name: attempt!(name(n)),
        options: b.0,
    };
    run_response(&h, d.api.source_discover(req).await).await
}

// -- connections --------------------------------------------------------------------

/// Every connection. The answer is kept while the store's revision stays
/// where it was (any change a listing shows moves it, whichever process
/// made it), and its `ETag` names that revision.
#[utoipa::path(get, path = "/api/v1/connections", tag = "connections", responses((status = 200, description = "All of them, by name.", body = Vec<Connection>, headers(("etag" = String, description = "The store's revision the answer was made at."))), (status = 304, description = "Unchanged since the `If-None-Match` given.")))]
async fn connection_list(State(d): State<Shared>, h: HeaderMap) -> Response {
    let store = attempt!(d.api.service().store().await);
    let revision = attempt!(store.revision().await.map_err(ApiError::from));
    let etag = format!("\"{}-{revision}\"", env!("CARGO_PKG_VERSION"));
    let unchanged = h
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match d.connections.get(revision) {
            Some(body) => body,
            None => {
                let list = attempt!(d.api.connection_list().await);
                let body = Bytes::from(attempt!(
                    serde_json::to_vec(&list).map_err(|e| ApiError::internal(e.to_string()))
                ));
                d.connections.keep(revision, body.clone());
                body
            }
        };
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// One connection, with its configured catalog.
#[utoipa::path(get, path = "/api/v1/connections/{name}", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "It.", body = Connection)))]
async fn connection_get(State(d): State<Shared>, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.connection_get(&n).await)
}

/// Saves a new connection, its catalog discovered from its source.
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionCreate, responses((status = 200, description = "It, saved. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((Connection = "application/json"), (RunLine<Connection> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn connection_create(
    State(d): State<Shared>,
    h: HeaderMap,
    b: Json<ConnectionCreate>,
) -> Response {
    run_response(&h, d.api.connection_create(b.0).await).await
}

/// Changes a connection; what the patch leaves out stays. The body's
/// `name` is the path's.
#[utoipa::path(patch, path = "/api/v1/connections/{name}", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body = ConnectionUpdate, responses((status = 200, description = "It, changed. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((Connection = "application/json"), (RunLine<Connection> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn connection_update(
    State(d): State<Shared>,
    n: Name,
    h: HeaderMap,
    b: Json<ConnectionUpdate>,
) -> Response {
    let mut req = b.0;
    req.name = attempt!(name(n));
    run_response(&h, d.api.connection_update(req).await).await
}

/// Deletes a connection, its state and its jobs.
#[utoipa::path(delete, path = "/api/v1/connections/{name}", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn connection_delete(State(d): State<Shared>, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.connection_delete(&n).await.map(|()| None::<()>))
}

async fn set_status(d: Shared, n: Name, status: ConnectionStatus) -> Response {
    let n = attempt!(name(n));
    answer(
        d.api
            .connection_set_status(&n, status)
            .await
            .map(|()| None::<()>),
    )
}

/// Lets a connection run, on its schedule or when asked.
#[utoipa::path(post, path = "/api/v1/connections/{name}/enable", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn connection_enable(State(d): State<Shared>, n: Name) -> Response {
    set_status(d, n, ConnectionStatus::Active).await
}

/// Stops a connection from running.
#[utoipa::path(post, path = "/api/v1/connections/{name}/disable", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn connection_disable(State(d): State<Shared>, n: Name) -> Response {
    set_status(d, n, ConnectionStatus::Inactive).await
}

/// Queues a job of a connection for the daemon's runner: with
/// `?detach=true` the queued job at once, else the job followed to its
/// end like any run. The body's `connection` is the path's (the body may
/// leave it out), and its `kind` is `sync` unless given.
#[utoipa::path(post, path = "/api/v1/connections/{name}/jobs", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID)."), ("detach" = Option<bool>, Query, description = "Answer the queued job at once.")), request_body = JobRequest, responses((status = 200, description = "The job, ended (or queued, with `detach`). Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((JobDetail = "application/json"), (RunLine<JobDetail> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id.")))))]
async fn connection_job(
    State(d): State<Shared>,
    n: Name,
    q: Params,
    h: HeaderMap,
    b: Json<JobRequest>,
) -> Response {
    let mut req = b.0;
    req.connection = attempt!(name(n));
    let q = attempt!(params(q));
    let detach = attempt!(flag(&q, "detach"));
    let job = attempt!(
        d.api
            .service()
            .enqueue_job(&req, crate::api::JobTrigger::Manual)
            .await
    );
    d.runner.wake();
    if detach {
        return answer(Ok(job));
    }
    run_response(&h, follow_job(d.clone(), job.id)).await
}

/// A queued job as a run: the events of its runner while it runs here (a
/// job another daemon runs is looked at until it ends), then the job.
fn follow_job(d: Shared, id: i64) -> Run<JobDetail> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = tx.send(Event::JobStarted { job: id });
    let answer = async move {
        loop {
            if let Some(mut events) = d.runner.subscribe(id) {
                loop {
                    tokio::select! {
                        event = events.recv() => match event {
                            Ok(Event::JobStarted { .. }) => {}
                            Ok(event) => {
                                let _ = tx.send(event);
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        },
                        _ = d.stopping.cancelled() => break,
                    }
                }
            }
            let detail = d.api.job_get(id.into()).await?;
            if detail.job.ended_at.is_some() {
                return Ok(detail);
            }
            if d.stopping.is_cancelled() {
                return Err(ApiError::unreachable(format!(
                    "the daemon is stopping; job {id} goes on when a daemon runs again"
                ))
                .hint(format!("`sluice job get {id}` shows it")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    Run::new(
        crate::connector::registry::new_run_id(),
        rx,
        Box::pin(answer),
    )
}

/// Cancels a queued or running job; the job as it stands after.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path, description = "The job's number, or its id (a UUID).")), responses((status = 200, description = "The job: cancelled, or running while it stops.", body = Job)))]
async fn job_cancel(State(d): State<Shared>, id: Name) -> Response {
    let job = attempt!(id_of(id));
    let id = attempt!(d.api.service().job_number(&job).await);
    answer(d.runner.cancel(id).await)
}

/// A connection's committed state; null before its first.
#[utoipa::path(get, path = "/api/v1/connections/{name}/state", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), responses((status = 200, description = "Its state, or null.", body = Option<ConnectionState>)))]
async fn state_get(State(d): State<Shared>, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.state_get(&n).await)
}

/// Replaces a connection's state, in Airbyte's `--state` form.
#[utoipa::path(put, path = "/api/v1/connections/{name}/state", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body(content = Value, description = "A state in Airbyte's `--state` form."), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn state_set(State(d): State<Shared>, n: Name, b: Json<serde_json::Value>) -> Response {
    let n = attempt!(name(n));
    answer(d.api.state_set(&n, b.0).await.map(|()| None::<()>))
}

/// Clears a connection's state, of some streams or of all.
#[utoipa::path(delete, path = "/api/v1/connections/{name}/state", tag = "connections", params(("name" = String, Path, description = "Its name, or its id (a UUID).")), request_body(content = Option<StateReset>, description = "The streams to reset; all when absent or empty."), responses((status = 200, description = "Done.", body = openapi::Null)))]
async fn state_reset(State(d): State<Shared>, n: Name, b: Json<StateReset>) -> Response {
    let n = attempt!(name(n));
    answer(
        d.api
            .state_reset(&n, &b.0.streams)
            .await
            .map(|()| None::<()>),
    )
}

// -- jobs, apply, export ----------------------------------------------------------

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(("connection" = Option<String>, Query, description = "Only this connection's (its name or id)."), ("status" = Option<JobStatus>, Query, description = "Only those in this status."), ("limit" = Option<i64>, Query, minimum = 0, description = "At most this many; 0 for all.")), responses((status = 200, description = "The jobs.", body = Vec<Job>)))]
async fn job_list(State(d): State<Shared>, q: Params) -> Response {
    let q = attempt!(params(q));
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(attempt!(s
            .parse::<JobStatus>()
            .map_err(|e| ApiError::user(e.to_string())))),
    };
    let limit = match q.get("limit") {
        None => 0,
        Some(l) => attempt!(l
            .parse::<i64>()
            .ok()
            .filter(|l| *l >= 0)
            .ok_or_else(|| ApiError::user(format!("`limit` takes a count, not `{l}`")))),
    };
    answer(
        d.api
            .job_list(JobFilter {
                connection: q.get("connection").cloned(),
                status,
                limit,
            })
            .await,
    )
}

/// A job with its attempts.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "The job's number, or its id (a UUID).")), responses((status = 200, description = "The job.", body = JobDetail)))]
async fn job_get(State(d): State<Shared>, id: Name) -> Response {
    let id = attempt!(id_of(id));
    answer(d.api.job_get(id).await)
}

/// The log of a job's attempt.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", tag = "jobs", params(("id" = String, Path, description = "The job's number, or its id (a UUID)."), ("attempt" = Option<i64>, Query, description = "Its number; the last when absent."), ("follow" = Option<bool>, Query, description = "Stream the log as it is written (text/plain), to the job's end.")), responses((status = 200, description = "The log; with `follow`, its text as it is written.", content((JobLog = "application/json"), (String = "text/plain")))))]
async fn job_logs(State(d): State<Shared>, id: Name, q: Params) -> Response {
    let id = attempt!(id_of(id));
    let q = attempt!(params(q));
    let attempt_number = match q.get("attempt") {
        None => None,
        Some(a) => Some(attempt!(a.parse::<i64>().map_err(|_| ApiError::user(
            format!("`attempt` takes a number, not `{a}`")
        )))),
    };
    if attempt!(flag(&q, "follow")) {
        let stream = attempt!(d.api.job_logs_follow(id, attempt_number).await);
        return (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    answer(d.api.job_logs(id, attempt_number).await)
}

/// Makes the store match a setup: creates, updates and (with `prune`)
/// deletes sources, destinations and connections.
#[utoipa::path(post, path = "/api/v1/apply", tag = "setup", request_body = ApplyRequest, responses((status = 200, description = "What changed, or would. Its answer, or with `Accept: application/x-ndjson` JSON lines as it runs.", content((ApplyPlan = "application/json"), (RunLine<ApplyPlan> = "application/x-ndjson")), headers(("sluice-run" = String, description = "The run's id, to cancel it.")))))]
async fn apply(State(d): State<Shared>, h: HeaderMap, b: Json<ApplyRequest>) -> Response {
    run_response(&h, d.api.apply(b.0).await).await
}

/// Everything as a setup, secrets masked.
#[utoipa::path(get, path = "/api/v1/export", tag = "setup", responses((status = 200, description = "The setup.", body = Setup)))]
async fn export(State(d): State<Shared>) -> Response {
    answer(d.api.export().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_a_client_or_server_status() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::TooLarge,
            ErrorCode::Failed,
        ] {
            assert!(status_of(code).is_client_error(), "{code:?}");
        }
        assert_eq!(
            status_of(ErrorCode::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

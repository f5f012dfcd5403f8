//! The daemon's HTTP API: every operation of the `Api` under `/api/v1`,
//! each handler a few lines over the same in-process `Local` the CLI uses
//! without a daemon, so an answer is the same whichever way it is asked.
//!
//! A long operation answers with JSON lines (events, then the answer or
//! the error) when asked for `application/x-ndjson`, else with its answer
//! alone once it ends. It runs on a task of its own: a client that goes
//! away does not stop a job. Every error is `{"error": ApiError}` with an
//! HTTP status from its code; an internal one says nothing of the inside.
//! On TCP every request needs the daemon's token; the Unix socket is
//! guarded by its file mode instead.

use crate::api::remote::{ErrorBody, RunLine, StateReset, RUN_HEADER, RUN_MEDIA_TYPE};
use crate::api::{
    ActorCreate, ActorKind, ActorRun, ActorUpdate, Api, ApiError, ApplyRequest, ConnectionCreate,
    ConnectionStatus, ConnectionUpdate, ConnectorRequest, DaemonStatus, ErrorCode, Event, Health,
    JobDetail, JobFilter, JobRequest, JobStatus, Local, NextRun, Run, RunOptions, SyncRequest,
};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

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
}

type Shared = Arc<Daemon>;

/// The routes, without the token check (the Unix socket's).
pub fn router(daemon: Shared) -> Router {
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
        .route("/export", get(export));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(with_version))
        .with_state(daemon)
}

/// The routes behind a bearer token (TCP).
pub fn router_with_token(daemon: Shared, token: String) -> Router {
    router(daemon).layer(middleware::from_fn_with_state(
        Arc::new(token),
        require_token,
    ))
}

async fn require_token(State(token): State<Arc<String>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq::constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let mut resp = error(ApiError::new(
                ErrorCode::Unauthorized,
                "this daemon wants its token: `Authorization: Bearer TOKEN`",
            ));
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

async fn with_version(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        crate::api::remote::VERSION_HEADER,
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
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

fn id_of(p: Name) -> Result<i64, ApiError> {
    let text = name(p)?;
    text.parse()
        .map_err(|_| ApiError::user(format!("`{text}` is not a job id")))
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

async fn not_found() -> Response {
    error(ApiError::not_found("no such route").hint("the routes are under /api/v1"))
}

async fn healthz() -> Response {
    answer(Ok(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

async fn readyz(State(d): State<Shared>) -> Response {
    match d.api.db_status().await {
        Ok(_) => answer(Ok(serde_json::json!({"status": "ready"}))),
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

async fn metrics(State(d): State<Shared>) -> Response {
    let store = attempt!(d.api.service().store().await);
    let figures = attempt!(store
        .figures(&super::metrics::ATTEMPT_BOUNDS_MS)
        .await
        .map_err(ApiError::from));
    let scrape = super::metrics::Scrape {
        figures,
        uptime_s: d.started.elapsed().as_secs(),
        scheduler_lag_s: None,
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

async fn db_status(State(d): State<Shared>) -> Response {
    answer(d.api.db_status().await)
}

async fn sync(State(d): State<Shared>, headers: HeaderMap, body: Json<SyncRequest>) -> Response {
    run_response(&headers, d.api.sync(body.0).await).await
}

async fn cancel(State(d): State<Shared>, id: Name, q: Params) -> Response {
    let id = attempt!(name(id));
    let q = attempt!(params(q));
    let now = attempt!(flag(&q, "now"));
    answer(d.api.cancel(&id, now).await.map(|()| None::<()>))
}

async fn connector_list(State(d): State<Shared>) -> Response {
    answer(d.api.connector_list().await)
}

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
    ($kind:expr, $list:ident, $get:ident, $create:ident, $update:ident, $delete:ident, $check:ident) => {
        async fn $list(State(d): State<Shared>, q: Params) -> Response {
            actor_list(d, $kind, q).await
        }
        async fn $get(State(d): State<Shared>, n: Name, q: Params) -> Response {
            actor_get(d, $kind, n, q).await
        }
        async fn $create(State(d): State<Shared>, h: HeaderMap, b: Json<ActorCreate>) -> Response {
            actor_create(d, $kind, h, b.0).await
        }
        async fn $update(
            State(d): State<Shared>,
            n: Name,
            h: HeaderMap,
            b: Json<ActorUpdate>,
        ) -> Response {
            actor_update(d, $kind, n, h, b.0).await
        }
        async fn $delete(State(d): State<Shared>, n: Name) -> Response {
            actor_delete(d, $kind, n).await
        }
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
    source_list,
    source_get,
    source_create,
    source_update,
    source_delete,
    source_check
);
actor_handlers!(
    ActorKind::Destination,
    destination_list,
    destination_get,
    destination_create,
    destination_update,
    destination_delete,
    destination_check
);

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

async fn connection_list(State(d): State<Shared>) -> Response {
    answer(d.api.connection_list().await)
}

async fn connection_get(State(d): State<Shared>, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.connection_get(&n).await)
}

async fn connection_create(
    State(d): State<Shared>,
    h: HeaderMap,
    b: Json<ConnectionCreate>,
) -> Response {
    run_response(&h, d.api.connection_create(b.0).await).await
}

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

async fn connection_enable(State(d): State<Shared>, n: Name) -> Response {
    set_status(d, n, ConnectionStatus::Active).await
}

async fn connection_disable(State(d): State<Shared>, n: Name) -> Response {
    set_status(d, n, ConnectionStatus::Inactive).await
}

/// Queues a job for the runner; answers the job at once with
/// `?detach=true`, else follows it to its end like any run.
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
    let job = attempt!(d.api.service().enqueue_job(&req).await);
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
            let detail = d.api.job_get(id).await?;
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

async fn job_cancel(State(d): State<Shared>, id: Name) -> Response {
    let id = attempt!(id_of(id));
    answer(d.runner.cancel(id).await)
}

async fn state_get(State(d): State<Shared>, n: Name) -> Response {
    let n = attempt!(name(n));
    answer(d.api.state_get(&n).await)
}

async fn state_set(State(d): State<Shared>, n: Name, b: Json<serde_json::Value>) -> Response {
    let n = attempt!(name(n));
    answer(d.api.state_set(&n, b.0).await.map(|()| None::<()>))
}

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

async fn job_get(State(d): State<Shared>, id: Name) -> Response {
    let id = attempt!(id_of(id));
    answer(d.api.job_get(id).await)
}

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

async fn apply(State(d): State<Shared>, h: HeaderMap, b: Json<ApplyRequest>) -> Response {
    run_response(&h, d.api.apply(b.0).await).await
}

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

//! What happens when a job ends, besides recording it: the connection's
//! webhooks are called (on failure, on success, when it is disabled), and
//! a connection that failed too often in a row is disabled (Airbyte's
//! rule: disabled at 30 failed jobs in a row, with a warning at 20).
//!
//! Webhooks never hold a job up: each call is spawned, with a timeout and
//! retries, and few run at once. The body is Slack-compatible (`text`)
//! with the job's details in `data`. A webhook's URL never reaches a log:
//! it may hold a token.

use super::Service;
use crate::api::{ApiError, ConnectionStatus, JobStatus};
use crate::store::{Connection, Job, Store};
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Failed jobs in a row that disable a connection.
const DISABLE_AFTER: i64 = 30;
/// Failed jobs in a row that warn it will be.
const WARN_AFTER: i64 = 20;
/// Waits before each retry of a webhook that failed.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(25),
];
/// Webhook calls under way at once; the others wait their turn.
const AT_ONCE: usize = 8;

/// The thresholds: `SLUICE_AUTO_DISABLE_AFTER=N` (hidden, for tests)
/// disables at N and warns at two thirds of N.
fn thresholds() -> (i64, i64) {
    match std::env::var("SLUICE_AUTO_DISABLE_AFTER")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(n) if n > 0 => (n, n * 2 / 3),
        _ => (DISABLE_AFTER, WARN_AFTER),
    }
}

/// What a webhook is told.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Slack's field: one line people read.
    pub text: String,
    pub data: NoticeData,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeData {
    /// `failure`, `success`, `disable` or `disable_warning`.
    pub event: &'static str,
    pub connection: String,
    pub source: String,
    pub destination: String,
    pub job: i64,
    pub success: bool,
    /// Unix ms.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub records_emitted: i64,
    pub bytes_emitted: i64,
    pub records_committed: i64,
    /// The last attempt's failure, when the job failed.
    pub error: Option<NoticeError>,
    /// The connection's failed jobs in a row, this one included.
    pub failures_in_a_row: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeError {
    pub message: String,
    pub origin: String,
    pub failure_type: String,
}

impl Service {
    /// After a job's end is recorded: disables its connection when it has
    /// failed too often, and calls the webhooks. The calls are spawned;
    /// their handles are for a caller about to exit (`connection sync` in
    /// its own process) that wants them done first.
    pub async fn job_ended(&self, id: i64) -> Vec<JoinHandle<()>> {
        match self.job_ended_inner(id).await {
            Ok(calls) => calls,
            Err(e) => {
                tracing::warn!(job = id, error = %e.message, "Cannot notify of the job's end.");
                Vec::new()
            }
        }
    }

    async fn job_ended_inner(&self, id: i64) -> Result<Vec<JoinHandle<()>>, ApiError> {
        let store = self.store().await?.clone();
        let Some(job) = store.get_job(id).await? else {
            return Ok(Vec::new());
        };
        if !matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
            return Ok(Vec::new());
        }
        let Some(c) = store.get_connection(&job.connection).await? else {
            return Ok(Vec::new());
        };
        let (disable_at, warn_at) = thresholds();
        let failures = match job.status {
            JobStatus::Failed => store.failures_in_a_row(c.id, disable_at).await?,
            _ => 0,
        };
        let data = notice_data(&store, &job, &c, failures).await?;
        let mut calls = Vec::new();
        let n = &c.notifications;
        if job.status == JobStatus::Failed {
            let why = data
                .error
                .as_ref()
                .map(|e| format!(": {}", e.message))
                .unwrap_or_default();
            let text = format!(
                "Sync of connection `{}` failed (job {}){why}",
                c.name, job.id
            );
            calls.extend(send(&n.on_failure, "failure", text, &data));
            if failures >= disable_at && c.status == ConnectionStatus::Active {
                store
                    .set_connection_status(&c.name, ConnectionStatus::Inactive)
                    .await?;
                tracing::warn!(
                    connection = %c.name,
                    failures,
                    "Connection disabled: its jobs failed too often in a row."
                );
                let text = format!(
                    "Connection `{}` was disabled: its last {failures} jobs failed. \
                     Enable it again with `sluice connection enable {}`.",
                    c.name, c.name
                );
                calls.extend(send(&n.on_disable, "disable", text, &data));
            } else if failures == warn_at {
                let text = format!(
                    "Connection `{}` failed {failures} times in a row; it will be disabled \
                     after {disable_at}.",
                    c.name
                );
                calls.extend(send(&n.on_disable, "disable_warning", text, &data));
            }
        } else {
            let text = format!(
                "Sync of connection `{}` succeeded (job {}): {} records committed.",
                c.name, job.id, data.records_committed
            );
            calls.extend(send(&n.on_success, "success", text, &data));
        }
        Ok(calls)
    }
}

async fn notice_data(
    store: &Store,
    job: &Job,
    c: &Connection,
    failures: i64,
) -> Result<NoticeData, ApiError> {
    let attempts = store.list_attempts(job.id).await?;
    let failure = if job.status == JobStatus::Failed {
        attempts.iter().rev().find_map(|a| a.failure.clone())
    } else {
        None
    };
    Ok(NoticeData {
        event: "",
        connection: c.name.clone(),
        source: c.source.clone(),
        destination: c.destination.clone(),
        job: job.id,
        success: job.status == JobStatus::Succeeded,
        started_at: job.started_at,
        finished_at: job.ended_at,
        records_emitted: attempts.iter().map(|a| a.records).sum(),
        bytes_emitted: attempts.iter().map(|a| a.bytes).sum(),
        records_committed: attempts.iter().map(|a| a.records_committed).sum(),
        error: failure.map(|f| NoticeError {
            message: f.message,
            origin: f.origin.to_string(),
            failure_type: f.failure_type.to_string(),
        }),
        failures_in_a_row: failures,
    })
}

/// Spawns a call of each URL with this notice.
fn send(
    urls: &[String],
    event: &'static str,
    text: String,
    data: &NoticeData,
) -> Vec<JoinHandle<()>> {
    let notice = Arc::new(Notice {
        text,
        data: NoticeData {
            event,
            ..data.clone()
        },
    });
    urls.iter()
        .map(|url| tokio::spawn(deliver(url.clone(), notice.clone())))
        .collect()
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default()
    })
}

/// Calls one webhook, retrying with backoff; gives up with a warning.
async fn deliver(url: String, notice: Arc<Notice>) {
    static AT_ONCE_PERMITS: Semaphore = Semaphore::const_new(AT_ONCE);
    let Ok(_permit) = AT_ONCE_PERMITS.acquire().await else {
        return;
    };
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let body = match serde_json::to_vec(&*notice) {
        Ok(b) => b,
        Err(e) => return tracing::warn!(error = %e, "Cannot write a webhook's body."),
    };
    let mut why = String::new();
    for (try_no, wait) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
        tokio::time::sleep(wait).await;
        match client()
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(host, event = notice.data.event, "Webhook called.");
                return;
            }
            Ok(r) => why = format!("it answered {}", r.status()),
            // Without the URL, which may hold a token.
            Err(e) => why = e.without_url().to_string(),
        }
        tracing::debug!(host, attempt = try_no + 1, reason = %why, "Webhook call failed.");
    }
    tracing::warn!(
        host,
        event = notice.data.event,
        job = notice.data.job,
        reason = %why,
        "Cannot call a webhook; giving up."
    );
}

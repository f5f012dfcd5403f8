//! Queued jobs: queueing one for a daemon's runner, running one a runner
//! leased (the same attempts as `connection_job`, recorded the same way),
//! and cancelling one wherever it is.
//!
//! Nothing here waits for a queued job or decides when a job runs: that
//! is the runner's (`crate::daemon::runner`).

use super::{state, JobView, Prepared, Service};
use crate::api::{
    ApiError, ConnectionStatus, Failure, FailureOrigin, FailureType, JobKind, JobRequest,
    JobStatus, JobTrigger,
};
use crate::connector::config::Secrets;
use crate::service::Call;
use crate::store::{self, CancelRequest, Job};

impl Service {
    /// Queues a job of a connection for a daemon's runner, after the checks
    /// `connection_job` makes: the connection exists, is active (unless the
    /// job is a reset), and has no job queued or running.
    pub async fn enqueue_job(
        &self,
        req: &JobRequest,
        trigger: JobTrigger,
    ) -> Result<JobView, ApiError> {
        let c = self.connection(&req.connection).await?;
        check_runnable(&c, req.kind)?;
        state::selected(&c.catalog, &req.streams)?;
        let store = self.store().await?.clone();
        self.refuse_active(&store, &c).await?;
        let request = serde_json::to_string(req).expect("a job request serializes");
        let job = match store.enqueue_job(c.id, req.kind, trigger, &request).await {
            Err(store::StoreError::JobRunning { .. }) => {
                // Another caller queued or started one since we looked;
                // say which.
                self.refuse_active(&store, &c).await?;
                store.enqueue_job(c.id, req.kind, trigger, &request).await
            }
            other => other,
        }?;
        tracing::info!(job = job.id, connection = %c.name, kind = %req.kind, "Job queued.");
        Ok(JobView::of(&job))
    }

    /// Refuses while the connection has a queued job, or a running one
    /// whose process still runs (ending those whose process is gone).
    pub(super) async fn refuse_active(
        &self,
        store: &store::Store,
        c: &store::Connection,
    ) -> Result<(), ApiError> {
        let queued = store
            .list_jobs(&store::JobFilter {
                connection_id: Some(c.id),
                status: Some(JobStatus::Pending),
                limit: 1,
            })
            .await?;
        if let Some(job) = queued.first() {
            return Err(ApiError::conflict(format!(
                "connection `{}` already has a queued job ({}, job {})",
                c.name, job.kind, job.id
            ))
            .hint(format!(
                "a daemon runs it (`sluice daemon start` if none runs; `sluice job logs -f {id}` \
                 follows it), or cancel it with `sluice job cancel {id}`",
                id = job.id
            )));
        }
        self.end_orphans(store, c).await
    }

    /// Cancels a job: a queued one at once; a running one is stopped by its
    /// runner within a heartbeat (this daemon's or another's), its
    /// connectors stopped and its attempt recorded as cancelled. The job as
    /// it stands after the request.
    pub async fn job_cancel(&self, id: i64) -> Result<JobView, ApiError> {
        let store = self.store().await?;
        match store.request_cancel(id).await? {
            CancelRequest::Dequeued => {
                tracing::info!(job = id, "Queued job cancelled.");
            }
            CancelRequest::Flagged => {
                tracing::info!(job = id, "Cancel of a running job requested.");
            }
            CancelRequest::Unleased => {
                let job = store.get_job(id).await?;
                let who = job
                    .and_then(|j| j.owner)
                    .map(|o| super::shown(&o))
                    .unwrap_or_else(|| "another process".into());
                return Err(ApiError::conflict(format!(
                    "job {id} runs in `sluice connection sync` ({who}), not in a daemon"
                ))
                .hint("stop it where it runs (Ctrl-C)"));
            }
            CancelRequest::Ended(status) => {
                return Err(
                    ApiError::conflict(format!("job {id} already ended ({status})"))
                        .hint(format!("`sluice job get {id}` shows how it ended")),
                );
            }
            CancelRequest::NotFound => {
                return Err(ApiError::not_found(format!("there is no job {id}"))
                    .hint("`sluice job list` shows the jobs"));
            }
        }
        Ok(self.job_get(id).await?.job)
    }

    /// Runs a job a runner has just leased, to its end: its status, which
    /// the runner records (it may have lost the lease meanwhile). Attempts
    /// left running by a runner that died are first recorded as failed,
    /// and the job goes on from the state they committed.
    pub async fn run_leased_job(&self, job: &Job, call: &Call) -> Result<JobStatus, ApiError> {
        let store = self.store().await?.clone();
        let killed = store
            .fail_running_attempts(
                job.id,
                &Failure::new(
                    FailureOrigin::Platform,
                    FailureType::SystemError,
                    "the sluice daemon that ran this attempt stopped without ending it \
                     (its lease on the job expired); the next attempt goes on from the \
                     last committed state",
                ),
            )
            .await?;
        if killed > 0 {
            tracing::warn!(
                job = job.id,
                attempts = killed,
                "Took over a job whose runner stopped; its running attempt is recorded as failed."
            );
        }
        if store.cancel_requested(job.id).await? {
            return Ok(JobStatus::Cancelled);
        }
        let req = match store.job_request(job.id).await? {
            Some(text) => serde_json::from_str::<JobRequest>(&text).map_err(|e| {
                ApiError::failed(format!("job {} has a bad stored request: {e}", job.id))
            }),
            None => Ok(JobRequest {
                connection: job.connection.clone(),
                kind: job.kind,
                streams: Vec::new(),
                retry: Default::default(),
                options: Default::default(),
            }),
        };
        let ready = match req {
            Ok(req) => self.ready(job, &req, call).await.map(|r| (req, r)),
            Err(e) => Err(e),
        };
        let (req, (c, reset_streams, prepared)) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                // A queued job has no caller left to tell: what kept it
                // from running is recorded on it.
                self.record_failure(&store, job, &e, &Secrets::default())
                    .await?;
                return Ok(JobStatus::Failed);
            }
        };
        self.execute(&store, &c, reset_streams, &prepared, job, &req, call)
            .await
    }

    /// What a leased job runs against, checked again now that it runs:
    /// the connection may have changed while the job waited.
    async fn ready(
        &self,
        job: &Job,
        req: &JobRequest,
        call: &Call,
    ) -> Result<
        (
            store::Connection,
            Vec<crate::protocol::StreamDescriptor>,
            Prepared,
        ),
        ApiError,
    > {
        let c = self.connection(&job.connection).await?;
        check_runnable(&c, req.kind)?;
        let reset_streams = state::selected(&c.catalog, &req.streams)?;
        let prepared = self.prepare(&c, call).await?;
        Ok((c, reset_streams, prepared))
    }
}

/// Clearing data is allowed on an inactive connection; reading is not.
pub(super) fn check_runnable(c: &store::Connection, kind: JobKind) -> Result<(), ApiError> {
    if kind != JobKind::Reset && c.status != ConnectionStatus::Active {
        return Err(
            ApiError::user(format!("connection `{}` is inactive", c.name)).hint(format!(
                "enable it with `sluice connection enable {}`",
                c.name
            )),
        );
    }
    Ok(())
}

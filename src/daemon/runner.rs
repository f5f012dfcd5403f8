//! The job runner: takes queued jobs from the store, at most `max_jobs` at
//! a time, and runs each with the same attempts `sluice connection sync`
//! runs, keeping its lease alive with heartbeats.
//!
//! The store is the queue, so several daemons sharing one PostgreSQL store
//! each run their share and a job runs once. A runner that is killed stops
//! heartbeating: its leases expire and another runner (or this one, after
//! a restart) takes the jobs over, recording the killed attempts as failed
//! and going on from the last committed state. Connector processes die
//! with the daemon (they are spawned with `PR_SET_PDEATHSIG`); connector
//! containers are removed by the sweep each runner makes when it starts
//! and every few minutes after (Airbyte's pod-sweeper).
//!
//! A running job's events (progress, logs, steps, committed states) go to
//! this process's [`Hub`]: whoever follows a job that runs here subscribes
//! there. A job that runs in another daemon has no events here; a follower
//! polls the store (`Service::job_get`) until its status is final.
//!
//! The runner never decides what a job does, nor when one is queued: the
//! service runs it, the scheduler and the API queue it.

use crate::api::{ApiError, Event, FailureOrigin, FailureType, Job as JobView, JobRequest};
use crate::model::{Failure, JobStatus};
use crate::owner::Owner;
use crate::protocol::LogLevel;
use crate::service::{Call, Service};
use crate::store::{Heartbeat, Job, Store};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a runner runs.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Jobs run at once; the others wait queued.
    pub max_jobs: usize,
    /// How long a job stays this runner's without a heartbeat: how long a
    /// killed runner's jobs wait before another runner takes them over.
    pub lease: Duration,
    /// How often a running job's lease is extended, and a cancel asked for
    /// elsewhere is seen.
    pub heartbeat: Duration,
    /// How often the store is asked for queued jobs when nothing woke the
    /// runner (a job queued by another process, a lease that expired).
    pub poll: Duration,
    /// Remove connector containers that killed sluice processes left, when
    /// starting and then every `sweep_every`.
    pub sweep: bool,
    pub sweep_every: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            max_jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(2),
            poll: Duration::from_secs(2),
            sweep: true,
            sweep_every: Duration::from_secs(300),
        }
    }
}

/// The running jobs' event streams in this process, by job id.
#[derive(Clone, Default)]
pub struct Hub {
    jobs: Arc<Mutex<HashMap<i64, broadcast::Sender<Event>>>>,
}

/// Events a slow follower may fall behind by before it misses some (it
/// then reads `RecvError::Lagged` and goes on from the newest).
const FOLLOW_BUFFER: usize = 1024;

impl Hub {
    /// The events of a job running in this process from now on; `None`
    /// when it does not run here (queued, ended, or run by another daemon:
    /// poll the store for its status). The stream closes when the job ends.
    pub fn subscribe(&self, job: i64) -> Option<broadcast::Receiver<Event>> {
        let jobs = self.jobs.lock().expect("the hub's lock is never poisoned");
        jobs.get(&job).map(|tx| tx.subscribe())
    }

    fn open(&self, job: i64) -> broadcast::Sender<Event> {
        let (tx, _) = broadcast::channel(FOLLOW_BUFFER);
        let mut jobs = self.jobs.lock().expect("the hub's lock is never poisoned");
        jobs.insert(job, tx.clone());
        tx
    }

    fn close(&self, job: i64) {
        let mut jobs = self.jobs.lock().expect("the hub's lock is never poisoned");
        jobs.remove(&job);
    }
}

/// Runs queued jobs. Cheap to clone; clones share the running jobs.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    service: Service,
    options: RunnerOptions,
    owner: String,
    hub: Hub,
    wake: Notify,
    running: Mutex<HashMap<i64, Call>>,
    /// Set when the grace period is over: running jobs are stopped and go
    /// back to the queue.
    stopping: AtomicBool,
}

impl Runner {
    pub fn new(service: Service, options: RunnerOptions) -> Runner {
        Runner {
            inner: Arc::new(Inner {
                service,
                options: RunnerOptions {
                    max_jobs: options.max_jobs.max(1),
                    ..options
                },
                owner: runner_owner(),
                hub: Hub::default(),
                wake: Notify::new(),
                running: Mutex::new(HashMap::new()),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Who this runner is in the store's `owner` column: this process (see
    /// `crate::owner`) and a runner id of its own.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The running jobs' event streams.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The events of a job this runner runs, from now on (see
    /// [`Hub::subscribe`]).
    pub fn subscribe(&self, job: i64) -> Option<broadcast::Receiver<Event>> {
        self.inner.hub.subscribe(job)
    }

    /// Looks for queued jobs now rather than at the next poll: call it after
    /// queueing one.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The ids of the jobs this runner runs now.
    pub fn running(&self) -> Vec<i64> {
        let running = self.inner.running.lock().expect("never poisoned");
        let mut ids: Vec<i64> = running.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Cancels a job (see `Service::job_cancel`); one running here stops
    /// at once rather than at its next heartbeat.
    pub async fn cancel(&self, id: i64) -> Result<JobView, ApiError> {
        let job = self.inner.service.job_cancel(id).await?;
        let call = self
            .inner
            .running
            .lock()
            .expect("never poisoned")
            .get(&id)
            .cloned();
        if let Some(call) = call {
            call.stop(cancelled());
        }
        Ok(job)
    }

    /// Runs queued jobs until `shutdown`; then takes no new ones, lets the
    /// running ones finish within `grace`, stops those still running (what
    /// they committed is kept, and they go back to the queue, to go on from
    /// there) and returns. An error only when the store cannot be opened.
    pub async fn run(&self, shutdown: CancellationToken, grace: Duration) -> Result<(), ApiError> {
        let inner = &self.inner;
        let store = inner.service.store().await?.clone();
        if inner.options.sweep {
            self.sweep().await;
            let (runner, stop) = (self.clone(), shutdown.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(runner.inner.options.sweep_every) => {}
                    }
                    runner.sweep().await;
                }
            });
        }
        tracing::info!(
            owner = %inner.owner,
            max_jobs = inner.options.max_jobs,
            "The runner takes queued jobs."
        );
        let permits = Arc::new(Semaphore::new(inner.options.max_jobs));
        let mut tasks = JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            match store.claim_job(&inner.owner, inner.options.lease).await {
                Ok(Some(job)) => {
                    tasks.spawn(self.clone().run_job(store.clone(), job, permit));
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "Cannot take a queued job; trying again."),
            }
            drop(permit);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(inner.options.poll) => {}
            }
        }
        if !tasks.is_empty() {
            tracing::info!(
                running = tasks.len(),
                grace = %humantime::format_duration(grace),
                "Stopping: no new jobs; waiting for the running ones."
            );
        }
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            inner.stopping.store(true, Ordering::SeqCst);
            let calls: Vec<Call> = inner
                .running
                .lock()
                .expect("never poisoned")
                .values()
                .cloned()
                .collect();
            tracing::warn!(
                running = calls.len(),
                "The grace period is over: stopping the running jobs; they go back to the queue."
            );
            for call in calls {
                call.stop(Failure::new(
                    FailureOrigin::Platform,
                    FailureType::SystemError,
                    "the daemon stopped; the job goes back to the queue and goes on from \
                     the last committed state",
                ));
            }
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!("The runner stopped.");
        Ok(())
    }

    async fn sweep(&self) {
        let sweep = self.inner.service.system_sweep();
        match tokio::time::timeout(Duration::from_secs(60), sweep).await {
            Ok(Ok(report)) => {
                if !report.removed.is_empty() {
                    tracing::info!(
                        removed = report.removed.len(),
                        "Removed connector containers that stopped sluice processes left."
                    );
                }
            }
            // No container engine is no reason not to run jobs.
            Ok(Err(e)) => tracing::debug!(error = %e.message, "No sweep of connector containers."),
            Err(_) => {
                tracing::warn!("The sweep of connector containers took over a minute; skipped.")
            }
        }
    }

    /// Runs one leased job to its end and records how it ended.
    async fn run_job(self, store: Store, job: Job, _permit: OwnedSemaphorePermit) {
        let inner = &self.inner;
        let id = job.id;
        let options = match store.job_request(id).await {
            Ok(Some(text)) => serde_json::from_str::<JobRequest>(&text)
                .map(|r| r.options)
                .unwrap_or_default(),
            _ => Default::default(),
        };
        let mut options = options;
        // Followers see the log as it is written.
        options.logs.get_or_insert(LogLevel::Info);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let call = Call::new(
            crate::connector::registry::new_run_id(),
            options,
            CancellationToken::new(),
            tx,
        );
        let follow = inner.hub.open(id);
        let forward = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                // Nobody following is fine.
                let _ = follow.send(event);
            }
        });
        inner
            .running
            .lock()
            .expect("never poisoned")
            .insert(id, call.clone());
        call.send(Event::JobStarted { job: id });
        tracing::info!(job = id, connection = %job.connection, "Running a queued job.");

        let lost = Arc::new(AtomicBool::new(false));
        let beating = CancellationToken::new();
        let heart = tokio::spawn(heartbeat(
            store.clone(),
            id,
            inner.owner.clone(),
            inner.options.clone(),
            call.clone(),
            lost.clone(),
            beating.clone(),
        ));
        let ran = inner.service.run_leased_job(&job, &call).await;
        beating.cancel();
        let _ = heart.await;
        if call.cancel.is_cancelled() {
            // Whatever the engine left of the run's connectors.
            crate::connector::registry::stop_run(&call.run).await;
        }
        let mut status = match ran {
            Ok(status) => status,
            Err(e) => {
                tracing::error!(job = id, error = %e.message, "The job could not be recorded.");
                JobStatus::Failed
            }
        };
        let manual = call
            .stop_reason()
            .is_some_and(|f| f.failure_type == FailureType::ManualCancellation);
        if manual && status != JobStatus::Succeeded {
            status = JobStatus::Cancelled;
        }
        let end = if lost.load(Ordering::SeqCst) {
            tracing::warn!(job = id, "Lost the job's lease; another runner has it.");
            Ok(())
        } else if inner.stopping.load(Ordering::SeqCst) && !manual && status == JobStatus::Cancelled
        {
            match store.requeue_job(id, &inner.owner).await {
                Ok(true) => {
                    tracing::info!(job = id, "Job put back in the queue.");
                    Ok(())
                }
                // Someone asked to cancel it meanwhile.
                Ok(false) => store
                    .finish_leased_job(id, &inner.owner, status)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        } else {
            tracing::info!(job = id, status = %status, "Queued job ended.");
            let ended = store.finish_leased_job(id, &inner.owner, status).await;
            if ended.is_ok() {
                // Webhooks and auto-disable, off the job's path.
                let service = inner.service.clone();
                tokio::spawn(async move { drop(service.job_ended(id).await) });
            }
            ended.map(drop)
        };
        if let Err(e) = end {
            // The lease runs out and another runner records it.
            tracing::error!(job = id, error = %e, "Cannot record how the job ended.");
        }
        inner.running.lock().expect("never poisoned").remove(&id);
        inner.hub.close(id);
        drop(call);
        let _ = forward.await;
    }
}

/// Keeps a running job's lease until `done`: stops the job when someone
/// asks to cancel it, or when the lease is lost (then `lost` is set and
/// the job is no longer this runner's to record).
async fn heartbeat(
    store: Store,
    id: i64,
    owner: String,
    options: RunnerOptions,
    call: Call,
    lost: Arc<AtomicBool>,
    done: CancellationToken,
) {
    let mut held_at = Instant::now();
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = tokio::time::sleep(options.heartbeat) => {}
        }
        match store.heartbeat_job(id, &owner, options.lease).await {
            Ok(Heartbeat::Held) => held_at = Instant::now(),
            Ok(Heartbeat::CancelRequested) => {
                held_at = Instant::now();
                if !call.cancel.is_cancelled() {
                    tracing::info!(job = id, "Cancel requested: stopping the job.");
                    call.stop(cancelled());
                }
            }
            Ok(Heartbeat::Lost) => {
                lose(&lost, &call, id);
                return;
            }
            Err(e) => {
                tracing::warn!(job = id, error = %e, "Cannot extend the job's lease.");
                if held_at.elapsed() >= options.lease {
                    lose(&lost, &call, id);
                    return;
                }
            }
        }
    }
}

fn lose(lost: &AtomicBool, call: &Call, id: i64) {
    lost.store(true, Ordering::SeqCst);
    tracing::warn!(job = id, "The job's lease is lost: stopping it here.");
    call.stop(Failure::new(
        FailureOrigin::Platform,
        FailureType::SystemError,
        "this runner lost the job's lease (the store could not be reached, or another \
         runner took the job over)",
    ));
}

fn cancelled() -> Failure {
    Failure::new(
        FailureOrigin::Platform,
        FailureType::ManualCancellation,
        "the job was cancelled",
    )
}

/// This process as an owner, with an id for this runner: two runners in
/// one process hold leases apart.
fn runner_owner() -> String {
    let mut owner = serde_json::to_value(Owner::current()).expect("an owner serializes");
    owner["runner"] = crate::connector::registry::new_run_id().into();
    owner.to_string()
}

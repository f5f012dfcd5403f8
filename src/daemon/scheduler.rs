//! The scheduler: queues a sync of each active connection when its
//! schedule (`every:DURATION`, or `cron:EXPRESSION` in the connection's
//! time zone) falls due.
//!
//! The store is the truth: each look (every `tick`) reads the schedules
//! and the next run times kept beside them, so a connection disabled,
//! deleted or given another schedule fires differently at once, with no
//! restart. A run that falls due while the connection has a job queued or
//! running is skipped (and logged). A scheduler that was down while runs
//! fell due queues one catch-up job, then reckons the next run from now.
//! Only the leader fires (see `crate::store::Leadership`); on a shared
//! PostgreSQL store the others try to take over every `leader_retry`.
//!
//! tokio-cron-scheduler is not used: it keeps its jobs in memory, and the
//! next run time must live in the store for the catch-up and for another
//! daemon to take over; croner reckons the times. The scheduler never runs
//! a job: it queues it for the runner.

use super::runner::Runner;
use crate::api::{ApiError, ErrorCode, JobKind, JobRequest, JobTrigger};
use crate::model::{ConnectionStatus, Schedule};
use crate::service::Service;
use crate::store::{now_ms, Leadership, Scheduled, Store};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// How often the schedules are read.
    pub tick: Duration,
    /// At most this much is added to each run time (spread evenly), so
    /// that connections on one schedule do not all start at once.
    pub jitter: Duration,
    /// How often a scheduler that does not lead tries to.
    pub leader_retry: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            tick: Duration::from_secs(1),
            jitter: Duration::ZERO,
            leader_retry: Duration::from_secs(10),
        }
    }
}

pub struct Scheduler {
    service: Service,
    options: SchedulerOptions,
    runner: Option<Runner>,
    gauges: Gauges,
}

/// What the scheduler says of itself, shared with the server: whether it
/// leads, and how late it fired its last due run.
#[derive(Debug, Clone)]
pub struct Gauges(std::sync::Arc<GaugeValues>);

#[derive(Debug)]
struct GaugeValues {
    leads: AtomicBool,
    /// Milliseconds; negative until a run fires.
    lag_ms: AtomicI64,
}

impl Default for Gauges {
    fn default() -> Self {
        Gauges(std::sync::Arc::new(GaugeValues {
            leads: AtomicBool::new(false),
            lag_ms: AtomicI64::new(-1),
        }))
    }
}

impl Gauges {
    /// Whether this scheduler fires the schedules (on a shared store,
    /// one daemon's does).
    pub fn leads(&self) -> bool {
        self.0.leads.load(Ordering::Relaxed)
    }

    /// How late the last due run fired, in seconds, if one has.
    pub fn lag_seconds(&self) -> Option<f64> {
        let ms = self.0.lag_ms.load(Ordering::Relaxed);
        (ms >= 0).then(|| ms as f64 / 1000.0)
    }
}

impl Scheduler {
    pub fn new(service: Service, options: SchedulerOptions) -> Scheduler {
        Scheduler {
            service,
            options,
            runner: None,
            gauges: Gauges::default(),
        }
    }

    /// Where it says whether it leads and how late it fires.
    pub fn gauges(&self) -> Gauges {
        self.gauges.clone()
    }

    /// Wakes `runner` after each job queued, so it starts without waiting
    /// for its next poll.
    pub fn with_runner(mut self, runner: Runner) -> Scheduler {
        self.runner = Some(runner);
        self
    }

    /// Fires schedules until `shutdown`. An error only when the store
    /// cannot be opened.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<(), ApiError> {
        let store = self.service.store().await?.clone();
        let mut leading: Option<Leadership> = None;
        loop {
            let holds = match &mut leading {
                Some(lead) => Some(lead.holds().await),
                None => None,
            };
            self.gauges
                .0
                .leads
                .store(holds == Some(true), Ordering::Relaxed);
            let wait = match holds {
                Some(true) => {
                    self.tick(&store).await;
                    self.options.tick
                }
                Some(false) => {
                    tracing::warn!(
                        "The scheduler lost its lock on the store; trying to lead again."
                    );
                    leading = None;
                    Duration::ZERO
                }
                None => match store.try_lead().await {
                    Ok(Some(lead)) => {
                        tracing::info!("This scheduler leads: it fires the schedules.");
                        leading = Some(lead);
                        Duration::ZERO
                    }
                    Ok(None) => self.options.leader_retry,
                    Err(e) => {
                        tracing::warn!(error = %e, "Cannot take the scheduler's lock; trying again.");
                        self.options.leader_retry
                    }
                },
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One look at every schedule.
    async fn tick(&self, store: &Store) {
        let connections = match store.scheduled_connections().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot read the schedules; trying again.");
                return;
            }
        };
        for c in connections {
            if let Err(e) = self.look(store, &c).await {
                tracing::warn!(connection = %c.name, error = %e.message, "Cannot fire the schedule.");
            }
        }
    }

    async fn look(&self, store: &Store, c: &Scheduled) -> Result<(), ApiError> {
        let now = now_ms();
        if c.status != ConnectionStatus::Active {
            // Enabled again, it starts afresh: no catch-up of the time off.
            if c.next_run_at.is_some() {
                store.set_next_run(c.id, c.next_run_at, None, None).await?;
            }
            return Ok(());
        }
        let key = schedule_key(&c.schedule);
        let next = |after: i64| next_run(&c.schedule, after, c.id, self.options.jitter);
        let due = match c.next_run_at {
            Some(at) if c.next_run_schedule.as_deref() == Some(key.as_str()) => at,
            // First seen, or given another schedule: reckon from now.
            expected => {
                store
                    .set_next_run(c.id, expected, next(now)?, Some(&key))
                    .await?;
                return Ok(());
            }
        };
        if now < due {
            return Ok(());
        }
        // However many runs fell due while no scheduler looked, one job;
        // the next run is reckoned from now. Moving the time first means
        // two schedulers that both think they lead fire once.
        if !store
            .set_next_run(c.id, Some(due), next(now)?, Some(&key))
            .await?
        {
            return Ok(());
        }
        let req = JobRequest {
            connection: c.name.clone(),
            kind: JobKind::Sync,
            streams: Vec::new(),
            retry: Default::default(),
            options: Default::default(),
        };
        let queued = self.service.enqueue_job(&req, JobTrigger::Scheduled).await;
        (self.gauges.0.lag_ms).store((now_ms() - due).max(0), Ordering::Relaxed);
        match queued {
            Ok(job) => {
                tracing::info!(connection = %c.name, job = job.id, "Scheduled job queued.");
                if let Some(runner) = &self.runner {
                    runner.wake();
                }
            }
            Err(e) if e.code == ErrorCode::Conflict => {
                tracing::info!(
                    connection = %c.name,
                    reason = %e.message,
                    "Scheduled run skipped: the connection has a job queued or running."
                );
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// What a next run time was reckoned from: the schedule and its zone.
fn schedule_key(s: &Schedule) -> String {
    match s.timezone() {
        Some(zone) => format!("{s} @{zone}"),
        None => s.to_string(),
    }
}

/// The first run of `schedule` after `after` (Unix ms), plus the
/// connection's share of `jitter`; `None` for a manual schedule.
pub fn next_run(
    schedule: &Schedule,
    after: i64,
    connection: i64,
    jitter: Duration,
) -> Result<Option<i64>, ApiError> {
    let at = match schedule {
        Schedule::Manual => return Ok(None),
        Schedule::Every(d) => after + d.as_millis() as i64,
        Schedule::Cron {
            expression,
            timezone,
        } => {
            let bad = |what: String| {
                ApiError::user(format!("schedule `{schedule}` ({timezone}): {what}"))
            };
            let cron: croner::Cron = expression.parse().map_err(|e| bad(format!("{e}")))?;
            let zone: chrono_tz::Tz = timezone
                .parse()
                .map_err(|_| bad(format!("`{timezone}` is not a time zone")))?;
            let start = chrono::DateTime::from_timestamp_millis(after)
                .ok_or_else(|| bad(format!("{after} is not a time")))?
                .with_timezone(&zone);
            cron.find_next_occurrence(&start, false)
                .map_err(|e| bad(format!("it has no next run: {e}")))?
                .timestamp_millis()
        }
    };
    // The same share each time, spread over connections by their id.
    let spread = jitter.as_millis() as i64;
    let share = if spread > 0 {
        (connection.wrapping_mul(7919)).rem_euclid(spread)
    } else {
        0
    };
    Ok(Some(at + share))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn cron_runs_in_the_connections_time_zone() {
        let six_hourly = "cron:0 */6 * * *".parse::<Schedule>().unwrap();
        let paris = six_hourly.clone().in_timezone("Europe/Paris").unwrap();
        // 07:30 UTC is 09:30 in Paris in summer: the next is 12:00 Paris,
        // 10:00 UTC; in UTC it is 12:00 UTC.
        let after = at("2024-07-01T07:30:00Z");
        let next = |s: &Schedule| next_run(s, after, 1, Duration::ZERO).unwrap().unwrap();
        assert_eq!(next(&paris), at("2024-07-01T10:00:00Z"));
        assert_eq!(next(&six_hourly), at("2024-07-01T12:00:00Z"));
        assert!(six_hourly.clone().in_timezone("Mars/Olympus").is_err());
        assert!(Schedule::Every(Duration::from_secs(60))
            .in_timezone("Europe/Paris")
            .is_err());
        let hourly = Schedule::Every(Duration::from_secs(3600));
        assert_eq!(
            next_run(&hourly, after, 1, Duration::ZERO).unwrap(),
            Some(after + 3_600_000)
        );
        let jittered = next_run(&hourly, after, 5, Duration::from_secs(60))
            .unwrap()
            .unwrap();
        assert!((after + 3_600_000..after + 3_660_000).contains(&jittered));
        assert_eq!(
            next_run(&Schedule::Manual, after, 1, Duration::ZERO).unwrap(),
            None
        );
        assert_ne!(schedule_key(&paris), schedule_key(&six_hourly));
    }
}

//! The daemon's housekeeping (Airbyte's cron): retention of old jobs and
//! their logs, once at start and then every day.
//!
//! Every daemon runs it, leader or not: deleting is idempotent, and each
//! daemon's log files are in its own data dir. It never decides what is
//! old: `Service::retention` does.

use crate::service::Service;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Deletes jobs that ended more than `keep` ago now, then every day,
/// until `shutdown`.
pub async fn run(service: Service, keep: Duration, shutdown: CancellationToken) {
    loop {
        match service.retention(keep).await {
            Ok(r) if r.jobs > 0 || r.log_dirs > 0 => tracing::info!(
                jobs = r.jobs,
                log_dirs = r.log_dirs,
                retention = %humantime::format_duration(keep),
                "Deleted old jobs and their logs."
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, "Cannot delete old jobs; trying again tomorrow.")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

//! Retention (Airbyte's cron): jobs that ended longer ago than the
//! retention are deleted with their attempts and their log files, keeping
//! the newest job of each connection whatever its age.
//!
//! Deleting is idempotent, so every daemon sharing a store runs it; each
//! also removes the log directories in its own data dir whose jobs are no
//! longer in the store (deleted by another daemon) once they are older than
//! the retention. It never touches a job that has not ended.

use super::Service;
use crate::api::ApiError;
use std::time::{Duration, SystemTime};

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Job rows deleted (with their attempts).
    pub jobs: usize,
    /// Job log directories removed.
    pub log_dirs: usize,
}

impl Service {
    /// Deletes what ended more than `keep` ago (see the module's doc).
    pub async fn retention(&self, keep: Duration) -> Result<RetentionReport, ApiError> {
        let store = self.store().await?.clone();
        let before = crate::store::now_ms() - keep.as_millis() as i64;
        let deleted = store.delete_old_jobs(before).await?;
        let mut report = RetentionReport {
            jobs: deleted.len(),
            log_dirs: 0,
        };
        for id in &deleted {
            if remove_dir(&self.job_log_dir(*id)) {
                report.log_dirs += 1;
            }
        }
        // Directories of jobs another daemon deleted.
        let jobs_dir = self.settings.data_dir.join("jobs");
        let Ok(entries) = std::fs::read_dir(&jobs_dir) else {
            return Ok(report);
        };
        let cutoff = SystemTime::now() - keep;
        let mut old: Vec<i64> = Vec::new();
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()) else {
                continue;
            };
            let modified = e.metadata().and_then(|m| m.modified());
            if modified.is_ok_and(|m| m < cutoff) {
                old.push(id);
            }
        }
        let kept = store.existing_jobs(&old).await?;
        for id in old.into_iter().filter(|id| !kept.contains(id)) {
            if remove_dir(&self.job_log_dir(id)) {
                report.log_dirs += 1;
            }
        }
        Ok(report)
    }

    /// The directory of a job's attempt logs.
    pub(crate) fn job_log_dir(&self, job: i64) -> std::path::PathBuf {
        self.settings.data_dir.join("jobs").join(job.to_string())
    }
}

fn remove_dir(dir: &std::path::Path) -> bool {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "Cannot remove an old job's logs.");
            false
        }
    }
}

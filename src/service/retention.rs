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
        let (deleted, logs) = store.delete_old_jobs(before).await?;
        let mut report = RetentionReport {
            jobs: deleted.len(),
            log_dirs: 0,
        };
        for id in &deleted {
            if remove_dir(&self.job_log_dir(*id)) {
                report.log_dirs += 1;
            }
        }
        // Each attempt's log where it was written: the data dir of the
        // sluice that ran it may not be this one's.
        for log in &logs {
            remove_log(std::path::Path::new(log));
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

/// Removes an attempt's log, and its job's directory once that is empty.
fn remove_log(log: &std::path::Path) {
    match std::fs::remove_file(log) {
        Ok(()) => {
            if let Some(dir) = log.parent() {
                // Refused while the directory holds another attempt's log.
                let _ = std::fs::remove_dir(dir);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(log = %log.display(), error = %e, "Cannot remove an old attempt's log.")
        }
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

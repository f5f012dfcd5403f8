//! Following a job's log while it runs: the bytes of its attempt's log as
//! they are written, then the next attempt's when the job retries, ending
//! once the job has ended and everything written has been given. Read
//! from the log files the attempts write, so it works for any job this
//! machine runs, whoever started it.

use super::Service;
use crate::api::{ApiError, ByteStream, JobDetail};
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// How often a quiet log and its job are looked at again.
const POLL: Duration = Duration::from_millis(250);

struct Follow {
    service: Service,
    job: i64,
    /// Only this attempt, when asked for one.
    only: Option<i64>,
    /// The attempt followed now, its log, and how much of it was given.
    current: Option<(i64, String, u64)>,
}

impl Follow {
    async fn detail(&self) -> Result<JobDetail, ApiError> {
        self.service.job_get(self.job).await
    }

    /// The next bytes, or `None` at the end.
    async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        loop {
            if let Some((_, path, offset)) = &mut self.current {
                match read_from(path, *offset) {
                    Ok(bytes) if !bytes.is_empty() => {
                        *offset += bytes.len() as u64;
                        return Some(Ok(Bytes::from(bytes)));
                    }
                    Ok(_) => {}
                    // Not written yet: the attempt has only just begun.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            // Nothing new: has the attempt, or the job, ended?
            let detail = match self.detail().await {
                Ok(d) => d,
                Err(e) => return Some(Err(std::io::Error::other(e.message))),
            };
            let number = self.current.as_ref().map(|(n, _, _)| *n);
            let wanted = match (self.only, number) {
                (Some(n), _) => detail.attempts.iter().find(|a| a.number == n),
                (None, None) => detail.attempts.last(),
                (None, Some(n)) => detail.attempts.iter().find(|a| a.number > n),
            };
            match wanted {
                Some(a) if Some(a.number) != number => {
                    self.current = Some((a.number, a.log_path.clone().unwrap_or_default(), 0));
                    continue;
                }
                // Ended, and its log read to the end after that.
                Some(a)
                    if a.ended_at.is_some()
                        && (self.only.is_some() || detail.job.ended_at.is_some()) =>
                {
                    let (_, path, offset) = self.current.as_ref()?;
                    if read_from(path, *offset)
                        .map(|b| b.is_empty())
                        .unwrap_or(true)
                    {
                        return None;
                    }
                    continue;
                }
                None if detail.job.ended_at.is_some() => {
                    let done = match &self.current {
                        Some((_, path, offset)) => read_from(path, *offset)
                            .map(|b| b.is_empty())
                            .unwrap_or(true),
                        None => true,
                    };
                    if done {
                        return None;
                    }
                    continue;
                }
                _ => {}
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What the log at `path` has past `offset`, at most 64 KiB of it.
fn read_from(path: &str, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    f.take(64 << 10).read_to_end(&mut buf)?;
    Ok(buf)
}

impl Service {
    /// A job's log as it is written (`job logs --follow`), from the
    /// attempt asked for or from the last one on; it ends with the job.
    pub async fn job_logs_follow(
        &self,
        id: i64,
        attempt: Option<i64>,
    ) -> Result<ByteStream, ApiError> {
        let detail = self.job_get(id).await?;
        if let Some(n) = attempt {
            if !detail.attempts.iter().any(|a| a.number == n) {
                return Err(ApiError::not_found(format!("job {id} has no attempt {n}"))
                    .hint(format!("`sluice job get {id}` shows its attempts")));
            }
        }
        let follow = Follow {
            service: self.clone(),
            job: id,
            only: attempt,
            current: None,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            follow,
            |mut f| async move { f.next().await.map(|item| (item, f)) },
        )))
    }
}

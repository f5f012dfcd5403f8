//! `sluice job ...`: the jobs of managed connections, their attempts and logs.

use super::args::{words, JOB_STATUSES};
use super::output::{self, CliOutput};
use super::{Ctx, ExitClass};
use crate::api::{Job, JobDetail, JobFilter, JobRef, JobStatus};
use clap::{Args, Subcommand};
use std::io::Write;

/// See the jobs of connections: their attempts, stats, failures and logs.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice job list --connection faker-to-local --limit 5
  sluice job get 12
  sluice job logs 12 --attempt 1")]
pub enum JobCommand {
    List(ListArgs),
    Get(GetArgs),
    Logs(LogsArgs),
    /// Cancel a queued or running job: a running one's connectors are
    /// stopped and what it committed is kept.
    Cancel(GetArgs),
}

/// List jobs, newest first.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this connection's jobs.
    #[arg(long, value_name = "CONNECTION")]
    pub connection: Option<String>,
    /// Only jobs with this status: pending, running, succeeded, failed or
    /// cancelled.
    #[arg(long, value_name = "STATUS", value_parser = words::<JobStatus>(&JOB_STATUSES))]
    pub status: Option<JobStatus>,
    /// At most this many (0: all).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: i64,
}

/// Show a job: its attempts, per-stream records and bytes, durations and
/// failure reasons, and the schema changes found before it ran.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The job's number (`sluice job list` shows them), or its id (a
    /// UUID).
    pub id: JobRef,
}

/// Print the log of a job's attempt (the last one by default).
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job's number, or its id (a UUID).
    pub id: JobRef,
    /// The attempt's number [default: the last].
    #[arg(long, value_name = "N")]
    pub attempt: Option<i64>,
    /// Keep printing the log as it is written, until the job ends (the
    /// attempts after this one too, unless --attempt names one).
    #[arg(long, short = 'f')]
    pub follow: bool,
}

fn duration(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => output::duration_ms((e - s).max(0) as u64),
        (Some(_), None) => "running".into(),
        _ => String::new(),
    }
}

impl CliOutput for Job {
    fn headers() -> Vec<&'static str> {
        vec![
            "Job",
            "Connection",
            "Kind",
            "Trigger",
            "Status",
            "Started",
            "Duration",
        ]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.connection.clone(),
            self.kind.to_string(),
            self.trigger.to_string(),
            self.status.to_string(),
            self.started_at.map(output::timestamp).unwrap_or_default(),
            match self.status {
                // One put back in the queue (its daemon stopped) started
                // once, and waits now.
                JobStatus::Pending => "queued".into(),
                _ => duration(self.started_at, self.ended_at),
            },
        ]
    }
}

pub async fn run(ctx: &Ctx, cmd: JobCommand) -> anyhow::Result<ExitClass> {
    let json = ctx.json();
    match cmd {
        JobCommand::List(a) => {
            let jobs = ctx
                .api
                .job_list(JobFilter {
                    connection: a.connection,
                    status: a.status,
                    limit: a.limit,
                })
                .await?;
            output::print_list(&jobs, ctx.global.output)?;
        }
        JobCommand::Get(a) => {
            let job = ctx.api.job_get(a.id).await?;
            if json {
                output::print_json(&job)?;
            } else {
                print_job(&job)?;
            }
        }
        JobCommand::Cancel(a) => {
            let job = ctx.api.job_cancel(a.id).await?;
            if json {
                output::print_json(&job)?;
            } else if !ctx.global.quiet {
                let how = if job.status == JobStatus::Running {
                    "is being stopped"
                } else {
                    "is cancelled"
                };
                eprintln!(
                    "Job {} ({} of `{}`) {how}.",
                    job.id, job.kind, job.connection
                );
            }
        }
        JobCommand::Logs(a) if a.follow => {
            use futures_util::StreamExt;
            let mut stream = ctx.api.job_logs_follow(a.id, a.attempt).await?;
            let mut out = std::io::stdout();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
                out.flush()?;
            }
        }
        JobCommand::Logs(a) => {
            let log = ctx.api.job_logs(a.id, a.attempt).await?;
            if json {
                output::print_json(&log)?;
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(log.log.as_bytes())?;
                out.flush()?;
            }
        }
    }
    Ok(ExitClass::Success)
}

/// A job for people: a line about it, its attempts, each attempt's streams.
pub fn print_job(j: &JobDetail) -> anyhow::Result<()> {
    let job = &j.job;
    let mut t = output::table(Job::headers());
    t.add_row(job.row());
    output::print_table(&t)?;
    if !job.changes.is_empty() {
        let changes = &job.changes;
        let mut t = output::table(vec!["Stream", "Schema change", "Breaking"]);
        for c in changes {
            t.add_row(vec![
                c.stream.clone(),
                c.change.clone(),
                if c.breaking { "yes" } else { "no" }.to_string(),
            ]);
        }
        output::print_table(&t)?;
    }
    let mut t = output::table(vec![
        "Attempt",
        "Status",
        "Records",
        "Bytes",
        "Committed",
        "Duration",
        "Failure",
        "Log",
    ]);
    for a in &j.attempts {
        let failure = a
            .failure
            .as_ref()
            .map(|f| format!("{} ({}): {}", f.failure_type, f.origin, f.message))
            .unwrap_or_default();
        t.add_row(vec![
            a.number.to_string(),
            a.status.to_string(),
            output::thousands(a.records.max(0) as u64),
            output::bytes(a.bytes.max(0) as u64),
            output::thousands(a.records_committed.max(0) as u64),
            duration(Some(a.started_at), a.ended_at),
            failure,
            a.log_path.clone().unwrap_or_default(),
        ]);
    }
    output::print_table(&t)?;
    if let Some(last) = j.attempts.last() {
        if !last.stats.is_empty() {
            let mut t = output::table(vec!["Stream", "Records", "Bytes", "Committed"]);
            for s in &last.stats {
                t.add_row(vec![
                    s.descriptor(),
                    output::thousands(s.records),
                    output::bytes(s.bytes),
                    output::thousands(s.records_committed),
                ]);
            }
            output::print_table(&t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_back_in_the_queue_is_queued_not_running() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": 7, "uuid": "u", "connection_id": 1, "connection": "c",
            "kind": "sync", "status": "pending", "owner": null, "changes": [],
            "created_at": 1000, "started_at": 2000, "ended_at": null
        }))
        .unwrap();
        // A job from a daemon that does not say what started it: manual.
        assert_eq!(job.row()[3], "manual");
        assert_eq!(job.row()[6], "queued");
        let running = Job {
            status: JobStatus::Running,
            ..job
        };
        assert_eq!(running.row()[6], "running");
    }
}

//! `sluice connection ...`: connections between a stored source and a
//! stored destination, and their jobs (sync, reset, refresh) run now.

use super::args::{
    stream_names, words, RuntimeArgs, StreamChoices, DESTINATION_SYNC_MODES,
    DESTINATION_SYNC_MODE_HELP, SCHEMA_CHANGE_POLICIES, SYNC_MODES,
};
use super::output::{self, CliOutput};
use super::ui::{self, done, show_one, Show};
use super::{Ctx, ExitClass};
use crate::api::{
    ApiError, Connection as ConnectionView, ConnectionCreate, ConnectionPatch, ConnectionSpec,
    ConnectionStatus, ConnectionUpdate, DestinationSyncMode, JobDetail, JobKind, JobRequest,
    JobStatus, NamespaceRule, Notifications, RetryPolicy, Schedule, ScheduleError,
    SchemaChangePolicy, SyncMode, SyncStatus,
};
use clap::{Args, Subcommand};
use std::time::Duration;

/// Connect a stored source to a stored destination; run its jobs.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice connection create faker-to-local --source faker --destination local \\
      --streams users,purchases --sync-mode incremental --schedule every:1h
  sluice connection update faker-to-local --schedule 'cron:0 */6 * * *' --timezone Europe/Paris
  sluice connection sync faker-to-local
  sluice connection list
  sluice connection reset faker-to-local --stream users")]
pub enum ConnectionCommand {
    Create(CreateArgs),
    List(ListArgs),
    /// Show a connection: its settings, streams, catalog and last job.
    Get(NameArgs),
    Update(UpdateArgs),
    /// Delete a connection with its jobs and state (not the destination's data).
    Delete(NameArgs),
    /// Make a connection active: it can sync.
    Enable(NameArgs),
    /// Make a connection inactive: it does not sync until enabled.
    Disable(NameArgs),
    Sync(SyncArgs),
    Reset(ResetArgs),
    /// Re-sync everything from the start; the destination keeps the old
    /// data until the new generation lands.
    Refresh(SyncArgs),
}

/// A schedule in the zone given, if one is.
fn in_zone(schedule: Schedule, zone: Option<&str>) -> Result<Schedule, ApiError> {
    match zone {
        None => Ok(schedule),
        Some(zone) => schedule
            .in_timezone(zone)
            .map_err(|e| ApiError::user(e.to_string())),
    }
}

/// A schedule given with --schedule, in the zone --timezone gives: refused
/// when its text names another zone (`CRON_TZ=`), rather than one
/// silently winning.
fn given_in_zone(schedule: Schedule, zone: Option<&str>) -> Result<Schedule, ApiError> {
    if let (Some(named), Some(zone)) = (schedule.timezone(), zone) {
        if named != "UTC" && named != zone.trim() {
            return Err(ApiError::user(format!(
                "schedule `{schedule}` names time zone {named}, and --timezone gives {zone}"
            ))
            .hint("give the zone once: in the schedule (CRON_TZ=ZONE) or with --timezone"));
        }
    }
    in_zone(schedule, zone)
}

/// A schedule, parsed where it comes in.
fn schedule(text: &str) -> Result<Schedule, String> {
    text.parse::<Schedule>()
        .map_err(|e| format!("{e}; {}", ScheduleError::HINT))
}

/// Create a connection: the source is discovered and its catalog configured.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name for the connection (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The stored source.
    #[arg(long, value_name = "SOURCE", add = super::complete::source_names())]
    pub source: String,
    /// The stored destination.
    #[arg(long, value_name = "DESTINATION", add = super::complete::destination_names())]
    pub destination: String,
    /// Only these streams (comma-separated names, or namespace.name).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "STREAMS",
        conflicts_with = "all_streams"
    )]
    pub streams: Vec<String>,
    /// Every stream the source has (the default).
    #[arg(long)]
    pub all_streams: bool,
    /// How to read the streams: full_refresh (everything, every time) or
    /// incremental (what is new since the state) [default: full_refresh].
    #[arg(long, value_name = "MODE", value_parser = words::<SyncMode>(&SYNC_MODES))]
    pub sync_mode: Option<SyncMode>,
    #[arg(long, value_name = "MODE", value_parser = words::<DestinationSyncMode>(&DESTINATION_SYNC_MODES), help = DESTINATION_SYNC_MODE_HELP)]
    pub destination_sync_mode: Option<DestinationSyncMode>,
    #[command(flatten)]
    pub choices: StreamChoices,
    /// manual, every:DURATION (every:1h) or cron:'0 */6 * * *'.
    #[arg(long, default_value = "manual", value_name = "SCHEDULE", value_parser = schedule)]
    pub schedule: Schedule,
    /// The time zone a cron: schedule runs in (an IANA name such as
    /// Europe/Paris) [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Where streams land: source, destination or custom:NAME.
    #[arg(long, default_value = "source", value_name = "RULE")]
    pub namespace: String,
    /// A prefix for every stream name in the destination.
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub prefix: String,
    /// What a job does when the source's schema changed: ignore (sync the
    /// catalog as it was), propagate_columns (take new and changed columns
    /// of the selected streams), propagate_fully (also add new streams) or
    /// disable (turn the connection off).
    #[arg(
        long,
        default_value = "propagate_columns",
        value_name = "POLICY",
        value_parser = words::<SchemaChangePolicy>(&SCHEMA_CHANGE_POLICIES)
    )]
    pub schema_change: SchemaChangePolicy,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Webhooks called when a job ends, with a Slack-compatible JSON body
/// (`text`) and the job's details (`data`).
#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// Call URL when a job fails (repeatable; on update, replaces the
    /// failure webhooks).
    #[arg(long, value_name = "URL")]
    pub notify_failure: Vec<String>,
    /// Call URL when a job succeeds (repeatable; on update, replaces the
    /// success webhooks).
    #[arg(long, value_name = "URL")]
    pub notify_success: Vec<String>,
    /// Call URL when the connection is disabled after failing 30 times in
    /// a row, and with a warning at 20 (repeatable; on update, replaces
    /// those webhooks).
    #[arg(long, value_name = "URL")]
    pub notify_disable: Vec<String>,
}

impl NotifyArgs {
    fn given(&self) -> bool {
        !(self.notify_failure.is_empty()
            && self.notify_success.is_empty()
            && self.notify_disable.is_empty())
    }

    /// These webhooks over `old`: each list given replaces its own.
    fn over(&self, old: Notifications) -> Notifications {
        let pick = |new: &Vec<String>, old: Vec<String>| {
            if new.is_empty() {
                old
            } else {
                new.clone()
            }
        };
        Notifications {
            on_failure: pick(&self.notify_failure, old.on_failure),
            on_success: pick(&self.notify_success, old.on_success),
            on_disable: pick(&self.notify_disable, old.on_disable),
        }
    }
}

/// List connections with their last job.
#[derive(Debug, Args)]
pub struct ListArgs {}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub name: String,
}

/// Change a connection; what is not given stays.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connection update pg-to-wh --schedule every:30m
  sluice connection update pg-to-wh --stream-sync-mode users=incremental --fields users=id,email,updated_at
  sluice connection update pg-to-wh --fields users=        # users: every field again

A per-stream option changes the streams it names and keeps the others' choices;
STREAM= (no value) puts that stream back to the connection's default.")]
pub struct UpdateArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub name: String,
    /// Another stored source to read from.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Another stored destination to write to.
    #[arg(long, value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Only these streams (comma-separated names, or namespace.name);
    /// choices for streams left out go with them.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "STREAMS",
        conflicts_with = "all_streams"
    )]
    pub streams: Option<Vec<String>>,
    /// Every stream, new ones included.
    #[arg(long)]
    pub all_streams: bool,
    /// How to read the streams: full_refresh or incremental.
    #[arg(long, value_name = "MODE", value_parser = words::<SyncMode>(&SYNC_MODES))]
    pub sync_mode: Option<SyncMode>,
    #[arg(long, value_name = "MODE", value_parser = words::<DestinationSyncMode>(&DESTINATION_SYNC_MODES), help = DESTINATION_SYNC_MODE_HELP)]
    pub destination_sync_mode: Option<DestinationSyncMode>,
    /// Per-stream choices given here change those streams only.
    #[command(flatten)]
    pub choices: StreamChoices,
    /// manual, every:DURATION (every:1h) or cron:'0 */6 * * *'.
    #[arg(long, value_name = "SCHEDULE", value_parser = schedule)]
    pub schedule: Option<Schedule>,
    /// The time zone a cron: schedule runs in (an IANA name such as
    /// Europe/Paris), for the schedule given or the one it has.
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Where streams land: source, destination or custom:NAME.
    #[arg(long, value_name = "RULE")]
    pub namespace: Option<String>,
    /// A prefix for every stream name in the destination.
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// What a job does when the source's schema changed: ignore,
    /// propagate_columns, propagate_fully or disable.
    #[arg(long, value_name = "POLICY", value_parser = words::<SchemaChangePolicy>(&SCHEMA_CHANGE_POLICIES))]
    pub schema_change: Option<SchemaChangePolicy>,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Remove every webhook (then add those given with --notify-*).
    #[arg(long)]
    pub no_notify: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Run a job now, retrying failed attempts from the last committed state:
/// in this process, or queued for the daemon and followed here.
#[derive(Debug, Args)]
#[command(after_help = "\
Exits 0 when the job succeeds, 1 when it fails; `sluice job get ID` shows its attempts.
Through a daemon, Ctrl-C stops following and leaves the job running
(`sluice job cancel ID` cancels it).")]
pub struct SyncArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub name: String,
    /// Queue the job for the daemon, print its id and return at once
    /// (`sluice job get ID`, `sluice job logs ID -f` follow it).
    #[arg(long)]
    pub detach: bool,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Clear a connection's state and its data in the destination (all streams,
/// or those named); the next sync reads everything again.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The connection's name.
    #[arg(add = super::complete::connection_names())]
    pub name: String,
    /// Queue the job for the daemon, print its id and return at once
    /// (`sluice job get ID`, `sluice job logs ID -f` follow it).
    #[arg(long)]
    pub detach: bool,
    /// Only this stream (repeat for more).
    #[arg(long = "stream", value_name = "STREAM")]
    pub streams: Vec<String>,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Attempts in a row that commit nothing before the job fails.
    #[arg(long, default_value_t = 5, value_name = "N", help_heading = "Retries")]
    pub max_failed_attempts: u32,
    /// Attempts in all before the job fails.
    #[arg(long, default_value_t = 20, value_name = "N", help_heading = "Retries")]
    pub max_attempts: u32,
    /// The wait after the first attempt that commits nothing, tripled after
    /// each further one (at most 30 min).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION", help_heading = "Retries")]
    pub retry_backoff: Duration,
}

impl RetryArgs {
    fn policy(&self) -> Result<RetryPolicy, ApiError> {
        if self.max_attempts == 0 || self.max_failed_attempts == 0 {
            return Err(ApiError::user(
                "--max-attempts and --max-failed-attempts must be at least 1",
            ));
        }
        Ok(RetryPolicy {
            max_failed_in_a_row: self.max_failed_attempts,
            max_attempts: self.max_attempts,
            backoff: self.retry_backoff,
            ..RetryPolicy::default()
        })
    }
}

impl CliOutput for ConnectionView {
    fn headers() -> Vec<&'static str> {
        vec![
            "Name",
            "Source",
            "Destination",
            "Streams",
            "Schedule",
            "Status",
            "Last job",
        ]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.spec.source.clone(),
            self.spec.destination.clone(),
            self.catalog_streams
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.spec.schedule.to_string(),
            self.spec.status.to_string(),
            match &self.last_job {
                Some(j) => format!("{} {} (job {})", j.status, output::timestamp(j.at), j.id),
                None => "never run".into(),
            },
        ]
    }
}

pub async fn run(ctx: &Ctx, cmd: ConnectionCommand) -> anyhow::Result<ExitClass> {
    match cmd {
        ConnectionCommand::Create(a) => {
            let choices = a.choices.maps()?;
            let spec = ConnectionSpec {
                source: a.source,
                destination: a.destination,
                streams: stream_names(&a.streams)?,
                sync_mode: a.sync_mode,
                destination_sync_mode: a.destination_sync_mode,
                cursors: choices.cursors,
                primary_keys: choices.primary_keys,
                sync_modes: choices.sync_modes,
                destination_sync_modes: choices.destination_sync_modes,
                selected_fields: choices.selected_fields,
                schedule: given_in_zone(a.schedule, a.timezone.as_deref())?,
                namespace: a
                    .namespace
                    .parse::<NamespaceRule>()
                    .map_err(ApiError::user)?,
                prefix: a.prefix,
                status: ConnectionStatus::Active,
                schema_change: a.schema_change,
                notifications: a.notify.over(Notifications::default()),
            };
            let req = ConnectionCreate {
                name: a.name,
                spec,
                options: ctx.options(Some(&a.runtime))?,
            };
            let v = ui::wait(ctx, ctx.api.connection_create(req).await).await?;
            show_one(
                ctx,
                &v,
                &format!(
                    "Created connection `{}` ({} stream{}).",
                    v.name,
                    v.catalog_streams.len(),
                    if v.catalog_streams.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
            )?;
        }
        ConnectionCommand::Update(a) => {
            let schedule = match (a.schedule, a.timezone.as_deref()) {
                (Some(s), zone) => Some(given_in_zone(s, zone)?),
                // A new zone for the schedule it has.
                (None, Some(zone)) => {
                    let current = ctx.api.connection_get(&a.name).await?.spec.schedule;
                    Some(in_zone(current, Some(zone))?)
                }
                (None, None) => None,
            };
            // The stored webhooks come back masked; the service puts the
            // URLs they mask back.
            let notifications = match (a.no_notify, a.notify.given()) {
                (true, _) => Some(a.notify.over(Notifications::default())),
                (false, true) => {
                    let current = ctx.api.connection_get(&a.name).await?.spec.notifications;
                    Some(a.notify.over(current))
                }
                (false, false) => None,
            };
            let mut patch = ConnectionPatch {
                source: a.source,
                destination: a.destination,
                streams: if a.all_streams {
                    Some(Vec::new())
                } else {
                    a.streams.as_deref().map(stream_names).transpose()?
                },
                sync_mode: a.sync_mode,
                destination_sync_mode: a.destination_sync_mode,
                schedule,
                namespace: a
                    .namespace
                    .map(|n| n.parse::<NamespaceRule>().map_err(ApiError::user))
                    .transpose()?,
                prefix: a.prefix,
                schema_change: a.schema_change,
                notifications,
                ..ConnectionPatch::default()
            };
            if a.choices.given() {
                let current = ctx.api.connection_get(&a.name).await?.spec;
                a.choices.patch(&mut patch, &current)?;
            }
            let req = ConnectionUpdate {
                name: a.name,
                patch,
                options: ctx.options(Some(&a.runtime))?,
            };
            let v = ui::wait(ctx, ctx.api.connection_update(req).await).await?;
            show_one(ctx, &v, &format!("Updated connection `{}`.", v.name))?;
        }
        ConnectionCommand::List(_) => {
            let all = ctx.api.connection_list().await?;
            output::print_list(&all, ctx.global.output)?;
        }
        ConnectionCommand::Get(a) => {
            let v = ctx.api.connection_get(&a.name).await?;
            if ctx.json() {
                output::print_json(&v)?;
            } else {
                print_connection(&v)?;
            }
        }
        ConnectionCommand::Delete(a) => {
            ctx.api.connection_delete(&a.name).await?;
            done(
                ctx,
                &format!("Deleted connection `{}` with its jobs and state.", a.name),
            )?;
        }
        ConnectionCommand::Enable(a) => {
            ctx.api
                .connection_set_status(&a.name, ConnectionStatus::Active)
                .await?;
            done(ctx, &format!("Connection `{}` is active.", a.name))?;
        }
        ConnectionCommand::Disable(a) => {
            ctx.api
                .connection_set_status(&a.name, ConnectionStatus::Inactive)
                .await?;
            done(ctx, &format!("Connection `{}` is inactive.", a.name))?;
        }
        ConnectionCommand::Sync(a) => {
            let job = JobArgs::of(JobKind::Sync, Vec::new(), &a.retry, &a.runtime, a.detach);
            return run_job(ctx, a.name, job).await;
        }
        ConnectionCommand::Refresh(a) => {
            let job = JobArgs::of(JobKind::Refresh, Vec::new(), &a.retry, &a.runtime, a.detach);
            return run_job(ctx, a.name, job).await;
        }
        ConnectionCommand::Reset(a) => {
            let streams = stream_names(&a.streams)?;
            let job = JobArgs::of(JobKind::Reset, streams, &a.retry, &a.runtime, a.detach);
            return run_job(ctx, a.name, job).await;
        }
    }
    Ok(ExitClass::Success)
}

fn print_connection(v: &ConnectionView) -> anyhow::Result<()> {
    let mut t = output::table(vec!["Field", "Value"]);
    let s = &v.spec;
    for (k, val) in [
        ("Name", v.name.clone()),
        ("Id", v.id.clone()),
        ("Source", s.source.clone()),
        ("Destination", s.destination.clone()),
        ("Schedule", s.schedule.to_string()),
        ("Namespace", s.namespace.to_string()),
        ("Prefix", s.prefix.clone()),
        ("Status", s.status.to_string()),
        ("Schema changes", s.schema_change.as_str().to_string()),
        (
            "Streams",
            v.catalog_streams
                .iter()
                .map(|c| format!("{} ({} / {})", c.name, c.sync_mode, c.destination_sync_mode))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        (
            "Last job",
            v.last_job
                .as_ref()
                .map(|j| format!("{} {} (job {})", j.status, output::timestamp(j.at), j.id))
                .unwrap_or_else(|| "never run".into()),
        ),
    ] {
        t.add_row(vec![k.to_string(), val]);
    }
    output::print_table(&t)
}

/// What a sync, reset or refresh command asks of its job.
struct JobArgs<'a> {
    kind: JobKind,
    streams: Vec<String>,
    retry: &'a RetryArgs,
    runtime: &'a RuntimeArgs,
    detach: bool,
}

impl<'a> JobArgs<'a> {
    fn of(
        kind: JobKind,
        streams: Vec<String>,
        retry: &'a RetryArgs,
        runtime: &'a RuntimeArgs,
        detach: bool,
    ) -> Self {
        JobArgs {
            kind,
            streams,
            retry,
            runtime,
            detach,
        }
    }
}

async fn run_job(ctx: &Ctx, connection: String, args: JobArgs<'_>) -> anyhow::Result<ExitClass> {
    let req = JobRequest {
        connection,
        kind: args.kind,
        streams: args.streams,
        retry: args.retry.policy()?,
        options: ctx.options(Some(args.runtime))?,
    };
    if args.detach {
        let job = ctx.api.job_enqueue(req).await?;
        if ctx.json() {
            output::print_json(&job)?;
        } else {
            println!("{}", job.id);
            if !ctx.global.quiet {
                eprintln!(
                    "Job {} ({}) is queued: `sluice job get {0}` shows it, `sluice job logs {0} -f` follows its log.",
                    job.id, job.kind
                );
            }
        }
        return Ok(ExitClass::Success);
    }
    let run = ctx.api.connection_job(req).await;
    let job = ui::follow(ctx, run, Show::Sync, |_| Ok(())).await?;
    if ctx.json() {
        output::print_json(&job)?;
    } else {
        super::job::print_job(&job)?;
        summary(ctx, &job);
    }
    let last = job.attempts.last();
    let status = match job.job.status {
        JobStatus::Succeeded => SyncStatus::Succeeded,
        JobStatus::Cancelled => SyncStatus::Cancelled,
        _ => SyncStatus::Failed,
    };
    let records = job.attempts.iter().map(|a| a.records.max(0) as u64).sum();
    Ok(super::outcome_class(
        status,
        last.and_then(|a| a.failure.as_ref()),
        records,
    ))
}

fn summary(ctx: &Ctx, j: &JobDetail) {
    let last = j.attempts.last();
    if j.job.status == JobStatus::Succeeded {
        if !ctx.global.quiet {
            eprintln!(
                "Job {} ({}) succeeded after {} attempt(s): {} records.",
                j.job.id,
                j.job.kind,
                j.attempts.len(),
                output::thousands(last.map_or(0, |a| a.records.max(0) as u64))
            );
        }
        return;
    }
    let why = output::failure(last.and_then(|a| a.failure.as_ref()));
    eprintln!(
        "error: job {} {} after {} attempt(s) ({why})",
        j.job.id,
        j.job.status,
        j.attempts.len()
    );
    eprintln!(
        "\nhint: `sluice job logs {}` shows the last attempt's log",
        j.job.id
    );
}

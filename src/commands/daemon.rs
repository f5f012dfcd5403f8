//! `sluice daemon ...`: its arguments, and `status` rendered from the
//! Api. Running, starting and stopping a daemon happen in `cli.rs`, which
//! owns the process; this file stays above the Api like every command.

use super::args::{GlobalArgs, OutputFormat};
use super::output;
use super::{Ctx, ExitClass};
use clap::{Args, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The daemon: the job store, the HTTP API on a Unix socket (and on TCP
/// with --listen), serving this same CLI and scripts.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice daemon start                       # detached; its socket is in the data dir
  sluice connection list                    # now answered by the daemon
  sluice daemon status
  sluice daemon run --listen 127.0.0.1:8080 # in the foreground (systemd, containers)
  SLUICE_HOST=http://127.0.0.1:8080 SLUICE_TOKEN=$(sluice daemon token) sluice job list
  sluice daemon stop

With no --host and no SLUICE_HOST, commands use the daemon of the data dir
when one answers on its socket, else they run in this process. `sluice sync`
and `sluice connector read|write` always run in this process.")]
pub enum DaemonCommand {
    /// Run the daemon in the foreground until SIGTERM or SIGINT.
    Run(DaemonRunArgs),
    /// Start the daemon detached; returns once it answers (pid and log file
    /// in the data dir).
    Start(DaemonRunArgs),
    /// Stop the data dir's daemon (SIGTERM) and wait for it to end.
    Stop(DaemonStopArgs),
    /// Show the daemon's version, pid, uptime, store, addresses and jobs.
    Status(DaemonStatusArgs),
    /// Print the token TCP clients send (made on first use).
    Token(DaemonTokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DaemonRunArgs {
    /// Also listen on TCP at ADDR:PORT (repeatable); every request there
    /// needs `Authorization: Bearer TOKEN` (see `sluice daemon token`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// The Unix socket [default: daemon.sock in the data dir].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Jobs run at once, at most; the rest wait queued [default: the
    /// number of CPUs].
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,

    /// On SIGTERM or SIGINT, how long running jobs may go on before they
    /// are stopped (what they committed is kept; they go back to the
    /// queue), e.g. 60s or 5m.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,

    /// How long a running job's lease lasts without a heartbeat: after a
    /// crash, another daemon (or this one restarted) takes the job over
    /// once it has passed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: std::time::Duration,

    /// How long ended jobs and their attempt logs are kept, e.g. 30d or
    /// 12h; the newest job of each connection is always kept. Old ones
    /// are deleted at start and then daily.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub retention: std::time::Duration,

    /// At most this much is added to each scheduled run, each connection
    /// its own share of it, so that connections on one schedule do not
    /// all start at once, e.g. 5m.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub jitter: std::time::Duration,
}

impl DaemonRunArgs {
    /// The same flags, for the detached `daemon run` that `start` spawns.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.listen {
            out.push("--listen".to_string());
            out.push(l.to_string());
        }
        if let Some(s) = &self.socket {
            out.push("--socket".to_string());
            out.push(s.display().to_string());
        }
        if let Some(n) = self.max_jobs {
            out.push("--max-jobs".to_string());
            out.push(n.to_string());
        }
        out.push("--grace".to_string());
        out.push(humantime::format_duration(self.grace).to_string());
        out.push("--lease".to_string());
        out.push(humantime::format_duration(self.lease).to_string());
        out.push("--retention".to_string());
        out.push(humantime::format_duration(self.retention).to_string());
        out.push("--jitter".to_string());
        out.push(humantime::format_duration(self.jitter).to_string());
        out
    }
}

#[derive(Debug, Clone, Args)]
pub struct DaemonStopArgs {
    /// How long to wait for it to end, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    pub wait: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DaemonStatusArgs {}

#[derive(Debug, Clone, Args)]
pub struct DaemonTokenArgs {
    /// Replace the token with a new one (clients with the old one are
    /// refused from then on).
    #[arg(long)]
    pub rotate: bool,
}

/// What `sluice daemon start` says once the daemon answers.
pub fn started(global: &GlobalArgs, pid: u32, log: &Path) -> anyhow::Result<()> {
    if global.output == OutputFormat::Json {
        return output::print_json(&serde_json::json!({"pid": pid, "log": log}));
    }
    if !global.quiet {
        eprintln!(
            "The sluice daemon runs (pid {pid}); its log is {}.",
            log.display()
        );
    }
    Ok(())
}

/// `sluice daemon token`: the token alone on a line, or `{"token": ...}`.
pub fn show_token(global: &GlobalArgs, token: &str) -> anyhow::Result<()> {
    if global.output == OutputFormat::Json {
        return output::print_json(&serde_json::json!({ "token": token }));
    }
    println!("{token}");
    Ok(())
}

/// What `sluice daemon stop` says: the daemon it stopped, if one ran.
pub fn stopped(global: &GlobalArgs, pid: Option<u32>) -> anyhow::Result<()> {
    if global.output == OutputFormat::Json {
        return output::print_json(&serde_json::json!({"pid": pid, "stopped": pid.is_some()}));
    }
    if !global.quiet {
        match pid {
            Some(pid) => eprintln!("The sluice daemon (pid {pid}) stopped."),
            None => eprintln!("No sluice daemon was running."),
        }
    }
    Ok(())
}

/// `sluice daemon status`, through whichever Api the command line chose.
pub async fn status(ctx: &Ctx) -> anyhow::Result<ExitClass> {
    let s = ctx.api.daemon_status().await?;
    if ctx.json() {
        output::print_json(&s)?;
        return Ok(ExitClass::Success);
    }
    let mut t = output::fields();
    let uptime = humantime::format_duration(std::time::Duration::from_secs(s.uptime_s));
    for (k, v) in [
        ("Version", s.version.clone()),
        ("Pid", s.pid.to_string()),
        ("Uptime", uptime.to_string()),
        ("Store", format!("{} ({})", s.store, s.backend)),
        ("Listening", s.listen.join("\n")),
        ("Jobs running", s.jobs_running.to_string()),
        ("Jobs queued", s.jobs_queued.to_string()),
        (
            "Scheduler",
            if s.scheduler_leads {
                "fires the schedules"
            } else {
                "standing by (another daemon on this store fires them)"
            }
            .to_string(),
        ),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    for n in &s.next_runs {
        t.add_row(vec![
            format!("Next: {}", n.connection),
            output::timestamp(n.at),
        ]);
    }
    output::print_table(&t)?;
    Ok(ExitClass::Success)
}

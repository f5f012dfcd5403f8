//! Running the daemon: where its files live, the lock that keeps it one
//! per data dir (and one per SQLite file), its token, serving the API on a
//! Unix socket and on TCP until SIGTERM or SIGINT, and starting and
//! stopping a detached one from the CLI.
//!
//! Files in the data dir (0700): `daemon.sock` (0600), `daemon.pid`
//! (locked while a daemon runs, with its pid), `daemon.token` (0600),
//! `daemon.log` (what a detached daemon prints).

use super::runner::{Runner, RunnerOptions};
use super::scheduler::{Scheduler, SchedulerOptions};
use super::server::{self, Daemon};
use crate::api::{Api, ApiError, Endpoint, Local};
use crate::settings::Settings;
use crate::store::Location;
use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How `sluice daemon run` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// TCP addresses to listen on besides the socket.
    pub listen: Vec<SocketAddr>,
    /// The socket, when not the data dir's.
    pub socket: Option<PathBuf>,
    /// Jobs run at once, at most.
    pub max_jobs: usize,
    /// How long running jobs may go on after SIGTERM before they stop.
    pub grace: Duration,
    /// How long a job's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How long ended jobs and their logs are kept (the newest job of each
    /// connection always is).
    pub retention: Duration,
    /// At most this much is added to each scheduled run.
    pub jitter: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: Vec::new(),
            socket: None,
            max_jobs: RunnerOptions::default().max_jobs,
            grace: Duration::from_secs(60),
            lease: RunnerOptions::default().lease,
            retention: Duration::from_secs(30 * 24 * 3600),
            jitter: Duration::ZERO,
        }
    }
}

pub fn socket_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("daemon.sock")
}

fn pid_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("daemon.pid")
}

fn token_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("daemon.token")
}

pub fn log_path(settings: &Settings) -> PathBuf {
    settings.data_dir.join("daemon.log")
}

/// The daemon of this data dir, as a client addresses it.
pub fn default_endpoint(settings: &Settings) -> Endpoint {
    Endpoint::Unix(socket_path(settings))
}

fn io_error(what: impl std::fmt::Display, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::user(format!("cannot {what} {}: {e}", path.display()))
}

/// An exclusive lock on a file, held until dropped, with the holder's pid
/// written in it.
pub struct PidLock {
    file: File,
    path: PathBuf,
}

/// What holds a lock.
#[derive(Debug)]
pub enum Held {
    /// Another process, with the pid it wrote.
    By(Option<u32>),
    Io(std::io::Error),
}

impl PidLock {
    pub fn acquire(path: &Path) -> Result<PidLock, Held> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(Held::Io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Held::By(text.trim().parse().ok()));
            }
            return Err(Held::Io(err));
        }
        file.set_len(0).map_err(Held::Io)?;
        write!(file, "{}", std::process::id()).map_err(Held::Io)?;
        file.flush().map_err(Held::Io)?;
        Ok(PidLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Who holds the lock at `path` now, if anyone.
    pub fn holder(path: &Path) -> Option<u32> {
        match PidLock::acquire(path) {
            Ok(lock) => {
                drop(lock);
                None
            }
            Err(Held::By(pid)) => pid.or(Some(0)),
            Err(Held::Io(_)) => None,
        }
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The daemon's token: made on first use (32 random bytes, hex), kept 0600.
pub fn token(settings: &Settings, rotate: bool) -> Result<String, ApiError> {
    let path = token_path(settings);
    crate::fsutil::ensure_private_dir(&settings.data_dir)
        .map_err(|e| io_error("create", &settings.data_dir, e))?;
    if !rotate {
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("read", &path, e)),
        }
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| io_error("read", Path::new("/dev/urandom"), e))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::fsutil::write_atomic(&path, token.as_bytes(), 0o600)
        .map_err(|e| io_error("write", &path, e))?;
    Ok(token)
}

/// Runs the daemon in this process until SIGTERM or SIGINT.
pub async fn run(settings: Settings, options: Options) -> Result<(), ApiError> {
    crate::fsutil::ensure_private_dir(&settings.data_dir)
        .map_err(|e| io_error("create", &settings.data_dir, e))?;
    let pid_file = pid_path(&settings);
    let _lock = lock(&pid_file, "this data dir", &settings.data_dir)?;
    // One daemon per SQLite file, wherever its data dir is.
    let _store_lock = match &settings.store {
        Location::Sqlite(db) => {
            let path = PathBuf::from(format!("{}.daemon-lock", db.display()));
            Some(lock(&path, "the SQLite job store", db)?)
        }
        Location::Postgres(_) => None,
    };
    let token = token(&settings, false)?;
    let api = Local::new(settings.clone());
    // Migrations run on start, and a store that cannot be used stops it.
    let db = api.db_status().await?;

    let socket = options
        .socket
        .clone()
        .unwrap_or_else(|| socket_path(&settings));
    // We hold the lock: a socket file left there is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let unix =
        tokio::net::UnixListener::bind(&socket).map_err(|e| io_error("listen on", &socket, e))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io_error("protect", &socket, e))?;
    let mut listen = vec![Endpoint::Unix(socket.clone()).to_string()];
    let mut tcp = Vec::new();
    for addr in &options.listen {
        let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            ApiError::user(format!("cannot listen on {addr}: {e}"))
                .hint("choose another port, or stop what listens there")
        })?;
        let local = l
            .local_addr()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        listen.push(format!("http://{local}"));
        tcp.push(l);
    }

    let runner = Runner::new(
        api.service().clone(),
        RunnerOptions {
            max_jobs: options.max_jobs.max(1),
            lease: options.lease.max(Duration::from_secs(1)),
            // Several heartbeats fit in a lease, so one late beat loses nothing.
            heartbeat: (options.lease / 3)
                .clamp(Duration::from_millis(300), Duration::from_secs(2)),
            ..RunnerOptions::default()
        },
    );
    let scheduler = Scheduler::new(
        api.service().clone(),
        SchedulerOptions {
            jitter: options.jitter,
            ..SchedulerOptions::default()
        },
    )
    .with_runner(runner.clone());
    let stop = CancellationToken::new();
    let daemon = Arc::new(Daemon {
        api,
        runner: runner.clone(),
        stopping: stop.clone(),
        started: Instant::now(),
        started_at: crate::protocol::now_millis(),
        listen: listen.clone(),
        backend: db.backend,
        store: db.url,
        auth: server::session::Auth::new(token),
        connections: Default::default(),
        scheduler: scheduler.gauges(),
    });
    watch_signals(stop.clone());
    tracing::info!(pid = std::process::id(), listen = ?listen, "Daemon started.");
    // Said on stdout once it answers: `daemon start` and tests wait for it.
    println!(
        "sluice daemon {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        listen.join(", ")
    );

    let mut servers = tokio::task::JoinSet::new();
    {
        let app = server::router(daemon.clone());
        let stop = stop.clone();
        servers.spawn(async move {
            axum::serve(unix, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    for l in tcp {
        let app = server::router_with_token(daemon.clone());
        let stop = stop.clone();
        servers.spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
    }
    let jobs = {
        let stop = stop.clone();
        tokio::spawn(async move { runner.run(stop, options.grace).await })
    };
    let schedules = {
        let stop = stop.clone();
        tokio::spawn(async move { scheduler.run(stop).await })
    };
    tokio::spawn(super::housekeeping::run(
        daemon.api.service().clone(),
        options.retention,
        stop.clone(),
    ));
    // Until a signal, or a listener that fails.
    tokio::select! {
        _ = stop.cancelled() => {}
        Some(done) = servers.join_next() => {
            if let Ok(Err(e)) = done {
                tracing::error!(error = %e, "A listener failed.");
            }
            stop.cancel();
        }
    }
    // No new jobs; running ones get their grace, then stop.
    for (what, task) in [("runner", jobs), ("scheduler", schedules)] {
        match task.await {
            Ok(Err(e)) => tracing::error!(error = %e.message, "The {what} failed."),
            Err(e) => tracing::error!(error = %e, "The {what} panicked."),
            Ok(Ok(())) => {}
        }
    }
    // Requests under way get a moment to answer; then they are cut.
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while servers.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        servers.abort_all();
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("Daemon stopped.");
    Ok(())
}

fn lock(path: &Path, what: &str, of: &Path) -> Result<PidLock, ApiError> {
    PidLock::acquire(path).map_err(|held| match held {
        Held::By(pid) => {
            let who = pid
                .map(|p| format!("pid {p}"))
                .unwrap_or_else(|| "another process".into());
            ApiError::conflict(format!(
                "a sluice daemon already runs on {what} ({}): {who}",
                of.display()
            ))
            .hint("stop it with `sluice daemon stop`, or give this one its own --data-dir")
        }
        Held::Io(e) => io_error("lock", path, e),
    })
}

fn watch_signals(stop: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("Stopping: no new requests.");
        stop.cancel();
    });
}

/// Whether a daemon of this data dir runs, by its lock: its pid.
pub fn running_pid(settings: &Settings) -> Option<u32> {
    PidLock::holder(&pid_path(settings))
}

/// Starts `sluice daemon run ARGS` detached (its own session, output to
/// `daemon.log`), and returns its pid once it answers on its socket.
pub async fn start(settings: &Settings, run_args: &[String]) -> Result<u32, ApiError> {
    use std::os::unix::process::CommandExt;
    if let Some(pid) = running_pid(settings) {
        return Err(ApiError::conflict(format!(
            "a sluice daemon already runs for {} (pid {pid})",
            settings.data_dir.display()
        ))
        .hint("`sluice daemon status` says more; `sluice daemon stop` stops it"));
    }
    crate::fsutil::ensure_private_dir(&settings.data_dir)
        .map_err(|e| io_error("create", &settings.data_dir, e))?;
    let log = log_path(settings);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log)
        .map_err(|e| io_error("open", &log, e))?;
    let err = out.try_clone().map_err(|e| io_error("open", &log, e))?;
    let exe = std::env::current_exe()
        .map_err(|e| ApiError::internal(format!("cannot find this sluice's path: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["daemon", "run"])
        .args(run_args)
        .env("SLUICE_DATA_DIR", &settings.data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    if let Location::Postgres(url) = &settings.store {
        cmd.env("SLUICE_DATABASE_URL", url);
    }
    // SAFETY: setsid is async-signal-safe; the child leaves our session so
    // a terminal's hangup or Ctrl-C does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("cannot start the daemon: {e}")))?;
    let remote = crate::api::Remote::new(default_endpoint(settings), None)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if remote.health().await.is_ok() {
            return Ok(child.id());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ApiError::user(format!(
                "the daemon stopped at once ({status}): {}",
                log_tail(&log)
            ))
            .hint(format!("its log is {}", log.display())));
        }
        if Instant::now() > deadline {
            return Err(ApiError::failed(format!(
                "the daemon (pid {}) did not answer on its socket within 30 s",
                child.id()
            ))
            .hint(format!("its log is {}", log.display())));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Stops this data dir's daemon (SIGTERM) and waits for it to end:
/// `Ok(None)` when none was running.
pub async fn stop(settings: &Settings, wait: Duration) -> Result<Option<u32>, ApiError> {
    let Some(pid) = running_pid(settings) else {
        return Ok(None);
    };
    if pid == 0 {
        return Err(ApiError::failed(
            "a daemon holds the lock but wrote no pid; stop it by hand",
        ));
    }
    // SAFETY: kill(2) with a pid read from the lock its holder wrote.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ApiError::failed(format!(
            "cannot stop the daemon (pid {pid}): {e}"
        )));
    }
    let deadline = Instant::now() + wait;
    while running_pid(settings).is_some() {
        if Instant::now() > deadline {
            return Err(ApiError::failed(format!(
                "the daemon (pid {pid}) is still running {} s after SIGTERM",
                wait.as_secs()
            ))
            .hint(format!(
                "its jobs may still be ending; `kill -9 {pid}` stops it at once"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Some(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.pid");
        let first = PidLock::acquire(&path).unwrap();
        // flock locks belong to the open file, so a second open conflicts
        // even in the same process.
        match PidLock::acquire(&path) {
            Err(Held::By(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(PidLock::holder(&path), Some(std::process::id()));
        drop(first);
        assert_eq!(PidLock::holder(&path), None);
        assert!(PidLock::acquire(&path).is_ok());
    }
}

//! One protocol command in one container.
//!
//! The container is created with its inputs mounted read-only, connected
//! to before it starts (so no output is lost), then started. Its stdout
//! (and, for `write`, its stdin) are named pipes (see `pipes`) or, with an
//! engine elsewhere, one attach connection; either is read only as fast as
//! the engine consumes it, so a slow destination slows the source down.
//! Its stderr is a second attach connection, drained into the attempt's
//! log on its own. Waiting for the container
//! reads its exit code and whether it was OOM-killed, then removes it; a
//! container that is never waited for is removed when its handle drops.

use super::engine::{self, engine_error, Engine};
use super::image::{runtime, ImageFacts};
use super::pipes;
use super::{DockerConfig, Transport};
use crate::connector::process::write_inputs;
use crate::connector::{
    drain_stderr, Command, ConnectorError, ExitStatus, Invocation, Process, RunContext, Running,
    StderrTail, Stdin, Stdout,
};
use crate::owner::Owner;
use crate::protocol::LogLevel;
use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions,
};
use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};

/// Where a container sees its config, catalog and state.
pub const INPUTS: &str = "/sluice";

/// Where `--local-root` appears in a container, as in Airbyte's platform.
pub const LOCAL: &str = "/local";

/// What starting a container needs besides the invocation.
pub struct Spawn<'a> {
    pub engine: &'static Engine,
    pub image: &'a str,
    pub facts: &'a ImageFacts,
    pub config: &'a DockerConfig,
    /// The reference, for messages.
    pub name: &'a str,
    /// Where the pipes transport's launcher is installed.
    pub launcher_dir: &'a Path,
}

/// Starts one command of the image in a new container.
pub async fn start(
    spawn: Spawn<'_>,
    inv: Invocation,
    cx: &RunContext,
) -> Result<Running, ConnectorError> {
    let Spawn {
        engine,
        image,
        facts,
        config,
        name,
        launcher_dir,
    } = spawn;
    let began = std::time::Instant::now();
    let command = inv.command;
    let write = command == Command::Write;
    let (inputs, args) = write_inputs(&inv, name, Some(Path::new(INPUTS)))?;
    let launcher = launcher(engine, config, launcher_dir, name, cx)?;
    let io = |source| ConnectorError::Io {
        connector: name.to_string(),
        source,
    };
    // With pipes, the launcher starts the connector's own command line.
    let (entrypoint, cmd) = match &launcher {
        Some(_) => {
            pipes::make_fifo(&inputs.path().join(pipes::STDOUT)).map_err(io)?;
            let stdin = if write {
                pipes::make_fifo(&inputs.path().join(pipes::STDIN)).map_err(io)?;
                format!("{INPUTS}/{}", pipes::STDIN)
            } else {
                "-".to_string()
            };
            let program = facts
                .entrypoint
                .clone()
                .unwrap_or_else(|| facts.image_entrypoint.clone());
            let mut cmd = vec![stdin, format!("{INPUTS}/{}", pipes::STDOUT)];
            cmd.extend(program);
            cmd.extend(args);
            (Some(vec![pipes::LAUNCHER.to_string()]), cmd)
        }
        None => (facts.entrypoint.clone(), args),
    };
    let user = own_inputs(engine, facts, inputs.path(), name, cx)?;
    // Opened before the container starts, so no output can be missed.
    let stdout_pipe = match &launcher {
        Some(_) => Some(pipes::open_stdout(&inputs.path().join(pipes::STDOUT)).map_err(io)?),
        None => None,
    };
    let attach_stdin = write && launcher.is_none();

    let mut labels: HashMap<String, String> = cx.labels.iter().cloned().collect();
    labels
        .entry("sluice.role".into())
        .or_insert_with(|| cx.role.as_str().into());
    labels.insert("sluice.command".into(), command.as_str().into());
    labels.insert("sluice.connector".into(), name.into());
    labels.insert("sluice.run".into(), cx.run.clone());
    labels.extend(Owner::current().labels());

    let mut binds = vec![format!("{}:{INPUTS}:ro", inputs.path().display())];
    if let Some(path) = &launcher {
        binds.push(format!("{}:{}:ro", path.display(), pipes::LAUNCHER));
    }
    if let Some(local) = &config.local_root {
        binds.push(format!("{}:{LOCAL}", local.display()));
    }
    let memory = config.memory.min(i64::MAX as u64) as i64;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint,
        cmd: Some(cmd),
        user,
        attach_stdin: Some(attach_stdin),
        attach_stdout: Some(launcher.is_none()),
        attach_stderr: Some(true),
        open_stdin: Some(attach_stdin),
        stdin_once: Some(attach_stdin),
        tty: Some(false),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(binds),
            memory: Some(memory),
            // No swap: the limit is the limit, and exceeding it is an OOM kill.
            memory_swap: Some(memory),
            nano_cpus: Some((config.cpus * 1e9) as i64),
            network_mode: Some(config.network.clone()),
            privileged: Some(false),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            // Output goes to sluice, not to the engine's disk too.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(container_name(cx, command)),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| start_error(name, image, &e))?;
    let create_ms = began.elapsed().as_millis();
    // From here on, every way out removes the container: a failure to
    // start it at once, before the error is returned.
    let mut guard = Guard::new(engine, created.id, &cx.run);
    macro_rules! or_remove {
        ($result:expr) => {
            match $result {
                Ok(v) => v,
                Err(e) => {
                    let _ = guard.remove().await;
                    return Err(e);
                }
            }
        };
    }
    for warning in created.warnings {
        cx.log.log("docker", LogLevel::Warn, &warning);
    }

    let attach = |stdin: bool, stdout: bool, stderr: bool| AttachContainerOptions {
        stream: true,
        stdin,
        stdout,
        stderr,
        ..Default::default()
    };
    let main = match launcher {
        Some(_) => None,
        None => Some(or_remove!(engine
            .docker
            .attach_container(&guard.id, Some(attach(write, true, false)))
            .await
            .map_err(|e| start_error(name, image, &e)))),
    };
    let errors = or_remove!(engine
        .docker
        .attach_container(&guard.id, Some(attach(false, false, true)))
        .await
        .map_err(|e| start_error(name, image, &e)));
    or_remove!(engine
        .docker
        .start_container(
            &guard.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|e| start_error(name, image, &e)));
    cx.log.log(
        "docker",
        LogLevel::Debug,
        &format!(
            "Started container {} ({image}) for {} on {} in {} ms ({create_ms} ms to create it), \
             its stdout through {}.",
            short(&guard.id),
            command.as_str(),
            engine.host,
            began.elapsed().as_millis(),
            if main.is_some() {
                "the engine"
            } else {
                "a named pipe"
            }
        ),
    );

    let tail = StderrTail::default();
    let stderr_task = tokio::spawn(drain_stderr(
        AttachReader::new(errors.output, Which::Stderr),
        cx.role.as_str().to_string(),
        cx.log.clone(),
        tail.clone(),
    ));
    let (stdout, stdin) = match (main, stdout_pipe) {
        (Some(main), _) => (
            Stdout::Stream(Box::new(AttachReader::new(main.output, Which::Stdout))),
            write.then(|| Stdin::Stream(Box::new(main.input))),
        ),
        (None, Some(rx)) => {
            // Whatever happens in the container, its stdout ends with it.
            let docker = engine.docker.clone();
            let (id, fifo) = (guard.id.clone(), inputs.path().join(pipes::STDOUT));
            tokio::spawn(async move {
                let _ = docker.wait_container(&id, None).next().await;
                pipes::release(&fifo);
            });
            let stdin = if write {
                let id = guard.id.clone();
                let ended = async {
                    let _ = engine.docker.wait_container(&id, None).next().await;
                };
                Some(or_remove!(
                    pipes::open_stdin(&inputs.path().join(pipes::STDIN), name, ended).await
                ))
            } else {
                None
            };
            (pipes::stdout(rx), stdin)
        }
        (None, None) => unreachable!("one transport or the other"),
    };
    Ok(Running {
        stdout,
        stdin,
        process: Box::new(ContainerProcess {
            name: name.to_string(),
            guard,
            memory: config.memory,
            stderr_task: Some(stderr_task),
            status: None,
            _inputs: inputs,
        }),
        stderr_tail: tail,
    })
}

/// The launcher to start the container with, when the pipes transport is
/// used; `None` for the engine's attach connections.
fn launcher(
    engine: &Engine,
    config: &DockerConfig,
    dir: &Path,
    name: &str,
    cx: &RunContext,
) -> Result<Option<PathBuf>, ConnectorError> {
    let wanted = match config.transport {
        Transport::Attach => false,
        Transport::Pipes => true,
        Transport::Auto => engine.shares_pipes && pipes::available(),
    };
    if !wanted {
        return Ok(None);
    }
    match pipes::install(dir) {
        Ok(path) => Ok(Some(path)),
        Err(e) if config.transport == Transport::Auto => {
            cx.log.log(
                "docker",
                LogLevel::Warn,
                &format!(
                    "Cannot install the launcher in {} ({e}); streaming through the engine instead.",
                    dir.display()
                ),
            );
            Ok(None)
        }
        Err(e) => Err(ConnectorError::Unavailable {
            connector: name.to_string(),
            message: format!("the pipes transport cannot be used: {e}"),
            hint: "unset SLUICE_DOCKER_TRANSPORT, or set it to attach".into(),
        }),
    }
}

/// Makes the inputs readable by the user the container runs as, who has no
/// capabilities to read what is not theirs. Returns the user to run as
/// instead of the image's, when the files cannot be given to that one.
fn own_inputs(
    engine: &Engine,
    facts: &ImageFacts,
    dir: &Path,
    name: &str,
    cx: &RunContext,
) -> Result<Option<String>, ConnectorError> {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Who our files belong to, as the container sees them.
    let ours = if engine.rootless { 0 } else { euid };
    let Some((uid, gid)) = facts.user else {
        // Docker will say it cannot find the user; nothing to do here.
        return Ok(None);
    };
    if uid == ours {
        return Ok(None);
    }
    if euid == 0 && !engine.rootless {
        let chown = |path: &Path| {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| {
                ConnectorError::Io {
                    connector: name.to_string(),
                    source,
                }
            })
        };
        chown(dir)?;
        for entry in std::fs::read_dir(dir).map_err(|source| ConnectorError::Io {
            connector: name.to_string(),
            source,
        })? {
            let entry = entry.map_err(|source| ConnectorError::Io {
                connector: name.to_string(),
                source,
            })?;
            chown(&entry.path())?;
        }
        return Ok(None);
    }
    let group = if engine.rootless { 0 } else { egid };
    cx.log.log(
        "docker",
        LogLevel::Info,
        &format!(
            "The image runs as user `{}`, who could not read its config; \
             running the container as {ours}:{group}, the owner of the config files, instead.",
            facts.user_name
        ),
    );
    Ok(Some(format!("{ours}:{group}")))
}

fn container_name(cx: &RunContext, command: Command) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "sluice-{}-{}-{}-{}",
        cx.role.as_str(),
        command.as_str(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn start_error(name: &str, image: &str, e: &bollard::errors::Error) -> ConnectorError {
    let message = engine_error(e);
    if message.starts_with("network ") && message.ends_with(" not found") {
        return ConnectorError::Unavailable {
            connector: name.to_string(),
            message: format!("the Docker {message}"),
            hint: "create it with `docker network create NAME`, or leave out --network".into(),
        };
    }
    ConnectorError::Start {
        connector: name.to_string(),
        message: format!("the container for {image} did not start: {message}"),
    }
}

/// Removes its container when dropped, unless it was removed already.
struct Guard {
    engine: &'static Engine,
    id: String,
    removed: bool,
}

impl Guard {
    fn new(engine: &'static Engine, id: String, run: &str) -> Self {
        engine::register(&id, run);
        Guard {
            engine,
            id,
            removed: false,
        }
    }

    async fn remove(&mut self) -> Result<(), bollard::errors::Error> {
        engine::remove(self.engine, &self.id).await?;
        self.removed = true;
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let (engine, id) = (self.engine, std::mem::take(&mut self.id));
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = engine::remove(engine, &id).await;
            });
        }
    }
}

struct ContainerProcess {
    name: String,
    guard: Guard,
    memory: u64,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    /// How the container ended, once known.
    status: Option<ExitStatus>,
    /// Removed after the container.
    _inputs: tempfile::TempDir,
}

#[async_trait]
impl Process for ContainerProcess {
    async fn wait(&mut self) -> Result<ExitStatus, ConnectorError> {
        let status = self.exited().await?;
        if !self.guard.removed {
            if let Err(e) = self.guard.remove().await {
                return Err(runtime(
                    &self.name,
                    format!(
                        "could not remove container {}: {} (`sluice system sweep` removes it later)",
                        short(&self.guard.id),
                        engine_error(&e)
                    ),
                ));
            }
        }
        Ok(status)
    }

    /// The exit code and the OOM flag, without the removal, which takes the
    /// engine about as long as the container's exit again.
    async fn exited(&mut self) -> Result<ExitStatus, ConnectorError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let docker = &self.guard.engine.docker;
        let id = self.guard.id.clone();
        let mut waiting = docker.wait_container(&id, None);
        let waited = match waiting.next().await {
            Some(Ok(r)) => Some(r.status_code),
            // Bollard reports a non-zero exit as an error; it is an answer.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
            Some(Err(e)) => {
                return Err(runtime(
                    &self.name,
                    format!(
                        "lost track of container {}: {}",
                        short(&id),
                        engine_error(&e)
                    ),
                ))
            }
            None => None,
        };
        let state = docker
            .inspect_container(&id, None)
            .await
            .ok()
            .and_then(|c| c.state);
        let code = state
            .as_ref()
            .and_then(|s| s.exit_code)
            .or(waited)
            .map(|c| c as i32);
        let oom_killed = state.as_ref().and_then(|s| s.oom_killed) == Some(true);
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let status = exit_status(code, oom_killed, self.memory);
        self.status = Some(status);
        Ok(status)
    }

    fn kill(&mut self) {
        let engine = self.guard.engine;
        let id = self.guard.id.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                // One that has stopped already answers 409: nothing to do.
                let _ = engine
                    .docker
                    .kill_container(&id, None::<KillContainerOptions>)
                    .await;
            });
        }
    }
}

/// The engine reports a process killed by signal N as exit code 128+N.
fn exit_status(code: Option<i32>, oom_killed: bool, memory: u64) -> ExitStatus {
    let mut status = ExitStatus {
        code,
        signal: None,
        oom_killed,
        memory_limit: Some(memory),
    };
    if let Some(c @ 129..=159) = code {
        if !oom_killed {
            status.code = None;
            status.signal = Some(c - 128);
        }
    }
    status
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Stdout,
    Stderr,
}

type Frames = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// One stream of an attach connection as bytes, read only when asked, so
/// that a slow reader makes the container wait.
struct AttachReader {
    frames: Frames,
    which: Which,
    chunk: Bytes,
    error: Option<std::io::Error>,
    done: bool,
}

impl AttachReader {
    fn new(frames: Frames, which: Which) -> Self {
        AttachReader {
            frames,
            which,
            chunk: Bytes::new(),
            error: None,
            done: false,
        }
    }
}

impl AsyncRead for AttachReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        loop {
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk[..n]);
                this.chunk.advance(n);
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let got_some = buf.filled().len() > start;
            if let Some(e) = this.error.take() {
                if got_some {
                    this.error = Some(e);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(e));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            match this.frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    this.chunk = match (frame, this.which) {
                        (LogOutput::StdOut { message }, Which::Stdout)
                        | (LogOutput::Console { message }, Which::Stdout)
                        | (LogOutput::StdErr { message }, Which::Stderr) => message,
                        _ => Bytes::new(),
                    };
                }
                Poll::Ready(Some(Err(e))) => {
                    this.error = Some(std::io::Error::other(engine_error(&e)));
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending if got_some => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn signals_read_as_signals_and_oom_as_oom() {
        let s = exit_status(Some(137), false, 1 << 30);
        assert_eq!(s.to_string(), "was killed by signal 9 (SIGKILL)");
        let s = exit_status(Some(137), true, 512 << 20);
        assert_eq!(
            s.to_string(),
            "was killed for exceeding its 512 MiB memory limit"
        );
        let s = exit_status(Some(3), false, 1 << 30);
        assert_eq!(s.to_string(), "exited with status 3");
        assert!(exit_status(Some(0), false, 1).success());
    }

    #[tokio::test]
    async fn attach_frames_read_as_one_stream() {
        let frames: Vec<Result<LogOutput, bollard::errors::Error>> = vec![
            Ok(LogOutput::StdOut {
                message: Bytes::from_static(b"{\"a\":"),
            }),
            Ok(LogOutput::StdErr {
                message: Bytes::from_static(b"not for stdout\n"),
            }),
            Ok(LogOutput::StdOut {
                message: Bytes::from_static(b"1}\n"),
            }),
        ];
        let stream: Frames = Box::pin(futures_util::stream::iter(frames));
        let mut out = String::new();
        AttachReader::new(stream, Which::Stdout)
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert_eq!(out, "{\"a\":1}\n");
    }
}

//! The process runtime: a local executable that speaks the protocol
//! (`exec:/path/to/program`), and the spawning every process-based runtime
//! shares.
//!
//! Config, catalog and state go in a private temporary directory (mode 0700,
//! files 0600) that is removed when the process has been waited for. The
//! process runs in its own process group so that stopping it stops whatever
//! it started (Python connectors fork workers), and on Linux it dies with
//! sluice if sluice is killed.

use super::{
    drain_stderr, Command, Connector, ConnectorError, ConnectorRef, ExitStatus, Invocation,
    Process, RunContext, Running, Runtime, RuntimeEnv, StderrTail,
};
use async_trait::async_trait;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

/// Local programs: `exec:/path/to/program`.
pub struct ExecRuntime;

pub static RUNTIME: ExecRuntime = ExecRuntime;

#[async_trait]
impl Runtime for ExecRuntime {
    fn name(&self) -> &'static str {
        "exec"
    }

    fn form(&self) -> &'static str {
        "exec:PATH"
    }

    fn parse(&self, target: &str) -> Result<String, String> {
        if target.is_empty() {
            return Err("nothing follows the `:`".into());
        }
        Ok(target.to_string())
    }

    fn connector(
        &self,
        reference: &ConnectorRef,
        _env: &RuntimeEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(ExecConnector::new(
            reference.clone(),
            PathBuf::from(reference.target()),
        )))
    }
}

/// `exec:/path/to/program`.
pub struct ExecConnector {
    reference: ConnectorRef,
    program: PathBuf,
}

impl ExecConnector {
    pub fn new(reference: ConnectorRef, program: PathBuf) -> Self {
        ExecConnector { reference, program }
    }
}

#[async_trait]
impl Connector for ExecConnector {
    fn reference(&self) -> &ConnectorRef {
        &self.reference
    }

    async fn start(&self, inv: Invocation, cx: &RunContext) -> Result<Running, ConnectorError> {
        spawn(&self.reference.to_string(), &self.program, &[], inv, cx)
    }
}

/// Writes the invocation's inputs to a private temporary directory and
/// returns it with the protocol arguments that point at them: at their
/// paths here, or under `visible_as` where the connector sees the directory
/// elsewhere (mounted in a container).
pub fn write_inputs(
    inv: &Invocation,
    connector: &str,
    visible_as: Option<&Path>,
) -> Result<(tempfile::TempDir, Vec<String>), ConnectorError> {
    let io = |source| ConnectorError::Io {
        connector: connector.to_string(),
        source,
    };
    // Readable by this user only: the config holds secrets.
    let dir = tempfile::Builder::new()
        .prefix("sluice-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(io)?;
    let mut args = vec![inv.command.as_str().to_string()];
    let mut put = |flag: &str, name: &str, bytes: Vec<u8>| -> Result<(), ConnectorError> {
        let path = dir.path().join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        let seen = match visible_as {
            Some(dir) => dir.join(name),
            None => path,
        };
        args.push(flag.to_string());
        args.push(seen.to_string_lossy().into_owned());
        Ok(())
    };
    const SERIALIZES: &str = "connector inputs serialize";
    if let Some(config) = &inv.config {
        put(
            "--config",
            "config.json",
            serde_json::to_vec(config).expect(SERIALIZES),
        )?;
    }
    if let Some(catalog) = &inv.catalog {
        put(
            "--catalog",
            "catalog.json",
            serde_json::to_vec(catalog).expect(SERIALIZES),
        )?;
    }
    if let Some(state) = &inv.state {
        put(
            "--state",
            "state.json",
            serde_json::to_vec(state).expect(SERIALIZES),
        )?;
    }
    Ok((dir, args))
}

/// Starts `program` with `prefix_args` then the protocol arguments.
pub fn spawn(
    name: &str,
    program: &Path,
    prefix_args: &[String],
    inv: Invocation,
    cx: &RunContext,
) -> Result<Running, ConnectorError> {
    let (dir, args) = write_inputs(&inv, name, None)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(prefix_args)
        .args(&args)
        .stdin(if inv.command == Command::Write {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    #[cfg(target_os = "linux")]
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| ConnectorError::Start {
        connector: name.to_string(),
        message: match e.kind() {
            std::io::ErrorKind::NotFound => format!("{} does not exist", program.display()),
            std::io::ErrorKind::PermissionDenied => {
                format!("{} is not executable (chmod +x it)", program.display())
            }
            _ => e.to_string(),
        },
    })?;
    let io = |source| ConnectorError::Io {
        connector: name.to_string(),
        source,
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdin = child.stdin.take();
    let stderr = child.stderr.take().expect("stderr is piped");
    grow_pipe(&stdout);
    if let Some(s) = &stdin {
        grow_pipe(s);
    }
    // As plain pipes, the engine can splice them.
    let stdout =
        tokio::net::unix::pipe::Receiver::from_owned_fd(stdout.into_owned_fd().map_err(io)?)
            .map_err(io)?;
    let stdin = stdin
        .map(|s| {
            s.into_owned_fd()
                .and_then(tokio::net::unix::pipe::Sender::from_owned_fd)
        })
        .transpose()
        .map_err(io)?;
    let tail = StderrTail::default();
    let stderr_task = tokio::spawn(drain_stderr(
        stderr,
        cx.role.as_str().to_string(),
        cx.log.clone(),
        tail.clone(),
    ));
    let pgid = child.id().map(|id| id as i32);
    Ok(Running {
        stdout: super::Stdout::Pipe(stdout),
        stdin: stdin.map(super::Stdin::Pipe),
        process: Box::new(ChildProcess {
            name: name.to_string(),
            child,
            pgid,
            stderr_task: Some(stderr_task),
            status: None,
            _inputs: dir,
        }),
        stderr_tail: tail,
    })
}

/// Larger pipes mean fewer wake-ups per megabyte; Linux allows up to 1 MiB
/// to unprivileged users by default. Failing to grow is harmless.
fn grow_pipe(fd: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: F_SETPIPE_SZ on a pipe we own only changes its buffer size.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = fd;
}

struct ChildProcess {
    name: String,
    child: tokio::process::Child,
    pgid: Option<i32>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    /// How the process ended, once waited for.
    status: Option<ExitStatus>,
    /// Removed when the process is dropped.
    _inputs: tempfile::TempDir,
}

#[async_trait]
impl Process for ChildProcess {
    async fn wait(&mut self) -> Result<ExitStatus, ConnectorError> {
        // Waited for already: its group was stopped then, and its process
        // group id may belong to someone else by now.
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .await
            .map_err(|source| ConnectorError::Io {
                connector: self.name.clone(),
                source,
            })?;
        // What the group started may still hold stderr open; stop it, then
        // let the stderr reader finish so the tail is complete.
        self.kill_group();
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        let status = ExitStatus {
            code: status.code(),
            signal: status.signal(),
            ..ExitStatus::default()
        };
        self.status = Some(status);
        Ok(status)
    }

    fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.start_kill();
    }
}

impl ChildProcess {
    fn kill_group(&self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: signals the process group this child leads; sluice
            // itself is in another group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}

//! The Python runtime: an Airbyte connector from PyPI
//! (`python:airbyte-source-faker==7.2.1`) in a managed virtualenv.
//!
//! Each package and version gets its own virtualenv under
//! `<install dir>/python/<package>-<version>`, created on first use (or by
//! `sluice connector install`). A manifest written last marks an install
//! complete, and an exclusive lock keeps two sluice processes from
//! installing the same connector at once. An install that fails or is
//! interrupted removes its virtualenv (stopping pip first when sluice
//! exits mid-install), so no half-made directory is left; one left by a
//! killed sluice has no manifest and is made again. The connector then
//! runs as a process, exactly like `exec:`.

use super::registry::{Installed, OptionSpec};
use super::{
    process, Connector, ConnectorError, ConnectorRef, ConnectorSpecification, Invocation,
    RunContext, Running, Runtime, RuntimeEnv,
};
use crate::fsutil::Unfinished;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, BufReader};

const MANIFEST: &str = "sluice-connector.json";
const SPEC_CACHE: &str = "spec.json";

/// What an install left behind, read back on every use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub package: String,
    pub version: String,
    /// The console script that runs the connector.
    pub entrypoint: String,
    pub python: String,
    pub installed_at: String,
}

pub struct PythonConnector {
    reference: ConnectorRef,
    package: String,
    version: Option<String>,
    root: PathBuf,
    python: String,
}

/// Airbyte connectors from PyPI: `python:PACKAGE[==VERSION]`.
pub struct PythonRuntime;

pub static RUNTIME: PythonRuntime = PythonRuntime;

/// The interpreter virtualenvs are made with, unless `SLUICE_PYTHON` says.
const DEFAULT_PYTHON: &str = "python3";

#[async_trait]
impl Runtime for PythonRuntime {
    fn name(&self) -> &'static str {
        "python"
    }

    fn form(&self) -> &'static str {
        "python:PACKAGE[==VERSION]"
    }

    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec {
            name: "interpreter",
            env: "SLUICE_PYTHON",
            help: "the Python that connectors' virtualenvs are made with [default: python3]",
            path: false,
        }]
    }

    /// `PACKAGE` or `PACKAGE==VERSION`, the package in PyPI's normal form.
    fn parse(&self, target: &str) -> Result<String, String> {
        let (package, version) = match target.split_once("==") {
            Some((p, v)) => (p.trim(), Some(v.trim())),
            None => (target.trim(), None),
        };
        if package.is_empty() || !package.chars().all(is_package_char) {
            return Err("write python:PACKAGE or python:PACKAGE==VERSION".into());
        }
        let package = package.to_ascii_lowercase().replace('_', "-");
        match version {
            Some(v) if v.is_empty() || !v.chars().all(is_package_char) => {
                Err("the version after `==` must be an exact version".into())
            }
            Some(v) => Ok(format!("{package}=={v}")),
            None => Ok(package),
        }
    }

    fn connector(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(PythonConnector::new(reference.clone(), env)))
    }

    async fn install(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
        cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        let (dir, manifest) = PythonConnector::new(reference.clone(), env)
            .install(cx)
            .await?;
        Ok(Some(info(dir, manifest)))
    }

    fn installed(&self, env: &RuntimeEnv) -> Vec<Installed> {
        list_installed(&env.install_dir.join("python"))
            .into_iter()
            .map(|(dir, m)| info(dir, m))
            .collect()
    }
}

fn is_package_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '!')
}

/// An installed connector as `sluice connector list` shows it.
fn info(dir: PathBuf, m: Manifest) -> Installed {
    let kind = if m.package.contains("source-") {
        "source"
    } else if m.package.contains("destination-") {
        "destination"
    } else {
        ""
    };
    Installed {
        reference: format!("python:{}=={}", m.package, m.version),
        runtime: "python".into(),
        kind: kind.into(),
        version: m.version,
        description: format!("runs `{}`, installed {}", m.entrypoint, m.installed_at),
        location: Some(dir),
    }
}

impl PythonConnector {
    /// A connector for a reference the Python runtime parsed.
    pub fn new(reference: ConnectorRef, env: &RuntimeEnv) -> Self {
        let (package, version) = match reference.target().split_once("==") {
            Some((p, v)) => (p.to_string(), Some(v.to_string())),
            None => (reference.target().to_string(), None),
        };
        PythonConnector {
            reference,
            package,
            version,
            root: env.install_dir.join("python"),
            python: env
                .option("python", "interpreter")
                .unwrap_or(DEFAULT_PYTHON)
                .to_string(),
        }
    }

    fn err(&self, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Install {
            connector: self.reference.to_string(),
            message: message.into(),
        }
    }

    fn venv_dir(&self, version: &str) -> PathBuf {
        self.root.join(format!("{}-{}", self.package, version))
    }

    /// The installed manifest, if this connector is installed.
    pub fn installed(&self) -> Option<(PathBuf, Manifest)> {
        match &self.version {
            Some(v) => {
                let dir = self.venv_dir(v);
                read_manifest(&dir).map(|m| (dir, m))
            }
            // Without a version, the most recently installed one.
            None => list_installed(&self.root)
                .into_iter()
                .filter(|(_, m)| m.package == self.package)
                .max_by(|a, b| a.1.installed_at.cmp(&b.1.installed_at)),
        }
    }

    /// Installs the connector unless it is installed; returns where.
    pub async fn install(&self, cx: &RunContext) -> Result<(PathBuf, Manifest), ConnectorError> {
        if let Some(found) = self.installed() {
            return Ok(found);
        }
        let version = match &self.version {
            Some(v) => v.clone(),
            None => {
                cx.progress
                    .step(&format!("Finding the latest version of {}", self.package));
                self.latest_version()
                    .await
                    .map_err(|e| self.not_on_pypi(e, &self.package))?
            }
        };
        std::fs::create_dir_all(&self.root)
            .map_err(|e| self.err(format!("cannot create {}: {e}", self.root.display())))?;
        let dir = self.venv_dir(&version);
        let lock_path = self
            .root
            .join(format!(".{}-{}.lock", self.package, version));
        let _lock = lock_exclusive(&lock_path)
            .await
            .map_err(|e| self.err(format!("cannot lock {}: {e}", lock_path.display())))?;
        if let Some(m) = read_manifest(&dir) {
            return Ok((dir, m));
        }
        if dir.exists() {
            // An install that was interrupted: start it over.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| self.err(format!("cannot remove {}: {e}", dir.display())))?;
        }
        // Until the manifest is written, the virtualenv goes on any failure.
        let venv = Unfinished::new(&dir);
        let spec = format!("{}=={}", self.package, version);
        cx.progress.step(&format!(
            "Creating a virtualenv for {spec} with {}",
            self.python
        ));
        self.run_logged(
            Path::new(&self.python),
            &["-m", "venv", &dir.to_string_lossy()],
            &venv,
            cx,
        )
        .await?;
        cx.progress.step(&format!("Installing {spec} from PyPI"));
        let py = dir.join("bin/python");
        self.run_logged(
            &py,
            &[
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                &spec,
            ],
            &venv,
            cx,
        )
        .await
        .map_err(|e| self.not_on_pypi(e, &spec))?;
        let entrypoint = self.find_entrypoint(&py).await?;
        let manifest = Manifest {
            package: self.package.clone(),
            version: version.clone(),
            entrypoint,
            python: self.python.clone(),
            installed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
        };
        crate::fsutil::write_atomic(
            &dir.join(MANIFEST),
            &serde_json::to_vec_pretty(&manifest).expect("manifest serializes"),
            0o644,
        )
        .map_err(|e| self.err(format!("cannot write the install manifest: {e}")))?;
        venv.finish();
        cx.progress.step(&format!("Installed {spec}"));
        Ok((dir, manifest))
    }

    /// Runs an install step that writes into `venv`, passing its output on
    /// as progress; fails with the tail of that output.
    async fn run_logged(
        &self,
        program: &Path,
        args: &[&str],
        venv: &Unfinished,
        cx: &RunContext,
    ) -> Result<(), ConnectorError> {
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .env("PIP_NO_INPUT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                self.err(format!(
                    "cannot run {}: {e} (set SLUICE_PYTHON to a Python 3.10+ interpreter)",
                    program.display()
                ))
            })?;
        venv.written_by(child.id());
        let tail = super::StderrTail::default();
        let mut out = BufReader::new(child.stdout.take().expect("piped")).lines();
        let err_task = tokio::spawn(super::drain_stderr(
            child.stderr.take().expect("piped"),
            "pip".into(),
            cx.log.clone(),
            tail.clone(),
        ));
        loop {
            let line = tokio::select! {
                line = out.next_line() => line,
                // A cancelled run stops pip; the virtualenv goes with it.
                _ = cx.cancel.cancelled() => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    venv.written_by(None);
                    return Err(self.err("the install was cancelled"));
                }
            };
            let Ok(Some(line)) = line else { break };
            let line = line.trim();
            if !line.is_empty() {
                cx.progress.step(line);
                cx.log.log("pip", crate::protocol::LogLevel::Info, line);
                tail.push(line.to_string());
            }
        }
        let status = child.wait().await;
        venv.written_by(None);
        let status = status.map_err(|e| self.err(format!("{} failed: {e}", program.display())))?;
        let _ = err_task.await;
        if status.success() {
            Ok(())
        } else {
            Err(self.err(format!(
                "`{} {}` failed ({status}); its last output:\n{}",
                program.display(),
                args.join(" "),
                tail.text()
            )))
        }
    }

    /// pip's failure to find the package, as the user's to fix (exit 2):
    /// a name or version that PyPI does not have, or no PyPI to ask.
    fn not_on_pypi(&self, e: ConnectorError, spec: &str) -> ConnectorError {
        let ConnectorError::Install { message, .. } = &e else {
            return e;
        };
        if !message.contains("No matching distribution found") {
            return e;
        }
        let pip_says: Vec<&str> = message
            .lines()
            .filter(|l| l.starts_with("ERROR:"))
            .map(|l| l.trim_start_matches("ERROR:").trim())
            .collect();
        ConnectorError::Unavailable {
            connector: self.reference.to_string(),
            message: format!(
                "{}: pip found no {spec} to install ({})",
                self.reference,
                pip_says.join("; ")
            ),
            hint: format!(
                "check the package name and version (https://pypi.org/project/{}/ lists \
                 its versions), and that this machine reaches PyPI or your package index",
                self.package
            ),
        }
    }

    /// Asks pip which version `pip install PACKAGE` would pick, without
    /// installing anything.
    async fn latest_version(&self) -> Result<String, ConnectorError> {
        let out = tokio::process::Command::new(&self.python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--dry-run",
                "--no-deps",
                "--ignore-installed",
                "--quiet",
                "--report",
                "-",
                &self.package,
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.err(format!("cannot run {}: {e}", self.python)))?;
        if !out.status.success() {
            return Err(self.err(format!(
                "pip could not find {}: {}",
                self.package,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| self.err(format!("pip's install report is not JSON: {e}")))?;
        report["install"][0]["metadata"]["version"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err("pip's install report names no version"))
    }

    /// The console script of the installed package that runs the connector.
    async fn find_entrypoint(&self, py: &Path) -> Result<String, ConnectorError> {
        let script = r#"
import importlib.metadata as m, json, sys
d = m.distribution(sys.argv[1])
print(json.dumps([e.name for e in d.entry_points if e.group == "console_scripts"]))
"#;
        let out = tokio::process::Command::new(py)
            .args(["-c", script, &self.package])
            .output()
            .await
            .map_err(|e| self.err(format!("cannot inspect the install: {e}")))?;
        let scripts: Vec<String> = serde_json::from_slice(&out.stdout).map_err(|_| {
            self.err(format!(
                "cannot read the package's entry points: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        pick_entrypoint(&self.package, &scripts).ok_or_else(|| {
            self.err(format!(
                "the package installs no console script to run it by (found: {})",
                if scripts.is_empty() {
                    "none".to_string()
                } else {
                    scripts.join(", ")
                }
            ))
        })
    }
}

/// `airbyte-source-faker` runs as `source-faker`: prefer the script named
/// after the package without its `airbyte-` prefix, else the only one.
fn pick_entrypoint(package: &str, scripts: &[String]) -> Option<String> {
    let short = package.strip_prefix("airbyte-").unwrap_or(package);
    scripts
        .iter()
        .find(|s| s.as_str() == short || s.as_str() == package)
        .or_else(|| (scripts.len() == 1).then(|| &scripts[0]))
        .cloned()
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every complete install under `root`, with its directory.
pub fn list_installed(root: &Path) -> Vec<(PathBuf, Manifest)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Manifest)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| read_manifest(&p).map(|m| (p, m)))
        .collect();
    found.sort_by(|a, b| (&a.1.package, &a.1.version).cmp(&(&b.1.package, &b.1.version)));
    found
}

/// Holds an exclusive `flock` until dropped.
struct FileLock(#[allow(dead_code)] std::fs::File);

async fn lock_exclusive(path: &Path) -> std::io::Result<FileLock> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a descriptor we own; released when it closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(FileLock(f))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[async_trait]
impl Connector for PythonConnector {
    fn reference(&self) -> &ConnectorRef {
        &self.reference
    }

    async fn prepare(&self, cx: &RunContext) -> Result<(), ConnectorError> {
        self.install(cx).await.map(|_| ())
    }

    async fn start(&self, inv: Invocation, cx: &RunContext) -> Result<Running, ConnectorError> {
        let (dir, manifest) = self.install(cx).await?;
        let program = dir.join("bin").join(&manifest.entrypoint);
        process::spawn(&self.reference.to_string(), &program, &[], inv, cx)
    }

    /// An installed package never changes, so its spec is read once and kept
    /// beside it: Python connectors take seconds to start.
    async fn spec(&self, cx: &RunContext) -> Result<ConnectorSpecification, ConnectorError> {
        let (dir, _) = self.install(cx).await?;
        let cache = dir.join(SPEC_CACHE);
        if let Ok(bytes) = std::fs::read(&cache) {
            if let Ok(spec) = serde_json::from_slice(&bytes) {
                return Ok(spec);
            }
        }
        let answer =
            super::run_to_end(self, Invocation::new(super::Command::Spec), cx, "SPEC").await?;
        let crate::protocol::Message::Spec(spec) = answer else {
            unreachable!("run_to_end returns the expected message")
        };
        // A cache that cannot be written only costs the next call some time.
        let _ = crate::fsutil::write_atomic(
            &cache,
            &serde_json::to_vec(&spec).expect("spec serializes"),
            0o644,
        );
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_is_the_package_name_without_airbyte() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_entrypoint("airbyte-source-faker", &s(&["source-faker", "other"])),
            Some("source-faker".into())
        );
        assert_eq!(
            pick_entrypoint("my-conn", &s(&["runner"])),
            Some("runner".into())
        );
        assert_eq!(pick_entrypoint("my-conn", &s(&["a", "b"])), None);
    }
}

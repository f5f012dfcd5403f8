//! The Docker runtime: an Airbyte connector image
//! (`docker:airbyte/source-faker:6.2.1`), one container per protocol
//! command, through bollard against the engine `DOCKER_HOST` names (else
//! the local socket).
//!
//! A container starts the way Airbyte's platform starts a connector: with
//! the image's `AIRBYTE_ENTRYPOINT` when it sets one, else its entrypoint,
//! followed by `read --config /sluice/config.json --catalog ...`; the
//! inputs sit in a private temporary directory mounted read-only. It runs
//! with memory and CPU limits, no capabilities and no new privileges, and
//! carries labels naming its job, attempt, role and the sluice process that
//! started it.
//!
//! A container must never outlive its command: it is removed when waited
//! for or dropped, a run's containers are removed when that run must stop
//! at once ([`Runtime::stop_run`]), and the sweeper removes what a killed
//! sluice left behind.

mod container;
mod engine;
mod image;
mod pipes;
mod sweep;

pub use image::ImageFacts;

use super::registry::{Installed, OptionSpec, RuntimeOptions, SweepReport};
use super::{
    Command, Connector, ConnectorError, ConnectorRef, ConnectorSpecification, Invocation,
    RunContext, Running, Runtime, RuntimeEnv,
};
use async_trait::async_trait;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// When to pull a connector's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    /// Before the first use in each sluice process.
    Always,
    /// When the engine does not have it.
    #[default]
    Missing,
    /// Never: a missing image is an error.
    Never,
}

impl FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(PullPolicy::Always),
            "missing" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "`{other}` is not a pull policy; use always, missing or never"
            )),
        }
    }
}

/// How a container's stdin and stdout reach sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Named pipes when the engine shares this machine's kernel and files,
    /// else the engine's attach connections.
    #[default]
    Auto,
    /// Named pipes in the mounted input directory, connected by a small
    /// launcher that becomes the connector: the kernel moves the data.
    Pipes,
    /// The engine's attach connections: works with any engine, at the
    /// engine's speed.
    Attach,
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Transport::Auto),
            "pipes" => Ok(Transport::Pipes),
            "attach" => Ok(Transport::Attach),
            other => Err(format!(
                "`{other}` is not a transport; use auto, pipes or attach"
            )),
        }
    }
}

/// How connector containers run; the same for every container of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    pub pull: PullPolicy,
    /// Memory limit of each container, in bytes.
    pub memory: u64,
    /// CPUs each container may use.
    pub cpus: f64,
    /// The network containers join: `host` (the default, as Airbyte's
    /// launcher), `bridge`, or a network of the user's.
    pub network: String,
    /// A host directory mounted at /local, as Airbyte's platform does for
    /// destinations that write files.
    pub local_root: Option<PathBuf>,
    pub transport: Transport,
}

pub const DEFAULT_MEMORY: u64 = 2 << 30;
/// The machine's own network, as Airbyte's Docker launcher runs connectors
/// (its `DOCKER_NETWORK`, default `host`): a container reaches what the
/// machine reaches, `localhost` included, and starts without a network of
/// its own to set up.
pub const DEFAULT_NETWORK: &str = "host";
pub const DEFAULT_CPUS: f64 = 2.0;

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            pull: PullPolicy::Missing,
            memory: DEFAULT_MEMORY,
            cpus: DEFAULT_CPUS,
            network: DEFAULT_NETWORK.into(),
            local_root: None,
            transport: Transport::Auto,
        }
    }
}

/// A memory size as Docker writes them: `512m`, `2g`, `1.5GiB`, `1048576`.
/// Units are binary (k = 1024), as in `docker run --memory`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("`{text}` is not a size; write e.g. 512m or 2g")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 512m or 2g"))?;
    let bytes = (value * scale as f64) as u64;
    // The engine refuses limits under 6 MiB.
    if bytes < 6 << 20 {
        return Err(format!(
            "`{text}` is too little memory for a container; give at least 6m"
        ));
    }
    Ok(bytes)
}

/// A CPU count: `0.5`, `2`.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if (0.01..=1024.0).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a CPU count; write e.g. 0.5 or 2")),
    }
}

/// Airbyte connector images: `docker:IMAGE:TAG`.
pub struct DockerRuntime;

pub static RUNTIME: DockerRuntime = DockerRuntime;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "pull",
        env: "SLUICE_DOCKER_PULL",
        help: "when to pull a connector's image: always, missing or never [default: missing]",
        path: false,
    },
    OptionSpec {
        name: "memory",
        env: "SLUICE_DOCKER_MEMORY",
        help: "the memory limit of each connector container, e.g. 512m or 2g [default: 2g]",
        path: false,
    },
    OptionSpec {
        name: "cpus",
        env: "SLUICE_DOCKER_CPUS",
        help: "the CPUs each connector container may use, e.g. 0.5 [default: 2]",
        path: false,
    },
    OptionSpec {
        name: "network",
        env: "SLUICE_DOCKER_NETWORK",
        help: "the network connector containers join: host, bridge or a network's name [default: host]",
        path: false,
    },
    OptionSpec {
        name: "local_root",
        env: "SLUICE_DOCKER_LOCAL_ROOT",
        help: "an absolute host directory mounted at /local in connector containers",
        path: true,
    },
    OptionSpec {
        name: "transport",
        env: "SLUICE_DOCKER_TRANSPORT",
        help: "how stdin and stdout reach sluice: auto, pipes or attach [default: auto]",
        path: false,
    },
];

impl DockerRuntime {
    /// How containers run under these options.
    pub fn config(&self, env: &RuntimeEnv) -> Result<DockerConfig, ConnectorError> {
        let defaults = DockerConfig::default();
        let local_root = env.parsed(self, "local_root", |v| {
            let path = PathBuf::from(v);
            // The engine mounts absolute paths only, and creates missing
            // ones as root.
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(format!("`{v}` is not an absolute path"))
            }
        })?;
        Ok(DockerConfig {
            pull: env
                .parsed(self, "pull", str::parse)?
                .unwrap_or(defaults.pull),
            memory: env
                .parsed(self, "memory", parse_memory)?
                .unwrap_or(defaults.memory),
            cpus: env
                .parsed(self, "cpus", parse_cpus)?
                .unwrap_or(defaults.cpus),
            network: env
                .parsed(self, "network", |v| match v.trim() {
                    "" => Err("the network is empty".into()),
                    name => Ok(name.to_string()),
                })?
                .unwrap_or(defaults.network),
            local_root,
            transport: env
                .parsed(self, "transport", str::parse)?
                .unwrap_or(defaults.transport),
        })
    }

    fn connector_of(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
    ) -> Result<DockerConnector, ConnectorError> {
        Ok(DockerConnector::new(
            reference.clone(),
            self.config(env)?,
            env,
        ))
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn form(&self) -> &'static str {
        "docker:IMAGE:TAG"
    }

    fn options(&self) -> &'static [OptionSpec] {
        OPTIONS
    }

    fn check_options(&self, options: &RuntimeOptions) -> Result<(), ConnectorError> {
        let env = RuntimeEnv {
            install_dir: PathBuf::new(),
            options: options.clone(),
        };
        self.config(&env).map(drop)
    }

    fn parse(&self, target: &str) -> Result<String, String> {
        parse_image(target)
    }

    fn connector(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        Ok(Arc::new(self.connector_of(reference, env)?))
    }

    /// Installing an image is having it: pulled unless it is there.
    async fn install(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
        cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        let d = self.connector_of(reference, env)?;
        let facts = d.facts(cx).await?;
        Ok(Some(info(reference.target(), facts)))
    }

    async fn pull(
        &self,
        reference: &ConnectorRef,
        env: &RuntimeEnv,
        cx: &RunContext,
    ) -> Result<Option<Installed>, ConnectorError> {
        let d = self.connector_of(reference, env)?;
        let facts = d.pull(cx).await?;
        Ok(Some(info(reference.target(), &facts)))
    }

    async fn sweep(&self, _env: &RuntimeEnv) -> Result<Option<SweepReport>, ConnectorError> {
        sweep::sweep().await.map(Some)
    }

    async fn stop_run(&self, run: &str) {
        engine::stop_run(run).await;
    }
}

/// Checks an image reference: a repository (optionally behind a registry
/// host) with a tag or a digest. A tag is required: a connector that
/// changes under a sync because `latest` moved is a surprise nobody wants.
fn parse_image(rest: &str) -> Result<String, String> {
    const FORM: &str = "write docker:IMAGE:TAG, e.g. docker:airbyte/source-faker:6.2.1";
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(FORM.into());
    }
    let (repository, has_version) = match rest.split_once('@') {
        Some((repo, digest)) => {
            let valid = digest.split_once(':').is_some_and(|(algo, hex)| {
                !algo.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
            });
            if !valid {
                return Err("the digest after `@` must look like sha256:0123abc...".into());
            }
            (repo, true)
        }
        None => {
            // A `:` after the last `/` starts the tag; one before it is a
            // registry port (localhost:5000/name).
            let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
            match rest[last_slash..].rfind(':') {
                Some(i) => {
                    let tag = &rest[last_slash + i + 1..];
                    let ok = !tag.is_empty()
                        && tag.len() <= 128
                        && tag
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    if !ok {
                        return Err(format!("`{tag}` is not a valid image tag; {FORM}"));
                    }
                    (&rest[..last_slash + i], true)
                }
                None => (rest, false),
            }
        }
    };
    if !has_version {
        return Err(format!("the image has no tag; {FORM}"));
    }
    let path = match repository.split_once('/') {
        // The first part is a registry host when it looks like one.
        Some((host, path)) if host.contains(['.', ':']) || host == "localhost" => path,
        _ => repository,
    };
    let valid_path = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        });
    if !valid_path {
        return Err(format!(
            "`{repository}` is not a valid image name (lower-case letters, digits, `.`, `_`, `-` and `/`)"
        ));
    }
    Ok(rest.to_string())
}

/// An image as `sluice connector list` and `pull` show it.
fn info(image: &str, facts: &ImageFacts) -> Installed {
    let repository = image.split(['@']).next().unwrap_or(image);
    let last_slash = repository.rfind('/').map_or(0, |i| i + 1);
    let (name, version) = match image.split_once('@') {
        Some((_, digest)) => (repository, digest),
        None => match repository[last_slash..].rfind(':') {
            Some(i) => (
                &repository[..last_slash + i],
                &repository[last_slash + i + 1..],
            ),
            None => (repository, ""),
        },
    };
    let base = &name[name.rfind('/').map_or(0, |i| i + 1)..];
    let kind = if base.starts_with("source-") {
        "source"
    } else if base.starts_with("destination-") {
        "destination"
    } else {
        ""
    };
    let id = facts.id.trim_start_matches("sha256:");
    Installed {
        reference: format!("docker:{image}"),
        runtime: "docker".into(),
        kind: kind.into(),
        version: version.into(),
        description: match facts.size {
            Some(size) => format!(
                "image {}, {}",
                &id[..id.len().min(12)],
                crate::connector::human_bytes(size)
            ),
            None => format!("image {}", &id[..id.len().min(12)]),
        },
        location: None,
    }
}

/// `docker:IMAGE:TAG`.
pub struct DockerConnector {
    reference: ConnectorRef,
    image: String,
    config: DockerConfig,
    /// Specs by image id: an image never changes, so neither does its spec.
    spec_cache: PathBuf,
    /// Where the launcher is installed (see `launcher.rs`).
    launcher_dir: PathBuf,
    facts: tokio::sync::OnceCell<ImageFacts>,
}

impl DockerConnector {
    pub fn new(reference: ConnectorRef, config: DockerConfig, env: &RuntimeEnv) -> Self {
        DockerConnector {
            image: reference.target().to_string(),
            reference,
            config,
            spec_cache: env.install_dir.join("docker").join("specs"),
            launcher_dir: env.install_dir.join("docker"),
            facts: tokio::sync::OnceCell::new(),
        }
    }

    fn name(&self) -> String {
        self.reference.to_string()
    }

    /// The image, made available under the pull policy, and what it says
    /// about itself.
    pub async fn facts(&self, cx: &RunContext) -> Result<&ImageFacts, ConnectorError> {
        self.facts
            .get_or_try_init(|| async {
                let engine = engine::connect(&self.name()).await?;
                image::prepare(engine, &self.image, self.config.pull, &self.name(), cx).await
            })
            .await
    }

    /// Pulls the image now, whatever the policy (`sluice connector pull`).
    pub async fn pull(&self, cx: &RunContext) -> Result<ImageFacts, ConnectorError> {
        let engine = engine::connect(&self.name()).await?;
        image::pull_now(engine, &self.image, &self.name(), cx).await
    }
}

#[async_trait]
impl Connector for DockerConnector {
    fn reference(&self) -> &ConnectorRef {
        &self.reference
    }

    async fn preflight(&self) -> Result<(), ConnectorError> {
        engine::connect(&self.name()).await.map(|_| ())
    }

    async fn prepare(&self, cx: &RunContext) -> Result<(), ConnectorError> {
        self.facts(cx).await.map(|_| ())
    }

    async fn start(&self, inv: Invocation, cx: &RunContext) -> Result<Running, ConnectorError> {
        let engine = engine::connect(&self.name()).await?;
        let facts = self.facts(cx).await?;
        let spawn = container::Spawn {
            engine,
            image: &self.image,
            facts,
            config: &self.config,
            name: &self.name(),
            launcher_dir: &self.launcher_dir,
        };
        container::start(spawn, inv, cx).await
    }

    async fn spec(&self, cx: &RunContext) -> Result<ConnectorSpecification, ConnectorError> {
        let facts = self.facts(cx).await?;
        let cache = (!facts.id.is_empty()).then(|| {
            self.spec_cache
                .join(format!("{}.json", facts.id.replace(':', "-")))
        });
        if let Some(bytes) = cache.as_ref().and_then(|c| std::fs::read(c).ok()) {
            if let Ok(spec) = serde_json::from_slice(&bytes) {
                return Ok(spec);
            }
        }
        let answer = super::run_to_end(self, Invocation::new(Command::Spec), cx, "SPEC").await?;
        let crate::protocol::Message::Spec(spec) = answer else {
            unreachable!("run_to_end returns the expected message")
        };
        if let Some(cache) = cache {
            // A cache that cannot be written only costs the next call a container.
            let _ = std::fs::create_dir_all(&self.spec_cache);
            let _ = crate::fsutil::write_atomic(
                &cache,
                &serde_json::to_vec(&spec).expect("spec serializes"),
                0o644,
            );
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("2g"), Ok(2 << 30));
        assert_eq!(parse_memory("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_memory("67108864"), Ok(64 << 20));
        assert!(parse_memory("1k").is_err());
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("5x").is_err());
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("NaN").is_err());
        assert_eq!("Never".parse::<PullPolicy>(), Ok(PullPolicy::Never));
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }
}

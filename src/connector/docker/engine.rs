//! The Docker engine this process talks to, and the containers it has
//! started that still exist.
//!
//! One connection per process, made on first use: to the engine
//! `DOCKER_HOST` names, else the local socket. An engine that does not
//! answer is an error that says where sluice looked and how to fix it.
//! Every container sluice creates is registered here, under the run that
//! started it, until it is removed, so that [`stop_run`] can remove a run's
//! containers when that run must stop at once, and nobody else's.

use super::super::ConnectorError;
use bollard::query_parameters::{RemoveContainerOptions, WaitContainerOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where the engine listens when DOCKER_HOST says nothing.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long the first answer of an engine may take.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Engine {
    pub docker: Docker,
    /// Where it answered: `unix:///var/run/docker.sock`, `tcp://...`.
    pub host: String,
    /// Rootless Docker: root in a container is the user who runs the engine.
    pub rootless: bool,
    /// The engine runs on this machine, on this kernel, for this
    /// architecture: a named pipe in a directory it mounts is shared with
    /// the containers (not so across a network or into Docker Desktop's VM).
    pub shares_pipes: bool,
}

static ENGINE: tokio::sync::OnceCell<Engine> = tokio::sync::OnceCell::const_new();
/// Containers not yet removed: container id -> the run that started it.
static LIVE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// The engine, connected and answering; `what` names who needs it in errors.
pub async fn connect(what: &str) -> Result<&'static Engine, ConnectorError> {
    ENGINE.get_or_try_init(|| open(what)).await
}

/// The engine if a connection was made before; never connects.
pub fn connected() -> Option<&'static Engine> {
    ENGINE.get()
}

fn host_from_env() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

async fn open(what: &str) -> Result<Engine, ConnectorError> {
    let host = host_from_env();
    let unavailable = |message: String, hint: String| ConnectorError::Unavailable {
        connector: what.to_string(),
        message,
        hint,
    };
    let docker = Docker::connect_with_host(&host).map_err(|e| match e {
        bollard::errors::Error::UnsupportedURISchemeError { .. } => unavailable(
            format!("DOCKER_HOST={host} is not an address sluice can use"),
            "set DOCKER_HOST to unix:///path/to/docker.sock or tcp://HOST:PORT, or unset it for the local socket".into(),
        ),
        // A socket file that does not exist: no engine runs there.
        e => unavailable(
            format!("no Docker engine answers at {host} ({})", engine_error(&e)),
            not_answering_hint(&host, &e),
        ),
    })?;
    let answer = tokio::time::timeout(PING_TIMEOUT, async {
        docker.ping().await?;
        docker.negotiate_version().await
    })
    .await;
    let docker = match answer {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            return Err(unavailable(
                format!("no Docker engine answers at {host} ({})", engine_error(&e)),
                not_answering_hint(&host, &e),
            ))
        }
        Err(_) => return Err(unavailable(
            format!(
                "the Docker engine at {host} did not answer within {} s",
                PING_TIMEOUT.as_secs()
            ),
            "check that the engine is healthy (`docker info`), or set DOCKER_HOST to one that is"
                .into(),
        )),
    };
    // An engine that will not describe itself is taken as the usual
    // rootful one, reached through the network.
    let (rootless, shares_pipes) = match docker.info().await {
        Ok(info) => {
            let rootless = info
                .security_options
                .unwrap_or_default()
                .iter()
                .any(|o| o.contains("name=rootless"));
            let same_arch = info.architecture.as_deref() == Some(std::env::consts::ARCH);
            let desktop = info
                .operating_system
                .as_deref()
                .is_some_and(|os| os.contains("Docker Desktop"));
            (
                rootless,
                host.starts_with("unix://") && same_arch && !desktop,
            )
        }
        Err(_) => (false, false),
    };
    Ok(Engine {
        docker,
        host,
        rootless,
        shares_pipes,
    })
}

fn not_answering_hint(host: &str, e: &bollard::errors::Error) -> String {
    let text = e.to_string();
    if text.contains("ermission denied") {
        return format!(
            "your user may not use {host}: add it to the `docker` group (then log in again), \
             or run sluice as a user who may"
        );
    }
    if host.starts_with("unix://") {
        format!(
            "start Docker (`sudo systemctl start docker`, or run `dockerd` in the background), \
             or set DOCKER_HOST to an engine that runs (e.g. DOCKER_HOST=unix://$XDG_RUNTIME_DIR/docker.sock \
             for rootless Docker); `docker info` shows whether one answers at {host}"
        )
    } else {
        format!("check that the engine at {host} runs and can be reached, or unset DOCKER_HOST for the local socket")
    }
}

/// A bollard error as one readable clause.
pub fn engine_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => {
            // Hyper's errors hide their cause; the chain says what happened.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                source = s.source();
            }
            text
        }
    }
}

/// Whether a bollard error is the engine's 404.
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Records a container of `run` as existing until [`forget`] is called.
pub fn register(id: &str, run: &str) {
    LIVE.lock()
        .expect("live containers lock")
        .get_or_insert_with(HashMap::new)
        .insert(id.to_string(), run.to_string());
}

pub fn forget(id: &str) {
    if let Some(set) = LIVE.lock().expect("live containers lock").as_mut() {
        set.remove(id);
    }
}

/// Removes a container, running or not; one that is gone already is fine.
pub async fn remove(engine: &Engine, id: &str) -> Result<(), bollard::errors::Error> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match engine.docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        // "removal of container ... is already in progress" (an earlier
        // request, perhaps one given up on): removed once it is gone.
        Err(
            e @ bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            },
        ) => {
            let gone = WaitContainerOptionsBuilder::new()
                .condition("removed")
                .build();
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                engine.docker.wait_container(id, Some(gone)).next(),
            )
            .await;
            match engine.docker.inspect_container(id, None).await {
                Err(missing) if is_not_found(&missing) => Ok(()),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
    .inspect(|_| forget(id))
}

/// Stops and removes every container `run` started that is not removed
/// yet. For stopping a run at once (a second Ctrl-C, a cancelled job that
/// will not stop): bounded in time.
pub async fn stop_run(run: &str) {
    let Some(engine) = connected() else {
        return;
    };
    let ids: Vec<String> = LIVE
        .lock()
        .expect("live containers lock")
        .as_ref()
        .map(|live| {
            live.iter()
                .filter(|(_, r)| r.as_str() == run)
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    let removals = ids.iter().map(|id| remove(engine, id));
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(removals),
    )
    .await;
}

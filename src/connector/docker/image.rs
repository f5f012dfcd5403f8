//! Connector images: pulled when the policy says so, then inspected for
//! what starting a container needs (the entrypoint Airbyte's platform would
//! use, the user the connector runs as).

use super::engine::{self, engine_error, is_not_found, Engine};
use super::PullPolicy;
use crate::connector::{human_bytes, ConnectorError, RunContext};
use crate::protocol::LogLevel;
use bollard::query_parameters::{CreateImageOptions, DownloadFromContainerOptions};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the runtime needs to know about an image.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// The image id (`sha256:...`): what the image is, whatever its tag.
    pub id: String,
    pub size: Option<u64>,
    /// The entrypoint to set on containers: the words of the image's
    /// `AIRBYTE_ENTRYPOINT`, or `None` to keep the image's own.
    pub entrypoint: Option<Vec<String>>,
    /// The image's own `ENTRYPOINT`.
    pub image_entrypoint: Vec<String>,
    /// The user the image runs as, resolved to ids; `(0, 0)` for root.
    /// `None` when a named user could not be looked up.
    pub user: Option<(u32, u32)>,
    /// The `USER` of the image as written.
    pub user_name: String,
}

/// Makes the image available under `policy` and inspects it.
pub async fn prepare(
    engine: &'static Engine,
    image: &str,
    policy: PullPolicy,
    name: &str,
    cx: &RunContext,
) -> Result<ImageFacts, ConnectorError> {
    match policy {
        PullPolicy::Always => pull_once(engine, image, name, cx).await?,
        PullPolicy::Missing | PullPolicy::Never => match engine.docker.inspect_image(image).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {
                if policy == PullPolicy::Never {
                    return Err(ConnectorError::Unavailable {
                        connector: name.to_string(),
                        message: format!(
                            "the image {image} is not on the Docker engine, and the pull policy `never` \
                             (--pull never, or SLUICE_DOCKER_PULL=never) forbids pulling it"
                        ),
                        hint: format!(
                            "pull it with `sluice connector pull {name}`, or let sluice pull it with --pull missing"
                        ),
                    });
                }
                pull_once(engine, image, name, cx).await?;
            }
            Err(e) => {
                return Err(runtime(
                    name,
                    format!("cannot inspect the image {image}: {}", engine_error(&e)),
                ))
            }
        },
    }
    inspect(engine, image, name, &cx.run).await
}

/// Pulls now, whatever was pulled before (`sluice connector pull`).
pub async fn pull_now(
    engine: &'static Engine,
    image: &str,
    name: &str,
    cx: &RunContext,
) -> Result<ImageFacts, ConnectorError> {
    pull(engine, image, name, cx).await?;
    inspect(engine, image, name, &cx.run).await
}

pub(super) fn runtime(name: &str, message: String) -> ConnectorError {
    ConnectorError::Runtime {
        connector: name.to_string(),
        message,
    }
}

/// Pulls an image at most once per process, however many connectors of a
/// sync ask for it at the same time.
async fn pull_once(
    engine: &'static Engine,
    image: &str,
    name: &str,
    cx: &RunContext,
) -> Result<(), ConnectorError> {
    type Pulls = Mutex<Option<HashMap<String, Arc<tokio::sync::OnceCell<()>>>>>;
    static PULLED: Pulls = Mutex::new(None);
    let cell = PULLED
        .lock()
        .expect("pulls lock")
        .get_or_insert_with(HashMap::new)
        .entry(image.to_string())
        .or_default()
        .clone();
    cell.get_or_try_init(|| pull(engine, image, name, cx))
        .await
        .map(|_| ())
}

/// `repo:tag` -> (`repo`, `tag`); a digest reference is pulled whole.
fn pull_parts(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_string(), None);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            Some(image[last_slash + i + 1..].to_string()),
        ),
        None => (image.to_string(), Some("latest".to_string())),
    }
}

async fn pull(
    engine: &'static Engine,
    image: &str,
    name: &str,
    cx: &RunContext,
) -> Result<(), ConnectorError> {
    let (from_image, tag) = pull_parts(image);
    cx.progress.step(&format!("Pulling {image}"));
    cx.log.log(
        "docker",
        LogLevel::Info,
        &format!("Pulling the image {image} from its registry."),
    );
    let options = CreateImageOptions {
        from_image: Some(from_image),
        tag,
        ..Default::default()
    };
    let mut stream = engine.docker.create_image(Some(options), None, None);
    // Bytes downloaded and to download, per layer.
    let mut layers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut shown = Instant::now();
    let failed =
        |message: String| runtime(name, format!("cannot pull the image {image}: {message}"));
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| failed(engine_error(&e)))?;
        if let Some(detail) = info.error_detail {
            return Err(failed(
                detail
                    .message
                    .unwrap_or_else(|| "the engine gave no reason".into()),
            ));
        }
        let status = info.status.unwrap_or_default();
        if let (Some(id), Some(p)) = (&info.id, &info.progress_detail) {
            let entry = layers.entry(id.clone()).or_default();
            if status == "Downloading" {
                if let (Some(cur), Some(total)) = (p.current, p.total) {
                    *entry = (cur.max(0) as u64, total.max(0) as u64);
                }
            } else if matches!(
                status.as_str(),
                "Download complete" | "Pull complete" | "Already exists"
            ) {
                entry.0 = entry.1;
            }
        }
        if shown.elapsed() >= Duration::from_millis(100) {
            shown = Instant::now();
            let (done, total) = layers
                .values()
                .fold((0, 0), |(d, t), (ld, lt)| (d + ld, t + lt));
            if total > 0 {
                cx.progress.step(&format!(
                    "{image}: {} of {} downloaded",
                    human_bytes(done),
                    human_bytes(total)
                ));
            }
        }
        if info.id.is_none() && !status.is_empty() {
            cx.log.log("docker", LogLevel::Debug, &status);
        }
    }
    cx.progress.step(&format!("Pulled {image}"));
    Ok(())
}

async fn inspect(
    engine: &'static Engine,
    image: &str,
    name: &str,
    run: &str,
) -> Result<ImageFacts, ConnectorError> {
    let inspected = engine.docker.inspect_image(image).await.map_err(|e| {
        runtime(
            name,
            format!("cannot inspect the image {image}: {}", engine_error(&e)),
        )
    })?;
    let config = inspected.config.unwrap_or_default();
    let airbyte_entrypoint = config
        .env
        .unwrap_or_default()
        .iter()
        .find_map(|e| e.strip_prefix("AIRBYTE_ENTRYPOINT=").map(str::to_string))
        .map(|e| e.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|words| !words.is_empty());
    let own_entrypoint = config.entrypoint.unwrap_or_default();
    if airbyte_entrypoint.is_none() && own_entrypoint.is_empty() {
        return Err(runtime(
            name,
            format!(
                "the image {image} sets neither AIRBYTE_ENTRYPOINT nor an ENTRYPOINT, \
                 so there is no telling how to start it as a connector"
            ),
        ));
    }
    let user_name = config.user.unwrap_or_default();
    let user = match parse_user(&user_name) {
        UserSpec::Ids(uid, gid) => Some((uid, gid.unwrap_or(0))),
        UserSpec::Named { .. } | UserSpec::IdNamedGroup { .. } => {
            lookup_user(engine, image, &user_name, run).await
        }
    };
    Ok(ImageFacts {
        id: inspected.id.unwrap_or_default(),
        size: inspected.size.map(|s| s.max(0) as u64),
        entrypoint: airbyte_entrypoint,
        image_entrypoint: own_entrypoint,
        user,
        user_name,
    })
}

#[derive(Debug, PartialEq, Eq)]
enum UserSpec {
    Ids(u32, Option<u32>),
    Named { user: String, group: Option<String> },
    IdNamedGroup { uid: u32, group: String },
}

/// `USER` as Docker reads it: `uid`, `uid:gid`, `name`, `name:group`; empty is root.
fn parse_user(text: &str) -> UserSpec {
    let (user, group) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    if user.is_empty() {
        return UserSpec::Ids(0, Some(0));
    }
    match (user.parse::<u32>(), group.map(|g| g.parse::<u32>())) {
        (Ok(uid), None) => UserSpec::Ids(uid, None),
        (Ok(uid), Some(Ok(gid))) => UserSpec::Ids(uid, Some(gid)),
        (Ok(uid), Some(Err(_))) => UserSpec::IdNamedGroup {
            uid,
            group: group.unwrap_or_default().to_string(),
        },
        (Err(_), _) => UserSpec::Named {
            user: user.to_string(),
            group: group.map(str::to_string),
        },
    }
}

/// Resolves a named user through the image's /etc/passwd and /etc/group,
/// read from a container that is created for that and never started.
async fn lookup_user(
    engine: &'static Engine,
    image: &str,
    user: &str,
    run: &str,
) -> Option<(u32, u32)> {
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(
            crate::owner::Owner::current()
                .labels()
                .into_iter()
                .chain([("sluice.role".to_string(), "lookup".to_string())])
                .collect(),
        ),
        // Never started; an entrypoint keeps images without one creatable.
        entrypoint: Some(vec!["/nonexistent".into()]),
        ..Default::default()
    };
    let created = engine
        .docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .ok()?;
    engine::register(&created.id, run);
    let passwd = read_file(engine, &created.id, "/etc/passwd").await;
    let group = read_file(engine, &created.id, "/etc/group").await;
    let _ = engine::remove(engine, &created.id).await;
    resolve_user(&parse_user(user), passwd.as_deref()?, group.as_deref())
}

fn resolve_user(spec: &UserSpec, passwd: &str, group: Option<&str>) -> Option<(u32, u32)> {
    let field = |line: &str, i: usize| line.split(':').nth(i).map(str::to_string);
    let gid_of = |name: &str| {
        group?
            .lines()
            .find(|l| field(l, 0).as_deref() == Some(name))
            .and_then(|l| field(l, 2)?.parse().ok())
    };
    match spec {
        UserSpec::Ids(uid, gid) => Some((*uid, gid.unwrap_or(0))),
        UserSpec::IdNamedGroup { uid, group } => Some((*uid, gid_of(group)?)),
        UserSpec::Named { user, group } => {
            let line = passwd
                .lines()
                .find(|l| field(l, 0).as_deref() == Some(user.as_str()))?;
            let uid = field(line, 2)?.parse().ok()?;
            let gid = match group {
                Some(g) => g.parse().ok().or_else(|| gid_of(g))?,
                None => field(line, 3)?.parse().ok()?,
            };
            Some((uid, gid))
        }
    }
}

/// One small text file of a container, out of the tar archive the engine sends.
async fn read_file(engine: &Engine, id: &str, path: &str) -> Option<String> {
    let options = DownloadFromContainerOptions {
        path: path.to_string(),
    };
    let mut stream = engine.docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.ok()?);
        if tar.len() > 4 << 20 {
            return None;
        }
    }
    first_tar_entry(&tar).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The content of the first regular file in a tar archive (ustar headers).
fn first_tar_entry(tar: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            return None;
        }
        let size_field = std::str::from_utf8(&header[124..136]).ok()?;
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .ok()? as usize;
        let kind = header[156];
        let start = at + 512;
        if kind == b'0' || kind == 0 {
            return tar.get(start..start + size);
        }
        at = start + size.div_ceil(512) * 512;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_split_the_tag_off() {
        assert_eq!(
            pull_parts("airbyte/source-faker:6.2.1"),
            ("airbyte/source-faker".into(), Some("6.2.1".into()))
        );
        assert_eq!(
            pull_parts("localhost:5000/x:dev"),
            ("localhost:5000/x".into(), Some("dev".into()))
        );
        assert_eq!(pull_parts("x@sha256:ab"), ("x@sha256:ab".into(), None));
    }

    #[test]
    fn users_resolve_like_docker_does() {
        let passwd = "root:x:0:0::/root:/bin/sh\nairbyte:x:1000:1001::/home/airbyte:/bin/sh\n";
        let group = "root:x:0:\nairbyte:x:1001:\nstaff:x:50:\n";
        let r = |u: &str| resolve_user(&parse_user(u), passwd, Some(group));
        assert_eq!(parse_user(""), UserSpec::Ids(0, Some(0)));
        assert_eq!(r("4242"), Some((4242, 0)));
        assert_eq!(r("4242:7"), Some((4242, 7)));
        assert_eq!(r("airbyte"), Some((1000, 1001)));
        assert_eq!(r("airbyte:staff"), Some((1000, 50)));
        assert_eq!(r("1000:staff"), Some((1000, 50)));
        assert_eq!(r("nobody"), None);
    }

    #[test]
    fn reads_the_first_file_of_a_tar() {
        let mut tar = vec![0u8; 512];
        tar[..6].copy_from_slice(b"passwd");
        tar[124..135].copy_from_slice(b"00000000005");
        tar[156] = b'0';
        tar.extend_from_slice(b"hello");
        tar.resize(1024 + 1024, 0);
        assert_eq!(first_tar_entry(&tar), Some(&b"hello"[..]));
        assert_eq!(first_tar_entry(&[0u8; 1024]), None);
    }
}

//! The sweeper: removes connector containers nobody will remove.
//!
//! A container sluice started is removed by the sluice that started it when
//! the command ends. What is left is what a crashed or killed sluice left:
//! containers that exited, and containers still running for a sync that
//! no longer runs. The sweeper finds them by their labels and removes them;
//! it never touches a container whose sluice still runs, and only removes a
//! running one when it can see that its sluice is gone.

use super::engine::{self, engine_error, Engine};
use crate::connector::registry::{SweepReport, Swept};
use crate::connector::ConnectorError;
use crate::owner::{self, Liveness, Owner};
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::ListContainersOptions;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// An exited container whose sluice still runs is that sluice's to remove;
/// past this age it has evidently forgotten.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(600);

enum Verdict {
    Remove(String),
    Keep(String),
}

/// Finds sluice's containers on the engine and removes the abandoned ones.
pub async fn sweep() -> Result<SweepReport, ConnectorError> {
    let engine = engine::connect("the sweeper").await?;
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![owner::PID.to_string()],
        )])),
        ..Default::default()
    };
    let containers = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| ConnectorError::Runtime {
            connector: "the sweeper".into(),
            message: format!("cannot list containers: {}", engine_error(&e)),
        })?;
    let here = Owner::current();
    let mut report = SweepReport::default();
    for c in containers {
        let mut entry = describe(&c);
        match judge(engine, &c, here).await {
            Verdict::Keep(reason) => {
                entry.reason = reason;
                report.kept.push(entry);
            }
            Verdict::Remove(reason) => {
                entry.reason = reason;
                match engine::remove(engine, c.id.as_deref().unwrap_or_default()).await {
                    Ok(()) => report.removed.push(entry),
                    Err(e) => {
                        entry.reason = format!("could not be removed: {}", engine_error(&e));
                        report.kept.push(entry);
                    }
                }
            }
        }
    }
    Ok(report)
}

fn describe(c: &ContainerSummary) -> Swept {
    let labels = c.labels.clone().unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned();
    Swept {
        id: c
            .id
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect(),
        name: c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: c.image.clone().unwrap_or_default(),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
        job: label("sluice.job"),
        attempt: label("sluice.attempt"),
        role: label("sluice.role"),
        pid: label(owner::PID).and_then(|p| p.parse().ok()),
        reason: String::new(),
    }
}

async fn judge(engine: &Engine, c: &ContainerSummary, here: &Owner) -> Verdict {
    let labels = c.labels.clone().unwrap_or_default();
    let owner = Owner::from_labels(&labels);
    let liveness = owner
        .as_ref()
        .map_or(Liveness::Unknown, |o| o.liveness(here));
    let pid = owner.as_ref().map(|o| o.pid).unwrap_or_default();
    let state = c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
    if state == ContainerSummaryStateEnum::REMOVING {
        return Verdict::Keep("it is being removed".into());
    }
    let ended = matches!(
        state,
        ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD
    );
    match (ended, liveness) {
        (_, Liveness::Gone) => Verdict::Remove(format!("its sluice (pid {pid}) is gone")),
        (true, Liveness::Unknown) => Verdict::Remove("it has exited".into()),
        (true, Liveness::Running) => match exited_for(engine, c).await {
            Some(age) if age >= FORGOTTEN_AFTER => Verdict::Remove(format!(
                "it exited {} min ago and its sluice (pid {pid}) did not remove it",
                age.as_secs() / 60
            )),
            _ => Verdict::Keep(format!(
                "it has just exited; its sluice (pid {pid}) is running and removes it"
            )),
        },
        (false, Liveness::Running) => Verdict::Keep(format!("its sluice (pid {pid}) is running")),
        (false, Liveness::Unknown) => Verdict::Keep(match &owner {
            Some(o) => format!(
                "its sluice (pid {pid} on {}) cannot be seen from here; sweep from there",
                o.host
            ),
            None => "it carries no owner labels".into(),
        }),
    }
}

/// How long ago a container exited, per the engine.
async fn exited_for(engine: &Engine, c: &ContainerSummary) -> Option<Duration> {
    let inspected = engine
        .docker
        .inspect_container(c.id.as_deref()?, None)
        .await
        .ok()?;
    let finished = inspected.state?.finished_at?;
    let at = humantime::parse_rfc3339(&finished)
        .or_else(|_| humantime::parse_rfc3339_weak(&finished))
        .ok()?;
    SystemTime::now().duration_since(at).ok()
}

//! Who owns something that may outlive its owner: the sluice process that
//! started a connector container, or that runs a job. Named well enough
//! that another sluice can later tell whether that process still runs.
//!
//! A pid alone is not enough (pids are reused), so an owner is also its
//! process's start time (clock ticks since boot, from /proc), the boot id,
//! the pid namespace and the host name. A process is the owner only if all
//! of them match. From another host, boot or pid namespace the owner
//! cannot be seen, and callers say so rather than guess.
//!
//! Containers carry an owner as labels; the job store keeps one as JSON
//! text in a job's `owner` column.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

pub const PID: &str = "sluice.pid";
pub const PID_START: &str = "sluice.pid-start";
pub const BOOT_ID: &str = "sluice.boot-id";
pub const PID_NS: &str = "sluice.pid-ns";
pub const HOST: &str = "sluice.host";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start: u64,
    pub boot_id: String,
    pub pid_ns: String,
    pub host: String,
}

/// Whether an owner still runs, as far as this process can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Running,
    Gone,
    /// On another host, or in another pid namespace.
    Unknown,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The start time of a process, if it exists.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last `)`. What follows it starts at field 3.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl Owner {
    /// This process.
    pub fn current() -> &'static Owner {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: start_time(pid).unwrap_or(0),
                boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
                pid_ns: std::fs::read_link("/proc/self/ns/pid")
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                host: read_trimmed("/proc/sys/kernel/hostname"),
            }
        })
    }

    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            (PID.into(), self.pid.to_string()),
            (PID_START.into(), self.start.to_string()),
            (BOOT_ID.into(), self.boot_id.clone()),
            (PID_NS.into(), self.pid_ns.clone()),
            (HOST.into(), self.host.clone()),
        ]
    }

    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Some(Owner {
            pid: labels.get(PID)?.parse().ok()?,
            start: labels.get(PID_START)?.parse().ok()?,
            boot_id: get(BOOT_ID),
            pid_ns: get(PID_NS),
            host: get(HOST),
        })
    }

    /// The owner as the job store keeps it.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("an owner serializes")
    }

    /// An owner the store kept; `None` for text that is not one.
    pub fn from_text(text: &str) -> Option<Owner> {
        serde_json::from_str(text).ok()
    }

    /// Whether this owner runs, seen from `here`.
    pub fn liveness(&self, here: &Owner) -> Liveness {
        if self.host != here.host {
            return Liveness::Unknown;
        }
        if self.boot_id != here.boot_id {
            // The same host booted since: nothing of that boot runs.
            return Liveness::Gone;
        }
        if self.pid_ns != here.pid_ns {
            return Liveness::Unknown;
        }
        match start_time(self.pid) {
            Some(start) if start == self.start => Liveness::Running,
            _ => Liveness::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_reused_pid_does_not_count() {
        let me = Owner::current();
        assert!(me.start > 0);
        assert!(!me.boot_id.is_empty());
        let labels: HashMap<String, String> = me.labels().into_iter().collect();
        let back = Owner::from_labels(&labels).unwrap();
        assert_eq!(&back, me);
        assert_eq!(Owner::from_text(&me.to_text()).as_ref(), Some(me));
        assert_eq!(Owner::from_text("host:1234"), None);
        assert_eq!(back.liveness(me), Liveness::Running);
        let reused = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(me), Liveness::Gone);
        let elsewhere = Owner {
            host: format!("{}-other", me.host),
            ..me.clone()
        };
        assert_eq!(elsewhere.liveness(me), Liveness::Unknown);
        let other_ns = Owner {
            pid_ns: "pid:[1]".into(),
            ..me.clone()
        };
        assert_eq!(other_ns.liveness(me), Liveness::Unknown);
    }

    #[test]
    fn start_time_reads_past_odd_command_names() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }
}

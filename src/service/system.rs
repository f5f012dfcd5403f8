//! Housekeeping of the machine sluice runs on: the runtimes' sweepers.

use super::Service;
use crate::connector::registry::{self, SweepReport};

impl Service {
    /// Removes the connector containers that nobody will remove: those that
    /// exited, and those whose sluice process is gone.
    pub async fn system_sweep(&self) -> anyhow::Result<SweepReport> {
        Ok(registry::sweep(&self.runtime_env()).await?)
    }
}

//! The job store itself, and housekeeping of the machine sluice runs on:
//! the runtimes' sweepers.

use super::{Call, Service};
use crate::api::{ApiError, DbStatus, Migration, SweepReport};
use crate::connector::registry;
use crate::store::{Backend, Store};

impl Service {
    /// The job store, opened (and migrated) on first use.
    pub async fn store(&self) -> Result<&Store, ApiError> {
        self.store
            .get_or_try_init(|| async {
                Store::open(&self.settings.store)
                    .await
                    .map_err(ApiError::from)
            })
            .await
    }

    pub async fn db_status(&self) -> Result<DbStatus, ApiError> {
        let s = self.store().await?;
        Ok(DbStatus {
            backend: match s.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
            .into(),
            url: s.location().to_string(),
            applied: s
                .applied_migrations()
                .await?
                .into_iter()
                .map(|m| Migration {
                    version: m.version,
                    description: m.description,
                    installed_on: m.installed_on,
                })
                .collect(),
        })
    }

    /// Removes the connector containers that nobody will remove: those that
    /// exited, and those whose sluice process is gone.
    pub async fn system_sweep(&self) -> Result<SweepReport, ApiError> {
        Ok(registry::sweep(&self.runtime_env(&Call::quiet())?).await?)
    }
}

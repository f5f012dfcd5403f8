//! Managed connections: a stored source and destination, the streams and
//! modes chosen, and the configured catalog built from the source's
//! discovery; run by name.

use super::actors::{not_found, validate_name};
use super::catalog::{self, Generation, StreamSelection};
use super::{Call, Service};
use crate::api::{
    ActorKind, ApiError, CatalogStream, Connection as ConnectionView, ConnectionCreate,
    ConnectionPatch, ConnectionSpec, ConnectionStatus, ConnectionUpdate, LastJob,
};
use crate::connector::config::Secrets;
use crate::connector::Role;
use crate::model::same_stream_name;
use crate::store::{self, Actor, Connection, ConnectionFields, StoreError};
use crate::sync::log::AttemptLog;
use crate::sync::mapping::Mapping;
use std::sync::Arc;

impl ConnectionSpec {
    /// The spec of a stored connection.
    pub(crate) fn of(c: &Connection) -> Self {
        ConnectionSpec {
            source: c.source.clone(),
            destination: c.destination.clone(),
            streams: c.streams.clone(),
            sync_mode: c.sync_mode,
            destination_sync_mode: c.destination_sync_mode,
            cursors: c.cursors.clone(),
            primary_keys: c.primary_keys.clone(),
            sync_modes: c.sync_modes.clone(),
            destination_sync_modes: c.destination_sync_modes.clone(),
            selected_fields: c.selected_fields.clone(),
            schedule: c.schedule.clone(),
            namespace: c.namespace.clone(),
            prefix: c.prefix.clone(),
            status: c.status,
            schema_change: c.schema_change,
            notifications: c.notifications.masked(),
        }
    }

    pub(crate) fn selection(&self) -> StreamSelection {
        StreamSelection {
            streams: self.streams.clone(),
            sync_mode: self.sync_mode,
            destination_sync_mode: self.destination_sync_mode,
            cursors: self.cursors.clone(),
            primary_keys: self.primary_keys.clone(),
            sync_modes: self.sync_modes.clone(),
            destination_sync_modes: self.destination_sync_modes.clone(),
            selected_fields: self.selected_fields.clone(),
        }
    }

    /// How records change on their way: names mapped, fields selected.
    pub(crate) fn mapping(&self) -> Mapping {
        Mapping {
            namespace: self.namespace.clone(),
            prefix: self.prefix.clone(),
            fields: self.selected_fields.clone(),
        }
    }

    /// This spec with a patch's fields over it.
    fn patched(mut self, p: &ConnectionPatch) -> Self {
        let p = p.clone();
        // Streams no longer synced lose the choices the patch does not
        // set anew.
        if let Some(streams) = p.streams.as_ref().filter(|s| !s.is_empty()) {
            let synced = |k: &String| streams.iter().any(|s| same_stream_name(s, k));
            if p.cursors.is_none() {
                self.cursors.retain(|k, _| synced(k));
            }
            if p.primary_keys.is_none() {
                self.primary_keys.retain(|k, _| synced(k));
            }
            if p.sync_modes.is_none() {
                self.sync_modes.retain(|k, _| synced(k));
            }
            if p.destination_sync_modes.is_none() {
                self.destination_sync_modes.retain(|k, _| synced(k));
            }
            if p.selected_fields.is_none() {
                self.selected_fields.retain(|k, _| synced(k));
            }
        }
        self.source = p.source.unwrap_or(self.source);
        self.destination = p.destination.unwrap_or(self.destination);
        self.streams = p.streams.unwrap_or(self.streams);
        self.sync_mode = p.sync_mode.or(self.sync_mode);
        self.destination_sync_mode = p.destination_sync_mode.or(self.destination_sync_mode);
        self.cursors = p.cursors.unwrap_or(self.cursors);
        self.primary_keys = p.primary_keys.unwrap_or(self.primary_keys);
        self.sync_modes = p.sync_modes.unwrap_or(self.sync_modes);
        self.destination_sync_modes = p
            .destination_sync_modes
            .unwrap_or(self.destination_sync_modes);
        self.selected_fields = p.selected_fields.unwrap_or(self.selected_fields);
        self.schedule = p.schedule.unwrap_or(self.schedule);
        self.namespace = p.namespace.unwrap_or(self.namespace);
        self.prefix = p.prefix.unwrap_or(self.prefix);
        self.schema_change = p.schema_change.unwrap_or(self.schema_change);
        self.notifications = p.notifications.unwrap_or(self.notifications);
        self
    }
}

impl ConnectionView {
    pub(crate) fn of(c: &Connection, last: Option<&store::Job>, full: bool) -> Self {
        ConnectionView {
            id: c.uuid.clone(),
            name: c.name.clone(),
            spec: ConnectionSpec::of(c),
            catalog_streams: c
                .catalog
                .streams
                .iter()
                .map(|s| CatalogStream {
                    name: s.stream.descriptor().to_string(),
                    sync_mode: s.sync_mode,
                    destination_sync_mode: s.destination_sync_mode,
                })
                .collect(),
            last_job: last.map(|j| LastJob {
                id: j.id,
                status: j.status,
                at: j.ended_at.or(j.started_at).unwrap_or(j.created_at),
                records: j.records,
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
            catalog: full.then(|| c.catalog.clone()),
        }
    }
}

impl Service {
    pub async fn connection(&self, name: &str) -> Result<Connection, ApiError> {
        self.store()
            .await?
            .get_connection(name)
            .await?
            .ok_or_else(|| not_found("connection", name))
    }

    /// The fields of a connection from its spec, with `source` and
    /// `destination_id` resolved by the caller. The source is discovered
    /// and its catalog configured, unless `old` has a catalog built from
    /// the same choices.
    pub(crate) async fn connection_fields(
        &self,
        name: &str,
        spec: &ConnectionSpec,
        old: Option<&Connection>,
        source: &Actor,
        destination: &Actor,
        call: &Call,
    ) -> Result<ConnectionFields, ApiError> {
        spec.schedule.check_frequency().map_err(|e| {
            ApiError::user(e.message)
                .hint(crate::model::ScheduleError::HINT)
                .context(format!("connection `{name}`"))
        })?;
        let destination_id = destination.id;
        let notifications = spec
            .notifications
            .unmasked(&old.map(|o| o.notifications.clone()).unwrap_or_default());
        notifications
            .check()
            .map_err(|e| ApiError::user(format!("connection `{name}`: {e}")))?;
        if let Some(old) = old {
            let was = ConnectionSpec::of(old);
            if was.source == spec.source
                && was.streams == spec.streams
                && was.sync_mode == spec.sync_mode
                && was.destination_sync_mode == spec.destination_sync_mode
                && was.namespace == spec.namespace
                && was.prefix == spec.prefix
                && was.cursors == spec.cursors
                && was.primary_keys == spec.primary_keys
                && was.sync_modes == spec.sync_modes
                && was.destination_sync_modes == spec.destination_sync_modes
                && was.selected_fields == spec.selected_fields
            {
                return Ok(ConnectionFields {
                    destination_id,
                    schedule: spec.schedule.clone(),
                    status: spec.status,
                    schema_change: spec.schema_change,
                    notifications,
                    ..ConnectionFields::from(old)
                });
            }
        }
        let discovered = self.discover_actor(source, call).await?;
        let configured = catalog::configure(
            &discovered,
            &spec.selection(),
            Generation {
                sync_id: 0,
                generation_id: 0,
            },
        )
        .map_err(|e| ApiError::from(e).context(format!("connection `{name}`")))?;
        spec.mapping()
            .destination_catalog(&configured)
            .map_err(|e| ApiError::user(e).context(format!("connection `{name}`")))?;
        // The destination must support the modes chosen, as for an inline
        // sync: said now, not when a job runs.
        let d = self.resolve(&destination.connector, call)?;
        let log = Arc::new(AttemptLog::memory(Secrets::default(), call.echo()));
        let destination_spec = self
            .spec_of(&d, &self.context(Role::Destination, log, call))
            .await?;
        super::sync::check_destination_modes(&destination_spec, &configured)
            .map_err(|e| ApiError::from(e).context(format!("connection `{name}`")))?;
        Ok(ConnectionFields {
            name: name.into(),
            source_id: source.id,
            destination_id,
            streams: spec.streams.clone(),
            sync_mode: spec.sync_mode,
            destination_sync_mode: spec.destination_sync_mode,
            catalog: configured,
            schedule: spec.schedule.clone(),
            namespace: spec.namespace.clone(),
            prefix: spec.prefix.clone(),
            status: spec.status,
            schema_change: spec.schema_change,
            cursors: spec.cursors.clone(),
            primary_keys: spec.primary_keys.clone(),
            sync_modes: spec.sync_modes.clone(),
            destination_sync_modes: spec.destination_sync_modes.clone(),
            selected_fields: spec.selected_fields.clone(),
            notifications,
            known_streams: discovered
                .streams
                .iter()
                .map(|s| s.descriptor().to_string())
                .collect(),
        })
    }

    pub async fn connection_create(
        &self,
        req: &ConnectionCreate,
        call: &Call,
    ) -> Result<ConnectionView, ApiError> {
        let name = req.name.as_str();
        validate_name("connection", name)?;
        let store = self.store().await?;
        if store.get_connection(name).await?.is_some() {
            return Err(StoreError::Exists {
                kind: "connection",
                name: name.into(),
            }
            .into());
        }
        let source = self.actor(ActorKind::Source, &req.spec.source).await?;
        let destination = self
            .actor(ActorKind::Destination, &req.spec.destination)
            .await?;
        let fields = self
            .connection_fields(name, &req.spec, None, &source, &destination, call)
            .await?;
        let c = store.create_connection(&fields).await?;
        Ok(ConnectionView::of(&c, None, false))
    }

    /// Replaces a connection with `spec`; the catalog is built again only
    /// when what it is built from changed.
    pub async fn connection_replace(
        &self,
        key: &str,
        spec: &ConnectionSpec,
        call: &Call,
    ) -> Result<ConnectionView, ApiError> {
        let old = self.connection(key).await?;
        let name = old.name.as_str();
        let source = self.actor(ActorKind::Source, &spec.source).await?;
        let destination = self
            .actor(ActorKind::Destination, &spec.destination)
            .await?;
        // The source and destination may be given by id: compared by name.
        let spec = &ConnectionSpec {
            source: source.name.clone(),
            destination: destination.name.clone(),
            ..spec.clone()
        };
        let fields = self
            .connection_fields(name, spec, Some(&old), &source, &destination, call)
            .await?;
        let c = self
            .store()
            .await?
            .update_connection(&fields)
            .await?
            .ok_or_else(|| not_found("connection", name))?;
        Ok(ConnectionView::of(&c, None, false))
    }

    pub async fn connection_update(
        &self,
        req: &ConnectionUpdate,
        call: &Call,
    ) -> Result<ConnectionView, ApiError> {
        let old = self.connection(&req.name).await?;
        let spec = ConnectionSpec::of(&old).patched(&req.patch);
        self.connection_replace(&req.name, &spec, call).await
    }

    pub async fn connection_list(&self) -> Result<Vec<ConnectionView>, ApiError> {
        let all = self.store().await?.list_connections().await?;
        Ok(all
            .iter()
            .map(|s| ConnectionView::of(&s.connection, s.last_job.as_ref(), false))
            .collect())
    }

    pub async fn connection_get(&self, name: &str) -> Result<ConnectionView, ApiError> {
        let c = self.connection(name).await?;
        let last = self
            .store()
            .await?
            .list_jobs(&store::JobFilter {
                connection_id: Some(c.id),
                status: None,
                limit: 1,
            })
            .await?;
        Ok(ConnectionView::of(&c, last.first(), true))
    }

    pub async fn connection_delete(&self, key: &str) -> Result<(), ApiError> {
        let name = self.connection(key).await?.name;
        if !self.store().await?.delete_connection(&name).await? {
            return Err(not_found("connection", key));
        }
        Ok(())
    }

    pub async fn connection_set_status(
        &self,
        key: &str,
        status: ConnectionStatus,
    ) -> Result<(), ApiError> {
        let name = self.connection(key).await?.name;
        if !self
            .store()
            .await?
            .set_connection_status(&name, status)
            .await?
        {
            return Err(not_found("connection", key));
        }
        Ok(())
    }
}

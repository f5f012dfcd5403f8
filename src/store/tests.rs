//! One suite, run against both backends: `sqlite_NAME` on a file in a temp
//! dir, `postgres_NAME` in a database of its own on the test server
//! (`SLUICE_TEST_DATABASE_URL`; skipped when unreachable, failed under CI).

use super::*;
use crate::model::{
    AttemptStatus, ConnectionStatus, Failure, FailureOrigin, FailureType, JobKind, JobStatus,
    NamespaceRule, Schedule, SchemaChange, SchemaChangePolicy, StreamProgress,
};
use crate::protocol::{ConfiguredAirbyteCatalog, DestinationSyncMode, StateType, SyncMode};
use serde_json::json;

fn one_stream_catalog() -> ConfiguredAirbyteCatalog {
    serde_json::from_value(json!({"streams": [{
        "stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh",
        "destination_sync_mode": "overwrite"
    }]}))
    .unwrap()
}

/// A store for one test, and what to clean up after it.
struct TestStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestStore {
    async fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("data/sluice.db"));
        TestStore {
            store: Store::open(&location).await.unwrap(),
            _dir: Some(dir),
            pg: None,
        }
    }

    async fn postgres() -> Option<TestStore> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("SLUICE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://sluice:sluice@localhost:5432/postgres".into());
        let conn = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&admin)
            .await;
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(
                    !ci,
                    "PostgreSQL at {} is missing, and CI=true: {e}",
                    mask_url(&admin)
                );
                eprintln!(
                    "\n*** SKIPPED: PostgreSQL at {} is missing: {e} ***\n",
                    mask_url(&admin)
                );
                return None;
            }
        };
        let name = format!(
            "sluice_unit_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&conn)
            .await
            .unwrap();
        conn.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(TestStore {
            store: Store::open(&Location::Postgres(url)).await.unwrap(),
            _dir: None,
            pg: Some((admin, name)),
        })
    }

    async fn second_handle(&self) -> Store {
        Store::open(self.store.location()).await.unwrap()
    }

    async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg {
            let conn = PgPoolOptions::new()
                .max_connections(1)
                .connect(&admin)
                .await
                .unwrap();
            // FORCE fails when an autovacuum worker is in the database and
            // the role lacks pg_signal_backend; a plain DROP stops that worker
            // itself (our own connections are closed above).
            let force = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if sqlx::query(&force).execute(&conn).await.is_err() {
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&conn)
                    .await
                    .unwrap();
            }
        }
    }
}

/// `sqlite_NAME` and `postgres_NAME` running `NAME(store)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = super::TestStore::sqlite().await;
                    super::$name(&t).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = super::TestStore::postgres().await else { return };
                    super::$name(&t).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

both_backends!(
    store_migrations_are_recorded,
    store_sources_and_destinations,
    store_connections_with_their_last_job,
    store_jobs_and_attempts,
    store_state_is_replaced_whole,
    store_two_handles_write_at_once,
    store_setups_apply_whole_or_not_at_all,
);

fn actor(name: &str, connector: &str) -> ActorFields {
    ActorFields {
        name: name.into(),
        connector: connector.into(),
        config: json!({"count": 10, "token": "t0p"}),
        secret_paths: vec!["/token".into()],
    }
}

fn connection(name: &str, source_id: i64, destination_id: i64) -> ConnectionFields {
    ConnectionFields {
        name: name.into(),
        source_id,
        destination_id,
        streams: vec!["users".into()],
        sync_mode: Some(SyncMode::Incremental),
        destination_sync_mode: None,
        catalog: ConfiguredAirbyteCatalog::default(),
        schedule: Schedule::Manual,
        namespace: NamespaceRule::Source,
        prefix: "".into(),
        status: ConnectionStatus::Active,
        schema_change: SchemaChangePolicy::PropagateColumns,
        cursors: [("users".to_string(), vec!["updated_at".to_string()])].into(),
        primary_keys: Default::default(),
        sync_modes: [("orders".to_string(), SyncMode::FullRefresh)].into(),
        destination_sync_modes: [("users".to_string(), DestinationSyncMode::AppendDedup)].into(),
        selected_fields: [("users".to_string(), vec!["id".into(), "updated_at".into()])].into(),
        known_streams: vec!["users".into(), "orders".into()],
        notifications: Default::default(),
    }
}

async fn store_migrations_are_recorded(t: &TestStore) {
    let s = &t.store;
    let applied = s.applied_migrations().await.unwrap();
    let known = s.known_migrations();
    assert!(!known.is_empty());
    assert_eq!(
        applied
            .iter()
            .map(|m| (m.version, m.description.clone()))
            .collect::<Vec<_>>(),
        known
    );
    // Running them again is a no-op.
    s.migrate().await.unwrap();
    assert_eq!(s.applied_migrations().await.unwrap().len(), known.len());
}

async fn store_sources_and_destinations(t: &TestStore) {
    let s = &t.store;
    let a = s
        .create_actor(ActorKind::Source, &actor("faker", "sample"))
        .await
        .unwrap();
    assert_eq!(a.name, "faker");
    assert_eq!(a.config, json!({"count": 10, "token": "t0p"}));
    assert_eq!(a.secret_paths, vec!["/token".to_string()]);
    let e = s
        .create_actor(ActorKind::Source, &actor("faker", "sample"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Exists { kind: "source", .. }),
        "{e}"
    );
    assert_eq!(e.to_string(), "source `faker` already exists");
    // The same name is free among destinations.
    let d = s
        .create_actor(ActorKind::Destination, &actor("faker", "jsonl"))
        .await
        .unwrap();
    assert_eq!(d.kind, ActorKind::Destination);

    let mut changed = actor("faker", "sample");
    changed.config = json!({"count": 20});
    changed.secret_paths = vec![];
    let u = s
        .update_actor(ActorKind::Source, &changed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.config, json!({"count": 20}));
    assert!(u.updated_at >= a.updated_at);
    assert!(s
        .update_actor(ActorKind::Source, &actor("nope", "sample"))
        .await
        .unwrap()
        .is_none());
    let got = s
        .get_actor(ActorKind::Source, "faker")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.config, json!({"count": 20}));

    s.create_actor(ActorKind::Source, &actor("another", "sample"))
        .await
        .unwrap();
    let names: Vec<String> = s
        .list_actors(ActorKind::Source)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["another", "faker"]);

    // In use by a connection: refused, naming the connection.
    s.create_connection(&connection("c1", got.id, d.id))
        .await
        .unwrap();
    let e = s
        .delete_actor(ActorKind::Source, "faker")
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "source `faker` is used by connection(s): c1");
    assert!(s.delete_connection("c1").await.unwrap());
    assert!(s.delete_actor(ActorKind::Source, "faker").await.unwrap());
    assert!(!s.delete_actor(ActorKind::Source, "faker").await.unwrap());
    assert!(s
        .get_actor(ActorKind::Source, "faker")
        .await
        .unwrap()
        .is_none());
}

async fn store_connections_with_their_last_job(t: &TestStore) {
    let s = &t.store;
    let src = s
        .create_actor(ActorKind::Source, &actor("src", "sample"))
        .await
        .unwrap();
    let dst = s
        .create_actor(ActorKind::Destination, &actor("dst", "jsonl"))
        .await
        .unwrap();
    let c = s
        .create_connection(&connection("c", src.id, dst.id))
        .await
        .unwrap();
    assert_eq!((c.source.as_str(), c.destination.as_str()), ("src", "dst"));
    assert_eq!(c.streams, vec!["users".to_string()]);
    assert_eq!(c.sync_mode, Some(SyncMode::Incremental));
    assert_eq!(c.cursors["users"], vec!["updated_at".to_string()]);
    assert_eq!(
        c.known_streams,
        vec!["users".to_string(), "orders".to_string()]
    );
    assert_eq!(c.destination_sync_mode, None);
    let e = s
        .create_connection(&connection("c", src.id, dst.id))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "connection `c` already exists");

    let listed = s.list_connections().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_job.is_none());
    // The revision moves with each change a listing shows, and only then.
    let mut revision = s.revision().await.unwrap();
    let mut moved = async |what: &str| {
        let now = s.revision().await.unwrap();
        let did = now != revision;
        revision = now;
        eprintln!("{what}: moved {did}");
        did
    };
    let j1 = s.create_job(c.id, JobKind::Sync, "h:1").await.unwrap();
    assert!(moved("a job queued").await);
    s.finish_job(j1.id, JobStatus::Failed).await.unwrap();
    assert!(moved("a job ended").await);
    let j2 = s.create_job(c.id, JobKind::Sync, "h:1").await.unwrap();
    s.finish_job(j2.id, JobStatus::Succeeded).await.unwrap();
    s.put_state(c.id, StateType::Legacy, &json!({"a": 0}))
        .await
        .unwrap();
    assert!(moved("a job, then a state").await);
    s.put_state(c.id, StateType::Legacy, &json!({"a": 1}))
        .await
        .unwrap();
    assert!(!moved("a state alone").await);
    assert!(s
        .claim_job("h:2", Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    assert!(!moved("a poll for work finding none").await);
    s.update_actor(ActorKind::Source, &actor("src", "sample"))
        .await
        .unwrap();
    assert!(moved("a source changed").await);
    let listed = s.list_connections().await.unwrap();
    let last = listed[0].last_job.as_ref().unwrap();
    assert_eq!((last.id, last.status), (j2.id, JobStatus::Succeeded));

    let mut f = connection("c", src.id, dst.id);
    f.schedule = "every:1h".parse().unwrap();
    f.prefix = "raw_".into();
    f.catalog = one_stream_catalog();
    let u = s.update_connection(&f).await.unwrap().unwrap();
    assert_eq!(
        (u.schedule.to_string().as_str(), u.prefix.as_str()),
        ("every:1h", "raw_")
    );
    assert_eq!(u.catalog, one_stream_catalog());
    s.set_connection_catalog(c.id, &ConfiguredAirbyteCatalog::default())
        .await
        .unwrap();
    assert!(s
        .set_connection_status("c", ConnectionStatus::Inactive)
        .await
        .unwrap());
    assert!(moved("a connection disabled").await);
    let got = s.get_connection("c").await.unwrap().unwrap();
    assert_eq!(got.status, ConnectionStatus::Inactive);
    assert_eq!(got.catalog, ConfiguredAirbyteCatalog::default());
    assert!(!s
        .set_connection_status("nope", ConnectionStatus::Inactive)
        .await
        .unwrap());

    // Deleting a connection deletes its jobs and state.
    s.put_state(c.id, StateType::Legacy, &json!({"a": 1}))
        .await
        .unwrap();
    assert!(s.delete_connection("c").await.unwrap());
    assert!(moved("a connection deleted").await);
    assert!(s.get_job(j1.id).await.unwrap().is_none());
    assert!(s.get_state(c.id).await.unwrap().is_none());
}

async fn store_jobs_and_attempts(t: &TestStore) {
    let s = &t.store;
    let src = s
        .create_actor(ActorKind::Source, &actor("src", "sample"))
        .await
        .unwrap();
    let dst = s
        .create_actor(ActorKind::Destination, &actor("dst", "jsonl"))
        .await
        .unwrap();
    let a = s
        .create_connection(&connection("a", src.id, dst.id))
        .await
        .unwrap();
    let b = s
        .create_connection(&connection("b", src.id, dst.id))
        .await
        .unwrap();
    let job = s.create_job(a.id, JobKind::Sync, "h:1").await.unwrap();
    assert_eq!((job.status, job.kind), (JobStatus::Running, JobKind::Sync));
    assert_eq!(job.connection, "a");
    assert!(job.started_at.is_some() && job.ended_at.is_none());
    let change = SchemaChange {
        stream: "users".into(),
        change: "new column".into(),
        breaking: false,
    };
    s.set_job_changes(job.id, std::slice::from_ref(&change))
        .await
        .unwrap();

    s.start_attempt(job.id, 1, Path::new("/logs/attempt-1.log"))
        .await
        .unwrap();
    s.finish_attempt(
        job.id,
        1,
        &AttemptEnd {
            status: AttemptStatus::Failed,
            stats: vec![StreamProgress {
                name: "users".into(),
                records: 3,
                ..Default::default()
            }],
            records: 3,
            bytes: 30,
            records_committed: 2,
            failure: Some(Failure::new(
                FailureOrigin::Source,
                FailureType::SystemError,
                "boom",
            )),
        },
    )
    .await
    .unwrap();
    s.start_attempt(job.id, 2, Path::new("/logs/attempt-2.log"))
        .await
        .unwrap();
    let attempts = s.list_attempts(job.id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, AttemptStatus::Failed);
    assert_eq!(
        attempts[0].failure,
        Some(Failure::new(
            FailureOrigin::Source,
            FailureType::SystemError,
            "boom"
        ))
    );
    assert_eq!(attempts[0].stats[0].records, 3);
    assert_eq!(
        (
            attempts[0].records,
            attempts[0].bytes,
            attempts[0].records_committed
        ),
        (3, 30, 2)
    );
    assert_eq!(attempts[1].status, AttemptStatus::Running);
    assert_eq!(attempts[1].log_path.as_deref(), Some("/logs/attempt-2.log"));
    s.finish_job(job.id, JobStatus::Succeeded).await.unwrap();
    let got = s.get_job(job.id).await.unwrap().unwrap();
    assert_eq!(got.status, JobStatus::Succeeded);
    assert!(got.ended_at.is_some());
    assert_eq!(got.changes, vec![change]);

    let abandoned = s.create_job(b.id, JobKind::Reset, "h:2").await.unwrap();
    // A job whose process is gone is ended with its attempts.
    s.start_attempt(abandoned.id, 1, Path::new("/l"))
        .await
        .unwrap();
    s.abandon_job(abandoned.id, "gone").await.unwrap();
    let a1 = &s.list_attempts(abandoned.id).await.unwrap()[0];
    assert_eq!(
        (a1.status, a1.failure.as_ref().map(|f| f.message.as_str())),
        (AttemptStatus::Failed, Some("gone"))
    );
    assert_eq!(
        s.get_job(abandoned.id).await.unwrap().unwrap().status,
        JobStatus::Failed
    );
    let other = s.create_job(b.id, JobKind::Reset, "h:2").await.unwrap();
    let all = s.list_jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|j| j.id).collect::<Vec<_>>(),
        [other.id, abandoned.id, job.id]
    );
    let of_a = s
        .list_jobs(&JobFilter {
            connection_id: Some(a.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_a.iter().map(|j| j.id).collect::<Vec<_>>(), [job.id]);
    let running = s
        .list_jobs(&JobFilter {
            status: Some(JobStatus::Running),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.iter().map(|j| j.id).collect::<Vec<_>>(), [other.id]);
    let one = s
        .list_jobs(&JobFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

async fn store_state_is_replaced_whole(t: &TestStore) {
    let s = &t.store;
    let src = s
        .create_actor(ActorKind::Source, &actor("src", "sample"))
        .await
        .unwrap();
    let dst = s
        .create_actor(ActorKind::Destination, &actor("dst", "jsonl"))
        .await
        .unwrap();
    let c = s
        .create_connection(&connection("c", src.id, dst.id))
        .await
        .unwrap();
    assert!(s.get_state(c.id).await.unwrap().is_none());
    let first = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"c": 1}}}]);
    s.put_state(c.id, StateType::Stream, &first).await.unwrap();
    let second = json!({"type": "GLOBAL", "global": {"stream_states": []}});
    s.put_state(c.id, StateType::Global, &json!([second]))
        .await
        .unwrap();
    let got = s.get_state(c.id).await.unwrap().unwrap();
    assert_eq!(got.state_type, StateType::Global);
    assert_eq!(got.state, json!([second]));
    assert!(s.delete_state(c.id).await.unwrap());
    assert!(!s.delete_state(c.id).await.unwrap());
}

/// Two handles on one store (as two processes would have) writing at the
/// same time: every record of both is kept.
async fn store_two_handles_write_at_once(t: &TestStore) {
    let other = t.second_handle().await;
    let write = |store: Store, prefix: &'static str| async move {
        for i in 0..25 {
            let a = store
                .create_actor(
                    ActorKind::Source,
                    &actor(&format!("{prefix}-{i}"), "sample"),
                )
                .await
                .unwrap();
            let d = store
                .create_actor(
                    ActorKind::Destination,
                    &actor(&format!("{prefix}-{i}"), "jsonl"),
                )
                .await
                .unwrap();
            let c = store
                .create_connection(&connection(&format!("{prefix}-{i}"), a.id, d.id))
                .await
                .unwrap();
            store
                .put_state(c.id, StateType::Legacy, &json!({"i": i}))
                .await
                .unwrap();
        }
    };
    let (x, y) = tokio::join!(
        tokio::spawn(write(t.store.clone(), "x")),
        tokio::spawn(write(other.clone(), "y"))
    );
    x.unwrap();
    y.unwrap();
    assert_eq!(
        t.store.list_actors(ActorKind::Source).await.unwrap().len(),
        50
    );
    assert_eq!(t.store.list_connections().await.unwrap().len(), 50);
    other.close().await;
}

/// A setup's changes in one transaction: a failure at the end (deleting a
/// source a connection still uses) undoes the creates before it.
async fn store_setups_apply_whole_or_not_at_all(t: &TestStore) {
    let s = &t.store;
    let write = |name: &str| ConnectionWrite {
        fields: connection(name, 0, 0),
        source: "src".into(),
        destination: "dst".into(),
    };
    let good = SetupChanges {
        actors: vec![
            (ActorKind::Source, Change::Create(actor("src", "sample"))),
            (
                ActorKind::Destination,
                Change::Create(actor("dst", "jsonl")),
            ),
        ],
        connections: vec![Change::Create(write("c"))],
    };
    s.apply_setup(&good).await.unwrap();
    let c = s.get_connection("c").await.unwrap().unwrap();
    assert_eq!((c.source.as_str(), c.destination.as_str()), ("src", "dst"));

    let mut updated = actor("src", "sample");
    updated.config = json!({"count": 99});
    let bad = SetupChanges {
        actors: vec![
            (ActorKind::Source, Change::Create(actor("other", "sample"))),
            (ActorKind::Source, Change::Update(updated)),
            (ActorKind::Source, Change::Delete("src".into())),
        ],
        connections: vec![Change::Create(write("d"))],
    };
    let e = s.apply_setup(&bad).await.unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    // Nothing of it stayed.
    assert!(s
        .get_actor(ActorKind::Source, "other")
        .await
        .unwrap()
        .is_none());
    assert!(s.get_connection("d").await.unwrap().is_none());
    let src = s
        .get_actor(ActorKind::Source, "src")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(src.config, json!({"count": 10, "token": "t0p"}));
}

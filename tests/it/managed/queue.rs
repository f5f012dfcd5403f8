//! The daemon's job queue, through the library (the daemon's CLI is
//! elsewhere): queued jobs run once each over two runners sharing a store,
//! a job whose runner died is taken over and goes on from its committed
//! state, cancels of queued and running jobs, and a graceful stop that
//! puts a long job back in the queue; schedules that fire, stop firing
//! when disabled, and catch up once.

use super::{echo_lines, record, script_source, setup_connection, state, Env};
use sluice::api::{JobDetail, JobKind, JobRequest, JobStatus, JobTrigger};
use sluice::daemon::runner::{Runner, RunnerOptions};
use sluice::daemon::scheduler::{Scheduler, SchedulerOptions};
use sluice::service::Service;
use sluice::settings::{Flags, Settings};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

both_backends!(
    queued_jobs_run_once_each_over_two_runners,
    a_job_whose_runner_died_is_taken_over,
    a_running_attempt_shows_its_counts_and_keeps_them_when_its_runner_dies,
    queued_and_running_jobs_are_cancelled,
    a_graceful_stop_puts_a_long_job_back_in_the_queue,
    a_schedule_fires_until_its_connection_is_disabled,
    a_scheduler_that_was_down_queues_one_catch_up_job,
);

/// Generous: the machine may be busy.
const DEADLINE: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// A service on the env's store, as a daemon would have.
fn service(env: &Env) -> Service {
    let flags = Flags {
        data_dir: Some(env.sandbox.data_dir()),
        database_url: env.db.as_ref().map(|db| db.url.clone()),
    };
    let connectors = crate::common::shared_connectors_dir();
    Service::new(
        Settings::resolve(&flags, |k| {
            (k == "SLUICE_CONNECTORS_DIR")
                .then(|| connectors.as_ref().map(|d| d.display().to_string()))
                .flatten()
        })
        .unwrap(),
    )
}

fn options(max_jobs: usize) -> RunnerOptions {
    RunnerOptions {
        max_jobs,
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(100),
        sweep: false,
        sweep_every: Duration::from_secs(300),
    }
}

fn sync(connection: &str) -> JobRequest {
    JobRequest {
        connection: connection.into(),
        kind: JobKind::Sync,
        streams: Vec::new(),
        retry: Default::default(),
        options: Default::default(),
    }
}

/// `n` connections `c0`.. from a sample source of `count` records to devnull.
fn sample_connections(env: &Env, n: usize, count: u64) {
    scheduled_connections(env, n, count, "manual");
}

fn scheduled_connections(env: &Env, n: usize, count: u64, schedule: &str) {
    let mut yaml = format!(
        "sources:\n  gen:\n    connector: sample\n    config:\n      count: {count}\n\
         destinations:\n  void:\n    connector: devnull\nconnections:\n"
    );
    for i in 0..n {
        yaml += &format!(
            "  c{i}:\n    source: gen\n    destination: void\n    streams: [users]\n    schedule: '{schedule}'\n"
        );
    }
    let file = env.sandbox.write("setup.yaml", &yaml);
    let out = env
        .cmd()
        .env("SLUICE_SCHEDULE_SECONDS", "allow")
        .args(["apply", "-f", file.to_str().unwrap()])
        .output()
        .expect("run sluice");
    crate::common::Run(out).expect_code(0);
}

/// Waits until job `id` is in a status `done` accepts.
async fn wait_for(s: &Service, id: i64, done: impl Fn(&JobDetail) -> bool) -> JobDetail {
    let start = Instant::now();
    loop {
        let job = s.job_get(id).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(start.elapsed() < DEADLINE, "job {id} is still {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(j: &JobDetail) -> bool {
    !matches!(j.job.status, JobStatus::Pending | JobStatus::Running)
}

fn queued_jobs_run_once_each_over_two_runners(env: &Env) {
    const JOBS: usize = 50;
    sample_connections(env, JOBS, 20);
    runtime().block_on(async {
        let s = service(env);
        let mut ids = Vec::new();
        for i in 0..JOBS {
            ids.push(
                s.enqueue_job(&sync(&format!("c{i}")), JobTrigger::Manual)
                    .await
                    .unwrap()
                    .id,
            );
        }
        // A second job of a connection is refused while one is queued.
        let again = s
            .enqueue_job(&sync("c0"), JobTrigger::Manual)
            .await
            .unwrap_err();
        assert!(
            again.message.contains("already has a queued job"),
            "{again:?}"
        );
        let (a, b) = (
            Runner::new(service(env), options(3)),
            Runner::new(service(env), options(3)),
        );
        assert_ne!(a.owner(), b.owner());
        let stop = CancellationToken::new();
        let ra = tokio::spawn({
            let (a, stop) = (a.clone(), stop.clone());
            async move { a.run(stop, Duration::from_secs(60)).await }
        });
        let rb = tokio::spawn({
            let (b, stop) = (b.clone(), stop.clone());
            async move { b.run(stop, Duration::from_secs(60)).await }
        });
        for id in &ids {
            wait_for(&s, *id, ended).await;
        }
        stop.cancel();
        ra.await.unwrap().unwrap();
        rb.await.unwrap().unwrap();
        let store = s.store().await.unwrap();
        let (mut by_a, mut by_b) = (0, 0);
        for id in &ids {
            let job = s.job_get(*id).await.unwrap();
            assert_eq!(job.job.status, JobStatus::Succeeded, "{job:?}");
            // Exactly once: one attempt, by one runner.
            assert_eq!(job.attempts.len(), 1, "{job:?}");
            let owner = store.get_job(*id).await.unwrap().unwrap().owner.unwrap();
            if owner == a.owner() {
                by_a += 1;
            } else if owner == b.owner() {
                by_b += 1;
            } else {
                panic!("job {id} was run by {owner}");
            }
        }
        assert_eq!(by_a + by_b, JOBS);
        assert!(by_a > 0 && by_b > 0, "a ran {by_a}, b ran {by_b}");
    });
}

fn a_job_whose_runner_died_is_taken_over(env: &Env) {
    let s = &env.sandbox;
    // Each read copies the state it was given to seen-state-N.json.
    let src = script_source(s, &echo_lines(&[record(2), state(2)]));
    setup_connection(env, &src);
    runtime().block_on(async {
        let svc = service(env);
        let store = svc.store().await.unwrap().clone();
        let job = svc
            .enqueue_job(&sync("c"), JobTrigger::Manual)
            .await
            .unwrap();
        // What a runner killed mid-attempt leaves: a lease (here already
        // expired), a running attempt, and the state it had committed.
        let dead = store
            .claim_job("a runner that was killed", Duration::ZERO)
            .await
            .unwrap()
            .expect("the queued job is claimed");
        assert_eq!(dead.id, job.id);
        store
            .start_attempt(job.id, 1, &s.path("attempt-1.log"))
            .await
            .unwrap();
        let c = store.get_connection("c").await.unwrap().unwrap();
        let committed = serde_json::json!([{"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "s"}, "stream_state": {"c": 1}}}]);
        store
            .put_state(c.id, sluice::protocol::StateType::Stream, &committed)
            .await
            .unwrap();

        let runner = Runner::new(service(env), options(2));
        let stop = CancellationToken::new();
        let run = tokio::spawn({
            let (r, stop) = (runner.clone(), stop.clone());
            async move { r.run(stop, Duration::from_secs(60)).await }
        });
        let done = wait_for(&svc, job.id, ended).await;
        stop.cancel();
        run.await.unwrap().unwrap();
        assert_eq!(done.job.status, JobStatus::Succeeded, "{done:?}");
        assert_eq!(done.attempts.len(), 2, "{done:?}");
        let killed = &done.attempts[0];
        assert_eq!(killed.status.as_str(), "failed");
        let failure = killed.failure.as_ref().unwrap();
        assert_eq!(failure.origin.as_str(), "platform");
        assert!(failure.message.contains("lease"), "{failure:?}");
        assert_eq!(done.attempts[1].status.as_str(), "succeeded");
        // The next attempt went on from the killed one's committed state.
        let seen: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.path("seen-state-0.json")).unwrap())
                .unwrap();
        assert_eq!(seen, committed, "{seen}");
        let owner = store.get_job(job.id).await.unwrap().unwrap().owner;
        assert_eq!(owner.as_deref(), Some(runner.owner()));
    });
}

fn a_running_attempt_shows_its_counts_and_keeps_them_when_its_runner_dies(env: &Env) {
    let s = &env.sandbox;
    // Two records and a state, then nothing for a long while.
    let read = format!(
        "{}\n    sleep 30",
        echo_lines(&[record(1), record(2), state(2)])
    );
    setup_connection(env, &script_source(s, &read));
    let quick = RunnerOptions {
        lease: Duration::from_secs(1),
        ..options(1)
    };
    // The first runner has a runtime of its own, to be killed with it.
    let doomed = runtime();
    doomed.spawn({
        let runner = Runner::new(service(env), quick.clone());
        async move { runner.run(CancellationToken::new(), DEADLINE).await }
    });
    runtime().block_on(async {
        let svc = service(env);
        let job = svc
            .enqueue_job(&sync("c"), JobTrigger::Manual)
            .await
            .unwrap();
        // The counts are in the store while the attempt runs.
        let running = wait_for(&svc, job.id, |j| {
            j.attempts.first().is_some_and(|a| a.records_committed == 2)
        })
        .await;
        assert_eq!(running.job.status, JobStatus::Running, "{running:?}");
        let attempt = &running.attempts[0];
        assert_eq!(attempt.status.as_str(), "running");
        assert_eq!(
            (attempt.records, attempt.stats.len()),
            (2, 1),
            "{attempt:?}"
        );
        assert_eq!(attempt.stats[0].records_committed, 2);

        // The runner dies: its lease runs out and another takes the job
        // over, recording the attempt as failed with what it committed.
        doomed.shutdown_background();
        let stop = CancellationToken::new();
        let second = tokio::spawn({
            let (runner, stop) = (Runner::new(service(env), quick), stop.clone());
            async move { runner.run(stop, DEADLINE).await }
        });
        let taken = wait_for(&svc, job.id, |j| j.attempts.len() == 2).await;
        let killed = &taken.attempts[0];
        assert_eq!(killed.status.as_str(), "failed", "{taken:?}");
        assert_eq!(
            (killed.records, killed.records_committed),
            (2, 2),
            "{killed:?}"
        );
        assert_eq!(killed.stats[0].records_committed, 2, "{killed:?}");
        svc.job_cancel(job.id).await.unwrap();
        wait_for(&svc, job.id, ended).await;
        stop.cancel();
        second.await.unwrap().unwrap();
    });
}

fn queued_and_running_jobs_are_cancelled(env: &Env) {
    // c0 runs for ever (as good as); c1 waits queued behind it.
    sample_connections(env, 2, 1_000_000_000);
    runtime().block_on(async {
        let s = service(env);
        let long = s
            .enqueue_job(&sync("c0"), JobTrigger::Manual)
            .await
            .unwrap();
        let queued = s
            .enqueue_job(&sync("c1"), JobTrigger::Manual)
            .await
            .unwrap();
        // With no daemon to run them, the commands say so rather than wait.
        let id = queued.id.to_string();
        let follow = env.run(&["job", "logs", "-f", &id]);
        follow.expect_code(3);
        for said in [
            "is queued, and no sluice daemon runs here",
            "sluice daemon start",
        ] {
            assert!(follow.stderr().contains(said), "{}", follow.stderr());
        }
        let again = env.run(&["connection", "sync", "c1"]);
        again.expect_code(2);
        let cancel = format!("sluice job cancel {id}");
        for said in ["already has a queued job", "sluice daemon start", &cancel] {
            assert!(again.stderr().contains(said), "{}", again.stderr());
        }
        let runner = Runner::new(service(env), options(1));
        let stop = CancellationToken::new();
        let run = tokio::spawn({
            let (r, stop) = (runner.clone(), stop.clone());
            async move { r.run(stop, Duration::from_secs(60)).await }
        });
        let running = wait_for(&s, long.id, |j| !j.attempts.is_empty()).await;
        assert_eq!(running.job.status, JobStatus::Running);
        // Followers of a job running here get its events.
        let mut events = runner.subscribe(long.id).expect("it runs here");
        tokio::time::timeout(DEADLINE, events.recv())
            .await
            .expect("an event")
            .unwrap();

        let cancelled = s.job_cancel(queued.id).await.unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        // Cancelled through the store, as from another daemon: the runner
        // sees it at a heartbeat.
        let asked = s.job_cancel(long.id).await.unwrap();
        assert_eq!(asked.status, JobStatus::Running);
        let done = wait_for(&s, long.id, ended).await;
        assert_eq!(done.job.status, JobStatus::Cancelled, "{done:?}");
        let last = done.attempts.last().unwrap();
        assert_eq!(last.status.as_str(), "cancelled");
        assert_eq!(
            last.failure.as_ref().unwrap().failure_type.as_str(),
            "manual_cancellation"
        );
        // The follower's stream ends with the job.
        let end = tokio::time::timeout(DEADLINE, async {
            loop {
                match events.recv().await {
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => continue,
                }
            }
        });
        end.await.expect("the event stream ends");
        stop.cancel();
        run.await.unwrap().unwrap();
        let never = s.job_get(queued.id).await.unwrap();
        assert_eq!(never.job.status, JobStatus::Cancelled);
        assert!(never.attempts.is_empty(), "{never:?}");
        let again = s.job_cancel(queued.id).await.unwrap_err();
        assert!(again.message.contains("already ended"), "{again:?}");
    });
}

fn a_graceful_stop_puts_a_long_job_back_in_the_queue(env: &Env) {
    sample_connections(env, 1, 1_000_000_000);
    runtime().block_on(async {
        let s = service(env);
        let job = s
            .enqueue_job(&sync("c0"), JobTrigger::Manual)
            .await
            .unwrap();
        let runner = Runner::new(service(env), options(1));
        let stop = CancellationToken::new();
        let run = tokio::spawn({
            let (r, stop) = (runner.clone(), stop.clone());
            async move { r.run(stop, Duration::from_millis(500)).await }
        });
        wait_for(&s, job.id, |j| !j.attempts.is_empty()).await;
        stop.cancel();
        tokio::time::timeout(DEADLINE, run)
            .await
            .expect("the runner stops after its grace period")
            .unwrap()
            .unwrap();
        let back = s.job_get(job.id).await.unwrap();
        assert_eq!(back.job.status, JobStatus::Pending, "{back:?}");
        let stopped = &back.attempts[0];
        assert_eq!(stopped.status.as_str(), "cancelled");
        let why = stopped.failure.as_ref().unwrap();
        assert_eq!(why.origin.as_str(), "platform");
        assert!(why.message.contains("daemon stopped"), "{why:?}");
        // It can still be cancelled while it waits.
        let cancelled = s.job_cancel(job.id).await.unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
    });
}

fn scheduler_options() -> SchedulerOptions {
    SchedulerOptions {
        tick: Duration::from_millis(100),
        jitter: Duration::ZERO,
        leader_retry: Duration::from_millis(500),
    }
}

async fn jobs_of(s: &Service, connection: &str) -> Vec<sluice::api::Job> {
    s.job_list(&sluice::api::JobFilter {
        connection: Some(connection.into()),
        status: None,
        limit: 0,
    })
    .await
    .unwrap()
}

fn a_schedule_fires_until_its_connection_is_disabled(env: &Env) {
    // Every second (croner reads a sixth field as seconds), which only
    // tests may ask for.
    sluice::model::allow_schedules_in_seconds();
    scheduled_connections(env, 1, 20, "cron:* * * * * *");
    runtime().block_on(async {
        let s = service(env);
        let runner = Runner::new(service(env), options(2));
        let scheduler =
            Scheduler::new(service(env), scheduler_options()).with_runner(runner.clone());
        let stop = CancellationToken::new();
        let run = tokio::spawn({
            let (r, stop) = (runner.clone(), stop.clone());
            async move { r.run(stop, Duration::from_secs(60)).await }
        });
        let fire = tokio::spawn({
            let stop = stop.clone();
            async move { scheduler.run(stop).await }
        });
        let start = Instant::now();
        loop {
            let jobs = jobs_of(&s, "c0").await;
            let done = jobs
                .iter()
                .filter(|j| j.status == JobStatus::Succeeded)
                .count();
            if done >= 2 {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "{jobs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Disabled in the store by another process: no more jobs, with
        // no restart.
        env.ok(&["connection", "disable", "c0"]);
        let start = Instant::now();
        let fired = loop {
            let jobs = jobs_of(&s, "c0").await;
            if jobs
                .iter()
                .all(|j| !matches!(j.status, JobStatus::Pending | JobStatus::Running))
            {
                break jobs.len();
            }
            assert!(start.elapsed() < DEADLINE, "{jobs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        let later = jobs_of(&s, "c0").await;
        assert_eq!(later.len(), fired, "{later:?}");
        stop.cancel();
        run.await.unwrap().unwrap();
        fire.await.unwrap().unwrap();
    });
}

fn a_scheduler_that_was_down_queues_one_catch_up_job(env: &Env) {
    scheduled_connections(env, 1, 20, "every:1h");
    runtime().block_on(async {
        let s = service(env);
        let store = s.store().await.unwrap();
        let c = store.get_connection("c0").await.unwrap().unwrap();
        // Five runs fell due while no daemon ran.
        let five_hours_ago = sluice::store::now_ms() - 5 * 3_600_000;
        assert!(store
            .set_next_run(c.id, None, Some(five_hours_ago), Some("every:1h"))
            .await
            .unwrap());
        // No runner: what is queued stays queued.
        let scheduler = Scheduler::new(service(env), scheduler_options());
        let stop = CancellationToken::new();
        let fire = tokio::spawn({
            let stop = stop.clone();
            async move { scheduler.run(stop).await }
        });
        let start = Instant::now();
        while jobs_of(&s, "c0").await.is_empty() {
            assert!(start.elapsed() < DEADLINE, "no catch-up job");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Many more looks: still the one job.
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.cancel();
        fire.await.unwrap().unwrap();
        let jobs = jobs_of(&s, "c0").await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].status, JobStatus::Pending);
        let next = store
            .scheduled_connections()
            .await
            .unwrap()
            .into_iter()
            .find(|x| x.id == c.id)
            .unwrap()
            .next_run_at
            .unwrap();
        assert!(next > sluice::store::now_ms() + 3_500_000, "{next}");
    });
}

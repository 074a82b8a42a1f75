//! What the view tests start from, written into the store the way the DAG processor, the
//! scheduler and the workers write it.

use chrono::Utc;
use updraft_model::{Schedule, TaskState};
use updraft_store::conformance::fixture;
use updraft_store::{
    DagRun, DagRunState, ImportErrorRecord, JobHeartbeat, JobKind, Store, TaskInstance,
};

/// A DAG id that would run a script if a page printed it unescaped.
pub const EVIL_DAG: &str = "<script>alert('dag')</script>";
pub const EVIL_ERROR: &str = "line 2, column 1: bad key <script>alert('err')</script>";

/// Publishes `etl` (tasks `a >> b`, tags `etl`, `daily`), `hourly` (tag `misc`, a cron
/// schedule), the DAG [`EVIL_DAG`], and an import error of `broken.yaml` ([`EVIL_ERROR`]).
pub async fn publish(store: &dyn Store) {
    let mut etl = fixture::dag("etl", Schedule::None, &["a", "b"]);
    etl.tasks[1].dependencies = vec!["a".into()];
    etl.tags = vec!["etl".into(), "daily".into()];
    etl.description = Some("Loads <b>users</b>".into());
    let mut hourly = fixture::dag("hourly", Schedule::Cron("0 * * * *".into()), &["a"]);
    hourly.tags = vec!["misc".into()];
    let evil = fixture::dag(EVIL_DAG, Schedule::None, &["a"]);
    let mut sync = fixture::scan(vec![
        fixture::upsert(etl, "h1"),
        fixture::upsert(hourly, "h1"),
        fixture::upsert(evil, "h1"),
    ]);
    sync.import_errors = vec![ImportErrorRecord {
        filename: "dags/broken.yaml".into(),
        error: EVIL_ERROR.into(),
    }];
    store.sync_dags(sync).await.expect("sync");
}

/// A manual run of `dag_id` with all its tasks.
pub async fn run(store: &dyn Store, dag_id: &str, run_id: &str, minutes: i64) -> DagRun {
    let tasks = store
        .get_dag_version(dag_id, 1)
        .await
        .expect("version 1")
        .tasks
        .iter()
        .map(|t| fixture::task(&t.task_id))
        .collect();
    let mut new_run = fixture::new_run(dag_id, run_id, tasks);
    new_run.logical_date = fixture::at(minutes);
    fixture::create(store, new_run).await
}

/// Claims `task_id` of `run` for `worker-1`: it is running afterwards.
pub async fn start(store: &dyn Store, run: &DagRun, task_id: &str) -> updraft_store::ClaimedTask {
    let ti = fixture::ti(store, run.id, task_id).await;
    fixture::queue(store, &ti).await;
    let mut request = fixture::claim_request("worker-1", None, 1);
    request.dag_run_id = Some(run.id);
    let mut claimed = fixture::claim(store, request).await;
    assert_eq!(claimed.len(), 1);
    claimed.remove(0)
}

/// Runs `task_id` of `run` to `state`.
pub async fn finish(
    store: &dyn Store,
    run: &DagRun,
    task_id: &str,
    state: TaskState,
) -> TaskInstance {
    let claimed = start(store, run, task_id).await;
    fixture::finish(store, fixture::report(&claimed, state)).await;
    fixture::ti(store, run.id, task_id).await
}

/// A run whose task `a` failed and which failed.
pub async fn failed_run(store: &dyn Store, dag_id: &str, run_id: &str) -> DagRun {
    let run = run(store, dag_id, run_id, 0).await;
    finish(store, &run, "a", TaskState::Failed).await;
    store
        .force_dag_run_state(run.id, DagRunState::Failed, Utc::now())
        .await
        .expect("mark failed");
    run
}

/// A heartbeat of a process of `kind` now.
pub async fn beat(store: &dyn Store, id: &str, kind: JobKind, queues: &[&str]) {
    store
        .job_heartbeat(JobHeartbeat {
            id: id.into(),
            kind,
            hostname: format!("{id}.example"),
            queues: queues.iter().map(|q| q.to_string()).collect(),
            state: "running".into(),
            now: Utc::now(),
        })
        .await
        .expect("heartbeat");
}

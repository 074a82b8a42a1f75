//! DAGs, runs and task instances the resource tests start from, published into the
//! server's store the way the DAG processor and the scheduler write them.

use updraft_model::{Schedule, TaskState};
use updraft_store::conformance::fixture;
use updraft_store::{DagRun, Store, TaskInstance};

/// Publishes `etl` (tasks `a >> b >> c`, tags `etl`, `daily`) and `solo` (task `a`, tag
/// `misc`, hourly).
pub async fn publish(store: &dyn Store) {
    let mut etl = fixture::dag("etl", Schedule::None, &["a", "b", "c"]);
    etl.tasks[1].dependencies = vec!["a".into()];
    etl.tasks[2].dependencies = vec!["b".into()];
    etl.tasks[1].retries = 2;
    etl.tags = vec!["etl".into(), "daily".into()];
    let mut solo = fixture::dag("solo", Schedule::Cron("0 * * * *".into()), &["a"]);
    solo.tags = vec!["misc".into()];
    fixture::sync(
        store,
        vec![fixture::upsert(etl, "h1"), fixture::upsert(solo, "h1")],
    )
    .await;
}

/// A manual run of `dag_id` with logical date `fixture::at(minutes)`.
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
    new_run.data_interval_start = fixture::at(minutes);
    new_run.data_interval_end = fixture::at(minutes);
    fixture::create(store, new_run).await
}

/// Runs `task_id` of `run` to `state` through a real claim and finish report.
pub async fn finish(
    store: &dyn Store,
    run: &DagRun,
    task_id: &str,
    state: TaskState,
) -> TaskInstance {
    let claimed = claim(store, run, task_id).await;
    fixture::finish(store, fixture::report(&claimed, state)).await;
    fixture::ti(store, run.id, task_id).await
}

/// Queues and claims `task_id` of `run`: it is `running` with a claim afterwards.
pub async fn claim(store: &dyn Store, run: &DagRun, task_id: &str) -> updraft_store::ClaimedTask {
    let ti = fixture::ti(store, run.id, task_id).await;
    fixture::queue(store, &ti).await;
    let mut request = fixture::claim_request("worker-1", None, 1);
    request.dag_run_id = Some(run.id);
    let mut claimed = fixture::claim(store, request).await;
    assert_eq!(claimed.len(), 1, "claimed {task_id}");
    claimed.remove(0)
}

//! The DAGs and runs the DAG view tests look at, written the way the DAG processor, the
//! scheduler and a worker write them; their ids, params, conf, XCom and log carry markup that
//! the pages must escape.

use serde_json::json;
use updraft_model::{Schedule, TaskState};
use updraft_store::conformance::fixture;
use updraft_store::{DagRun, LogTail, Store};

/// A `<script>` in a DAG id, a param description, a conf value and a log line.
pub const EVIL_DAG: &str = "<script>alert('dag')</script>";
pub const EVIL_PARAM: &str = "<script>alert('param')</script>";
pub const EVIL_CONF: &str = "<script>alert('conf')</script>";
pub const EVIL_LOG: &str = "<script>alert('log')</script>";

/// `etl` (`extract >> transform >> load`, hourly, with params) in two versions, and a
/// DAG whose id is markup.
pub async fn publish(store: &dyn Store) {
    let mut etl = fixture::dag(
        "etl",
        Schedule::Cron("0 * * * *".into()),
        &["extract", "transform", "load"],
    );
    etl.tasks[1].dependencies = vec!["extract".into()];
    etl.tasks[2].dependencies = vec!["transform".into()];
    let params = json!({
        "count": {"type": "integer", "default": 2, "minimum": 1, "maximum": 9, "description": EVIL_PARAM},
        "target": {"type": "string", "enum": ["dev", "prod"], "default": "dev"},
        "day": {"type": "string", "format": "date"},
        "table": "users",
    });
    etl.params = params.as_object().cloned().unwrap_or_default();
    etl.default_args = json!({"retries": 2, "retry_delay": "5m", "pool": "<b>etl</b>"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut first = etl.clone();
    first.tasks.truncate(2);
    fixture::sync(store, vec![fixture::upsert(first, "h1")]).await;
    let evil = fixture::dag(EVIL_DAG, Schedule::None, &["a"]);
    fixture::sync(
        store,
        vec![fixture::upsert(etl, "h2"), fixture::upsert(evil, "h1")],
    )
    .await;
}

/// A run of `dag_id` with every task of its current version, logical date `at(minutes)`.
pub async fn run(store: &dyn Store, dag_id: &str, run_id: &str, minutes: i64) -> DagRun {
    let record = store.get_dag(dag_id).await.expect("dag");
    let tasks = store
        .get_dag_version(dag_id, record.version)
        .await
        .expect("version")
        .tasks
        .iter()
        .map(|t| fixture::task(&t.task_id))
        .collect();
    let mut new_run = fixture::new_run(dag_id, run_id, tasks);
    new_run.dag_version = record.version;
    new_run.logical_date = fixture::at(minutes);
    new_run.conf = json!({"x": EVIL_CONF})
        .as_object()
        .cloned()
        .unwrap_or_default();
    fixture::create(store, new_run).await
}

/// Runs `task_id` of `run` through a claim and a finish report in `state`, with `log` as its
/// log and `xcom` as its return value.
pub async fn finish(
    store: &dyn Store,
    run: &DagRun,
    task_id: &str,
    state: TaskState,
    log: &str,
    xcom: Option<serde_json::Value>,
) {
    let ti = fixture::ti(store, run.id, task_id).await;
    fixture::queue(store, &ti).await;
    let mut request = fixture::claim_request("worker-1", None, 1);
    request.dag_run_id = Some(run.id);
    let mut claimed = fixture::claim(store, request).await;
    assert_eq!(claimed.len(), 1, "one claim");
    let claimed = claimed.remove(0);
    let mut report = fixture::report(&claimed, state);
    report.log_tail = Some(LogTail {
        offset: 0,
        data: log.to_string(),
    });
    report.xcom = xcom;
    fixture::finish(store, report).await;
}

/// `etl` with run `r1` (extract success, transform failed, load waiting).
pub async fn etl_with_a_run(store: &dyn Store) -> DagRun {
    publish(store).await;
    let run = run(store, "etl", "r1", 0).await;
    finish(
        store,
        &run,
        "extract",
        TaskState::Success,
        &format!("[2024-01-01T00:00:00+00:00] {{updraft}} running: echo extract --rendered\n[2024-01-01T00:00:01+00:00] {{stdout}} extracting\n[2024-01-01T00:00:02+00:00] {{stdout}} {EVIL_LOG}\n"),
        Some(json!({"rows": "<b>128</b>"})),
    )
    .await;
    finish(store, &run, "transform", TaskState::Failed, "boom\n", None).await;
    run
}

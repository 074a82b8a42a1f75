//! Builders the checks share: DAGs, runs, queued and claimed task instances at fixed instants.

use std::fmt::Debug;

use chrono::{DateTime, Duration, TimeZone, Utc};
use updraft_model::{Dag, Operator, Schedule, Task};

use crate::{
    ClaimRequest, ClaimedTask, DagRun, DagSync, DagUpsert, FinishReport, LogChunk, NewDagRun,
    NewTaskInstance, Result, RunType, Store, StoreError, SyncReport, TaskInstance, TaskState,
    Transition, TransitionResult,
};

/// `minutes` after 2024-01-01T00:00:00Z; every instant of the suite is one of these.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A DAG with bash tasks `task_ids`, in the UTC time zone.
pub fn dag(dag_id: &str, schedule: Schedule, task_ids: &[&str]) -> Dag {
    Dag {
        dag_id: dag_id.to_string(),
        description: Some(format!("the {dag_id} DAG")),
        schedule,
        timezone: "UTC".parse().expect("UTC is a time zone"),
        start_date: Some(at(0)),
        end_date: None,
        catchup: false,
        max_active_runs: 16,
        max_active_tasks: 16,
        dagrun_timeout: None,
        max_consecutive_failed_dag_runs: 0,
        callbacks: Default::default(),
        tags: vec!["conformance".to_string()],
        params: serde_json::Map::new(),
        default_args: serde_json::Map::new(),
        asset_schedule: None,
        tasks: task_ids
            .iter()
            .map(|id| {
                Task::new(
                    *id,
                    Operator::Bash {
                        bash_command: format!("echo {id}"),
                    },
                )
            })
            .collect(),
    }
}

/// An hourly DAG.
pub fn hourly(dag_id: &str) -> Dag {
    dag(dag_id, Schedule::Cron("0 * * * *".to_string()), &["a"])
}

/// `dag` as found in `dags/<dag_id>.yaml` with content hash `hash`.
pub fn upsert(dag: Dag, hash: &str) -> DagUpsert {
    DagUpsert {
        fileloc: format!("dags/{}.yaml", dag.dag_id),
        content_hash: hash.to_string(),
        source: format!("# {} {hash}", dag.dag_id),
        dag: std::sync::Arc::new(dag),
    }
}

/// A folder scan at `at(0)` that found exactly `dags`, without import errors.
pub fn scan(dags: Vec<DagUpsert>) -> DagSync {
    DagSync {
        dags,
        import_errors: Vec::new(),
        now: at(0),
        paused_at_creation: false,
        folder: None,
        files: None,
    }
}

pub async fn sync(store: &dyn Store, dags: Vec<DagUpsert>) -> SyncReport {
    store.sync_dags(scan(dags)).await.expect("sync_dags")
}

/// Publishes manual (unscheduled) DAGs named `dag_ids`, each with the single task `a`.
pub async fn publish(store: &dyn Store, dag_ids: &[&str]) {
    let dags = dag_ids
        .iter()
        .map(|id| upsert(dag(id, Schedule::None, &["a"]), "h1"))
        .collect();
    sync(store, dags).await;
}

/// A task instance to create in the default queue and pool with priority weight 1.
pub fn task(task_id: &str) -> NewTaskInstance {
    NewTaskInstance {
        task_id: task_id.to_string(),
        queue: "default".to_string(),
        pool: "default_pool".to_string(),
        priority_weight: 1,
    }
}

pub fn task_in(task_id: &str, queue: &str, priority_weight: i64) -> NewTaskInstance {
    NewTaskInstance {
        queue: queue.to_string(),
        priority_weight,
        ..task(task_id)
    }
}

/// A manual run of version 1 of `dag_id`, logical date `at(0)`, created at `at(0)`.
pub fn new_run(dag_id: &str, run_id: &str, tasks: Vec<NewTaskInstance>) -> NewDagRun {
    NewDagRun {
        dag_id: dag_id.to_string(),
        run_id: run_id.to_string(),
        run_type: RunType::Manual,
        logical_date: at(0),
        data_interval_start: at(0),
        data_interval_end: at(0),
        conf: serde_json::Map::new(),
        dag_version: 1,
        tasks,
        now: at(0),
        next_dagrun: None,
        runner: None,
    }
}

/// A scheduled run with logical date `at(minutes)` that moves the DAG's next run to `next`.
pub fn scheduled_run(dag_id: &str, minutes: i64, next: Option<DateTime<Utc>>) -> NewDagRun {
    NewDagRun {
        run_type: RunType::Scheduled,
        logical_date: at(minutes),
        data_interval_start: at(minutes - 60),
        data_interval_end: at(minutes),
        next_dagrun: Some(next),
        runner: None,
        ..new_run(dag_id, &format!("scheduled__{minutes}"), vec![task("a")])
    }
}

pub async fn create(store: &dyn Store, run: NewDagRun) -> DagRun {
    store.create_dag_run(run).await.expect("create_dag_run")
}

/// The task instance `task_id` of run `dag_run_id`.
pub async fn ti(store: &dyn Store, dag_run_id: i64, task_id: &str) -> TaskInstance {
    store
        .task_instances(dag_run_id)
        .await
        .expect("task_instances")
        .into_iter()
        .find(|ti| ti.task_id == task_id)
        .unwrap_or_else(|| panic!("no task instance {task_id:?} in run #{dag_run_id}"))
}

/// A compare-and-set of `ti` from its current state to `to` at `at(1)`.
pub fn transition(ti: &TaskInstance, to: TaskState) -> Transition {
    Transition {
        ti_id: ti.id,
        try_number: ti.try_number,
        from: ti.state,
        to,
        now: at(1),
        new_try: false,
        next_retry_at: None,
    }
}

/// Applies one transition that must succeed.
pub async fn apply(store: &dyn Store, transition: Transition) {
    let results = store
        .apply_transitions(vec![transition.clone()])
        .await
        .expect("apply_transitions");
    assert_eq!(
        results,
        vec![TransitionResult::Applied],
        "{transition:?} did not apply"
    );
}

/// Moves `ti` from `none` through `scheduled` to `queued`, starting a new try as the scheduler
/// does; returns it as stored.
pub async fn queue(store: &dyn Store, ti: &TaskInstance) -> TaskInstance {
    apply(store, transition(ti, TaskState::Scheduled)).await;
    let scheduled = self::ti(store, ti.dag_run_id, &ti.task_id).await;
    apply(
        store,
        Transition {
            new_try: true,
            ..transition(&scheduled, TaskState::Queued)
        },
    )
    .await;
    self::ti(store, ti.dag_run_id, &ti.task_id).await
}

/// Publishes `dag_id` (if needed), creates run `run_id` with `tasks` and queues all of them.
pub async fn queued_run(
    store: &dyn Store,
    dag_id: &str,
    run_id: &str,
    tasks: Vec<NewTaskInstance>,
) -> DagRun {
    if store.get_dag(dag_id).await.is_err() {
        let mut dags: Vec<DagUpsert> = Vec::new();
        for existing in store.list_dags().await.expect("list_dags") {
            let definition = store
                .get_dag_version(&existing.dag_id, existing.version)
                .await
                .expect("get_dag_version");
            dags.push(upsert((*definition).clone(), "h1"));
        }
        dags.push(upsert(dag(dag_id, Schedule::None, &["a"]), "h1"));
        sync(store, dags).await;
    }
    let run = create(store, new_run(dag_id, run_id, tasks)).await;
    for ti in store.task_instances(run.id).await.expect("task_instances") {
        queue(store, &ti).await;
    }
    run
}

/// A claim by `worker_id` at `at(2)` with a lease until `at(10)`.
pub fn claim_request(worker_id: &str, queues: Option<&[&str]>, limit: usize) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker_id.to_string(),
        hostname: format!("{worker_id}.example"),
        queues: queues.map(|qs| qs.iter().map(|q| q.to_string()).collect()),
        dag_run_id: None,
        limit,
        now: at(2),
        lease_until: at(10),
    }
}

pub async fn claim(store: &dyn Store, request: ClaimRequest) -> Vec<ClaimedTask> {
    store.claim(request).await.expect("claim")
}

/// Claims exactly one task for `worker_id` from any queue.
pub async fn claim_one(store: &dyn Store, worker_id: &str) -> ClaimedTask {
    let mut claimed = claim(store, claim_request(worker_id, None, 1)).await;
    assert_eq!(claimed.len(), 1, "expected one claimed task");
    claimed.remove(0)
}

/// The report of a successful try of `claimed` at `at(5)`, without XCom.
pub fn report(claimed: &ClaimedTask, state: TaskState) -> FinishReport {
    FinishReport {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        claim_id: claimed.claim_id.clone(),
        state,
        end_date: at(5),
        next_retry_at: None,
        xcom: None,
        infrastructure_failure: false,
        log_tail: None,
        effects: Default::default(),
    }
}

pub async fn finish(store: &dyn Store, report: FinishReport) -> TransitionResult {
    let results = store.finish(vec![report]).await.expect("finish");
    assert_eq!(results.len(), 1);
    results[0]
}

/// Claims the one queued task instance of `run` for worker `w`, ships `log` as its log, and
/// finishes it successfully with the XCom `xcom`; answers the claim.
pub async fn run_try(
    store: &dyn Store,
    run: &DagRun,
    log: &str,
    xcom: serde_json::Value,
) -> ClaimedTask {
    let claimed = claim(
        store,
        ClaimRequest {
            dag_run_id: Some(run.id),
            ..claim_request("w", None, 1)
        },
    )
    .await
    .remove(0);
    let chunk = LogChunk {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        claim_id: claimed.claim_id.clone(),
        offset: 0,
        data: log.into(),
    };
    store.append_log(chunk).await.expect("append_log");
    let done = finish(
        store,
        FinishReport {
            xcom: Some(xcom),
            ..report(&claimed, TaskState::Success)
        },
    )
    .await;
    assert_eq!(done, TransitionResult::Applied);
    claimed
}

/// The error of a call that must fail.
pub fn error<T: Debug>(result: Result<T>) -> StoreError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e,
    }
}

/// Task ids of `tis`, in their order.
pub fn task_ids(tis: &[TaskInstance]) -> Vec<&str> {
    tis.iter().map(|ti| ti.task_id.as_str()).collect()
}

//! The routes a trigger task uses (`POST dag-runs`, `GET dag-runs/{dag_id}/{run_id}/state`),
//! through [`HttpExecution`](updraft_api::HttpExecution) as a remote worker calls them: a run
//! created, found again, reset; a missing DAG as an outcome; a missing run as a 404.

use chrono::Utc;
use reqwest::StatusCode;
use updraft_model::DagRunState;
use updraft_store::{
    StoreError, TaskExecution, TaskState, Transition, TriggerDagRunOutcome, TriggerDagRunRequest,
};

use crate::fixture::{publish, ti, Server, DAG_ID};

fn request(dag_id: &str, run_id: &str, reset: bool) -> TriggerDagRunRequest {
    let mut conf = serde_json::Map::new();
    conf.insert("day".into(), "2024-01-01".into());
    TriggerDagRunRequest {
        dag_id: dag_id.into(),
        run_id: run_id.into(),
        logical_date: Utc::now(),
        conf,
        reset_dag_run: reset,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_triggers_runs_and_reads_their_state_through_the_api() {
    let server = Server::start().await;
    let store = server.dyn_store();
    publish(store, &["a"]).await;
    let client = server.client();

    let created = client
        .trigger_dag_run(request(DAG_ID, "from_task", false))
        .await
        .expect("triggered");
    let TriggerDagRunOutcome::Created { dag_run_id } = created else {
        panic!("not created: {created:?}")
    };
    let run = store
        .get_dag_run(DAG_ID, "from_task")
        .await
        .expect("the run");
    assert_eq!(run.id, dag_run_id);
    assert_eq!(run.run_type, updraft_model::RunType::Manual);
    assert_eq!(run.conf["day"], "2024-01-01");
    assert_eq!(
        client
            .dag_run_state(DAG_ID, "from_task")
            .await
            .expect("a state"),
        DagRunState::Queued
    );

    let again = client
        .trigger_dag_run(request(DAG_ID, "from_task", false))
        .await
        .expect("answered");
    assert_eq!(again, TriggerDagRunOutcome::AlreadyExists { dag_run_id });

    // Reset: the run's task instances go back to `none` (here from `upstream_failed`).
    let a = ti(store, dag_run_id, "a").await;
    store
        .apply_transitions(vec![Transition {
            ti_id: a.id,
            try_number: a.try_number,
            from: TaskState::None,
            to: TaskState::UpstreamFailed,
            now: Utc::now(),
            new_try: false,
            next_retry_at: None,
        }])
        .await
        .expect("marked");
    let reset = client
        .trigger_dag_run(request(DAG_ID, "from_task", true))
        .await
        .expect("answered");
    assert_eq!(reset, TriggerDagRunOutcome::Reset { dag_run_id });
    assert_eq!(ti(store, dag_run_id, "a").await.state, TaskState::None);

    let missing = client
        .trigger_dag_run(request("no_such_dag", "x", false))
        .await
        .expect("answered");
    assert_eq!(missing, TriggerDagRunOutcome::DagNotFound);
    assert!(matches!(
        client.dag_run_state(DAG_ID, "never").await,
        Err(StoreError::NotFound(_))
    ));

    let answer = server
        .post(
            "dag-runs",
            r#"{"dag_id": "x", "run_id": " ", "logical_date": "2024-01-01T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{answer:?}"
    );
    assert!(answer.detail().contains("run_id must not be empty"));
}

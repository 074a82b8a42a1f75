//! `clearTaskInstances` through `ExternalTaskMarker`s: a cleared marker clears its task of the
//! other DAG, with that task's downstream, in the run of the same logical date, recursively,
//! and refuses a clear that would go deeper than the first marker's `recursion_depth`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_model::{ExternalTaskMarker, Operator, Schedule, TaskState};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture;
use updraft_store::Store;

use crate::fixture::Server;
use crate::world;

fn marker(dag_id: &str, task_id: &str, depth: u32) -> Operator {
    Operator::ExternalTaskMarker(ExternalTaskMarker {
        external_dag_id: dag_id.into(),
        external_task_id: task_id.into(),
        logical_date: "{{ logical_date.isoformat() }}".into(),
        recursion_depth: depth,
    })
}

/// `parent`: start >> mark (→ child.load); `shallow`: the same with recursion depth 1;
/// `child`: load >> [report, mark2 (→ grandchild.t)]; `grandchild`: t >> u; `bystander`:
/// load, untouched. One run each at the same logical date (bystander's at another).
async fn publish(store: &dyn Store) {
    let chain = |id: &str, tasks: &[&str]| {
        let mut dag = fixture::dag(id, Schedule::None, tasks);
        for i in 1..dag.tasks.len() {
            dag.tasks[i].dependencies = vec![dag.tasks[0].task_id.clone()];
        }
        dag
    };
    let mut parent = chain("parent", &["start", "mark"]);
    parent.tasks[1].operator = marker("child", "load", 10);
    let mut shallow = chain("shallow", &["start", "mark"]);
    shallow.tasks[1].operator = marker("child", "load", 1);
    let mut child = chain("child", &["load", "report", "mark2"]);
    child.tasks[2].operator = marker("grandchild", "t", 10);
    let grandchild = chain("grandchild", &["t", "u"]);
    let upserts = [parent, shallow, child, grandchild]
        .into_iter()
        .map(|dag| fixture::upsert(dag, "h1"))
        .collect();
    fixture::sync(store, upserts).await;
}

async fn state(store: &dyn Store, dag_id: &str, task_id: &str) -> TaskState {
    let run = store.get_dag_run(dag_id, "r").await.unwrap();
    fixture::ti(store, run.id, task_id).await.state
}

fn listed(answer: &Value) -> Vec<String> {
    let mut listed: Vec<String> = answer["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ti| {
            format!(
                "{}.{}",
                ti["dag_id"].as_str().unwrap(),
                ti["task_id"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    listed
}

#[tokio::test]
async fn clearing_a_marker_clears_the_marked_tasks_of_other_dags_recursively() {
    let server = Server::start().await;
    let store = server.store.as_ref();
    publish(store).await;
    for dag_id in ["parent", "shallow", "child", "grandchild"] {
        let run = world::run(store, dag_id, "r", 0).await;
        let tasks: Vec<String> = store
            .task_instances(run.id)
            .await
            .unwrap()
            .into_iter()
            .map(|ti| ti.task_id)
            .collect();
        for task in tasks {
            world::finish(store, &run, &task, TaskState::Success).await;
        }
    }
    // A run of the child at another logical date is not the marked one.
    let other = world::run(store, "child", "other", 60).await;
    world::finish(store, &other, "load", TaskState::Success).await;

    let body = json!({"dag_run_id": "r", "task_ids": ["start"], "include_downstream": true,
                      "only_failed": false});
    let clear = |dag: &str, body: Value| {
        let path = format!("/api/v2/dags/{dag}/clearTaskInstances");
        let server = &server;
        async move {
            server
                .call(Some(Role::User), Method::POST, &path, Some(body))
                .await
        }
    };
    let (status, answer) = clear("parent", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        listed(&answer),
        [
            "child.load",
            "child.mark2",
            "child.report",
            "grandchild.t",
            "grandchild.u",
            "parent.mark",
            "parent.start"
        ],
        "the dry run lists what the markers reach"
    );
    assert_eq!(answer["total_entries"], 7);
    assert_eq!(state(store, "child", "load").await, TaskState::Success);

    // Deeper than the first marker's recursion depth: refused as a whole, nothing cleared.
    let mut real = body.clone();
    real["dry_run"] = json!(false);
    let (status, answer) = clear("shallow", real.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["detail"],
        "Maximum recursion depth 1 reached for ExternalTaskMarker mark2. Attempted to clear \
         too many tasks or there may be a cyclic dependency."
    );
    assert_eq!(state(store, "shallow", "start").await, TaskState::Success);
    assert_eq!(state(store, "child", "load").await, TaskState::Success);

    let (status, answer) = clear("parent", real).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for (dag, task) in [
        ("parent", "start"),
        ("child", "load"),
        ("child", "report"),
        ("grandchild", "t"),
        ("grandchild", "u"),
    ] {
        assert_eq!(
            state(store, dag, task).await,
            TaskState::None,
            "{dag}.{task}"
        );
    }
    let other = fixture::ti(store, other.id, "load").await;
    assert_eq!(
        other.state,
        TaskState::Success,
        "another logical date stays"
    );

    // Without its downstream the marker is not cleared, so nothing else is.
    let (_, answer) = clear(
        "shallow",
        json!({"dag_run_id": "r", "task_ids": ["start"], "only_failed": false}),
    )
    .await;
    assert_eq!(listed(&answer), ["shallow.start"]);
}

//! Task instance routes: list, get, tries, batch, patch (mark), clearTaskInstances,
//! dependencies.

use reqwest::{Method, StatusCode};
use serde_json::json;
use updraft_model::TaskState;
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture;

use crate::fixture::Server;
use crate::world;

async fn state_of(server: &Server, run_id: &str, task_id: &str) -> TaskState {
    let run = server.store.get_dag_run("etl", run_id).await.unwrap();
    fixture::ti(server.store.as_ref(), run.id, task_id)
        .await
        .state
}

#[tokio::test]
async fn task_instances_are_listed_in_airflow_shape_with_filters() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let r1 = world::run(store, "etl", "r1", 0).await;
    world::run(store, "etl", "r2", 60).await;
    world::finish(store, &r1, "a", TaskState::Success).await;

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/r1/taskInstances")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 3);
    let a = body["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "a")
        .unwrap()
        .clone();
    assert_eq!(a["state"], "success");
    assert_eq!(a["try_number"], 1);
    assert_eq!(a["map_index"], -1);
    assert_eq!(a["operator"], "BashOperator");
    assert_eq!(a["executor_config"], "{}");
    assert_eq!(a["dag_version"]["version_number"], 1);
    assert!(a["duration"].is_number());
    assert_eq!(a["id"].as_str().unwrap().len(), 36);
    let b = body["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "b")
        .unwrap()
        .clone();
    assert!(b["state"].is_null());
    assert_eq!(b["max_tries"], 2);

    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/~/taskInstances?task_id=a",
        )
        .await;
    assert_eq!(body["total_entries"], 2);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances?state=success",
        )
        .await;
    assert_eq!(body["total_entries"], 1);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances?order_by=-task_id&limit=2",
        )
        .await;
    assert_eq!(body["total_entries"], 6);
    assert_eq!(body["task_instances"][0]["task_id"], "c");
    assert_eq!(body["task_instances"].as_array().unwrap().len(), 2);
    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances?state=bogus",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "state"]));
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/nope/taskInstances")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            "/api/v2/dags/~/dagRuns/~/taskInstances/list",
            Some(json!({"dag_run_ids": ["r2"], "task_ids": ["a", "b"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
}

#[tokio::test]
async fn one_task_instance_and_its_tries() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    world::finish(store, &run, "a", TaskState::Failed).await;
    store
        .clear_task_instances(run.id, &["a".to_string()], fixture::at(2))
        .await
        .unwrap();
    world::finish(store, &run, "a", TaskState::Success).await;

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/r1/taskInstances/a")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["try_number"], 2);
    assert_eq!(body["state"], "success");
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/tries",
        )
        .await;
    assert_eq!(body["total_entries"], 2, "{body}");
    assert_eq!(body["task_instances"][0]["state"], "failed");
    assert_eq!(body["task_instances"][1]["state"], "success");
    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/tries/1",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["try_number"], 1);
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/tries/9",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/tries/x",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/r1/taskInstances/zz")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn marking_with_downstream_and_future_and_dry_run() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    world::run(store, "etl", "r1", 0).await;
    world::run(store, "etl", "r2", 60).await;
    let body = json!({"new_state": "success", "include_downstream": true, "include_future": true});

    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/dry_run",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 4);
    assert_eq!(state_of(&server, "r1", "b").await, TaskState::None);

    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b",
            Some(json!({"new_state": "running"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["detail"][0]["loc"], json!(["body", "new_state"]));
    assert_eq!(state_of(&server, "r1", "b").await, TaskState::None);

    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 4);
    for (run, task, state) in [
        ("r1", "a", TaskState::None),
        ("r1", "b", TaskState::Success),
        ("r1", "c", TaskState::Success),
        ("r2", "b", TaskState::Success),
        ("r2", "c", TaskState::Success),
    ] {
        assert_eq!(state_of(&server, run, task).await, state, "{run} {task}");
    }
    let (_, answer) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a",
            Some(json!({"note": "hi"})),
        )
        .await;
    assert_eq!(answer["task_instances"][0]["note"], "hi");
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/zz",
            Some(json!({"new_state": "failed"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn marking_a_running_task_kills_its_claim() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    let claimed = world::claim(store, &run, "a").await;
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a",
            Some(json!({"new_state": "failed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state_of(&server, "r1", "a").await, TaskState::Failed);
    let lost = store
        .heartbeat(std::slice::from_ref(&claimed.claim_id), fixture::at(100))
        .await
        .unwrap();
    assert_eq!(lost, vec![claimed.claim_id]);
}

#[tokio::test]
async fn clearing_task_instances_with_downstream() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    world::finish(store, &run, "a", TaskState::Success).await;
    world::finish(store, &run, "b", TaskState::Failed).await;

    let body = json!({"dag_run_id": "r1", "task_ids": ["a"], "include_downstream": true, "only_failed": false});
    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/clearTaskInstances",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 3);
    assert_eq!(
        state_of(&server, "r1", "a").await,
        TaskState::Success,
        "dry run by default"
    );

    let mut real = body;
    real["dry_run"] = json!(false);
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/clearTaskInstances",
            Some(real),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state_of(&server, "r1", "a").await, TaskState::None);
    assert_eq!(state_of(&server, "r1", "b").await, TaskState::None);

    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/nothing/clearTaskInstances",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/clearTaskInstances",
            Some(json!({"task_ids": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn dependencies_explain_why_a_task_waits() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    store.set_paused("etl", true).await.unwrap();
    let run = world::run(store, "etl", "r1", 0).await;
    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/dependencies",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Dag Not Paused"), "{names:?}");
    assert!(names.contains(&"Dagrun Running"), "{names:?}");
    assert!(names.contains(&"Trigger Rule"), "{names:?}");
    world::finish(store, &run, "a", TaskState::Success).await;
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/dependencies",
        )
        .await;
    assert_eq!(body["dependencies"][0]["name"], "Task Instance State");
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/zz/dependencies",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dependencies_name_the_previous_run_a_task_depends_on() {
    use updraft_store::conformance::fixture;
    let server = Server::start().await;
    let store = server.store.as_ref();
    let mut dag = fixture::dag("past", updraft_model::Schedule::None, &["a"]);
    dag.tasks[0].past.depends_on_past = true;
    fixture::sync(store, vec![fixture::upsert(dag, "h1")]).await;
    let first = world::run(store, "past", "r1", 0).await;
    world::run(store, "past", "r2", 10).await;
    let path = "/api/v2/dags/past/dagRuns/r2/taskInstances/a/dependencies";
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, body) = server.get(Role::Viewer, path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        names(&body).contains(&"Previous Dagrun State".to_string()),
        "{body}"
    );
    assert!(
        body.to_string()
            .contains("1 previous task instance(s) are not in a successful state"),
        "{body}"
    );
    // The first run has no past.
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/past/dagRuns/r1/taskInstances/a/dependencies",
        )
        .await;
    assert!(
        !names(&body).contains(&"Previous Dagrun State".to_string()),
        "{body}"
    );
    world::finish(store, &first, "a", TaskState::Success).await;
    let (_, body) = server.get(Role::Viewer, path).await;
    assert!(
        !names(&body).contains(&"Previous Dagrun State".to_string()),
        "{body}"
    );
}

#[tokio::test]
async fn clearing_with_upstream_and_past_reaches_every_run_beyond_one_page() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    // 3 tasks × 350 runs: more task instances than one read of a selection takes.
    for i in 0..350 {
        world::run(store, "etl", &format!("r{i:03}"), i * 60).await;
    }
    let body = json!({"dag_run_id": "r300", "task_ids": ["c"], "include_upstream": true,
        "include_past": true, "only_failed": false});
    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/clearTaskInstances",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 3 * 301);
    let runs: std::collections::BTreeSet<&str> = answer["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ti| ti["dag_run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 301);
    assert!(runs.contains("r000") && runs.contains("r300") && !runs.contains("r301"));
}

/// DAG `cluster`: setup `create` → work `query` → teardown `delete` (of `create`), as the
/// loader defines a teardown (Airflow's trigger rule for it).
async fn publish_setup_work_teardown(store: &dyn updraft_store::Store) {
    let mut dag = fixture::dag(
        "cluster",
        updraft_model::Schedule::None,
        &["create", "query", "delete"],
    );
    dag.tasks[0].role.is_setup = true;
    dag.tasks[1].dependencies = vec!["create".into()];
    dag.tasks[2].dependencies = vec!["query".into(), "create".into()];
    dag.tasks[2].role.is_teardown = true;
    dag.tasks[2].trigger_rule = updraft_model::TriggerRule::AllDoneSetupSuccess;
    fixture::sync(store, vec![fixture::upsert(dag, "h1")]).await;
}

/// Clearing a work task through the API (what the UI's clear sends) clears its setup and
/// teardown too, as Airflow's does; clearing a teardown clears only itself.
#[tokio::test]
async fn clearing_a_work_task_clears_its_setup_and_teardown() {
    let server = Server::start().await;
    let store = server.store.as_ref();
    publish_setup_work_teardown(store).await;
    let run = world::run(store, "cluster", "r1", 0).await;
    for task in ["create", "query", "delete"] {
        world::finish(store, &run, task, TaskState::Success).await;
    }
    let clear = |task: &str| json!({"dag_run_id": "r1", "task_ids": [task], "only_failed": false, "dry_run": true});
    let cleared = |answer: &serde_json::Value| {
        let mut ids: Vec<String> = answer["task_instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let path = "/api/v2/dags/cluster/clearTaskInstances";
    let (status, answer) = server
        .call(Some(Role::User), Method::POST, path, Some(clear("query")))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(cleared(&answer), ["create", "delete", "query"]);
    let (_, answer) = server
        .call(Some(Role::User), Method::POST, path, Some(clear("delete")))
        .await;
    assert_eq!(cleared(&answer), ["delete"]);

    let mut real = clear("create");
    real["dry_run"] = json!(false);
    let (status, answer) = server
        .call(Some(Role::User), Method::POST, path, Some(real))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let state = |task: &'static str| async move { fixture::ti(store, run.id, task).await.state };
    assert_eq!(state("create").await, TaskState::None);
    assert_eq!(state("delete").await, TaskState::None);
    assert_eq!(state("query").await, TaskState::Success);
}

/// A teardown whose only setup failed will not run: its dependencies say so by its trigger
/// rule, though every upstream task is done.
#[tokio::test]
async fn a_teardowns_dependencies_count_its_setups() {
    let server = Server::start().await;
    let store = server.store.as_ref();
    publish_setup_work_teardown(store).await;
    let run = world::run(store, "cluster", "r1", 0).await;
    let path = "/api/v2/dags/cluster/dagRuns/r1/taskInstances/delete/dependencies";
    let names = |body: &serde_json::Value| -> Vec<String> {
        body["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    world::finish(store, &run, "create", TaskState::Success).await;
    world::finish(store, &run, "query", TaskState::Failed).await;
    let (status, body) = server.get(Role::Viewer, path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !names(&body).contains(&"Trigger Rule".to_string()),
        "{body}"
    );

    let failed_setup = world::run(store, "cluster", "r2", 60).await;
    world::finish(store, &failed_setup, "create", TaskState::Failed).await;
    world::finish(store, &failed_setup, "query", TaskState::Failed).await;
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/cluster/dagRuns/r2/taskInstances/delete/dependencies",
        )
        .await;
    assert!(names(&body).contains(&"Trigger Rule".to_string()), "{body}");
}

#[tokio::test]
async fn mapped_task_instances_are_read_by_map_index() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    let placeholder = fixture::ti(store, run.id, "b").await;
    store
        .apply_plan(
            vec![fixture::transition(&placeholder, TaskState::Scheduled)],
            vec![updraft_store::Expansion {
                ti_id: placeholder.id,
                count: 3,
            }],
        )
        .await
        .unwrap();

    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/2",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["task_id"].as_str(), body["map_index"].as_i64()),
        (Some("b"), Some(2))
    );
    assert_eq!(body["state"], "scheduled");

    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/listMapped",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 3);
    let indexes: Vec<i64> = body["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["map_index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 1, 2]);

    // Expanded: no instance -1 any more, as in Airflow.
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/r1/taskInstances/b")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("map_index: `-1`"),
        "{body}"
    );
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/3",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/nope/listMapped",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Airflow's clear of `[task_id, map_index]` and mark of `…/{task_id}/{map_index}`: only that
/// instance of the mapped task changes (its downstream whole, when asked).
#[tokio::test]
async fn one_instance_of_a_mapped_task_is_cleared_or_marked() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    let placeholder = fixture::ti(store, run.id, "b").await;
    store
        .apply_plan(
            vec![fixture::transition(&placeholder, TaskState::Scheduled)],
            vec![updraft_store::Expansion {
                ti_id: placeholder.id,
                count: 3,
            }],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .task_instances(run.id)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    store
        .mark_task_instances(updraft_store::MarkTaskInstances {
            ti_ids: ids,
            state: TaskState::Failed,
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let states = || async {
        let mut tis: Vec<(String, i64, TaskState)> = store
            .task_instances(run.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.task_id, t.map_index, t.state))
            .collect();
        tis.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
        tis
    };

    let body = json!({"dag_run_id": "r1", "task_ids": [["b", 1]], "dry_run": false});
    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/clearTaskInstances",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 1, "{answer}");
    use TaskState::*;
    let row = |t: &str, i: i64, s: TaskState| (t.to_string(), i, s);
    assert_eq!(
        states().await,
        vec![
            row("a", -1, Failed),
            row("b", 0, Failed),
            row("b", 1, None),
            row("b", 2, Failed),
            row("c", -1, Failed)
        ]
    );

    let (status, answer) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/2",
            Some(json!({"new_state": "success", "include_downstream": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["total_entries"], 2, "{answer}");
    let after = states().await;
    assert_eq!(after[3], row("b", 2, Success));
    assert_eq!(after[1], row("b", 0, Failed));
    assert_eq!(after[4], row("c", -1, Success));

    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/7",
            Some(json!({"new_state": "success"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Why instance 1 (cleared, its upstream failed) does not run.
    let (status, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/b/1/dependencies",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("Trigger Rule"), "{body}");
}

//! DAG routes: `/dags`, `/dags/{dag_id}[/details]`, `/dagTags`, `/dagSources`,
//! `/dagVersions`, `/dagStats`, `/dags/{dag_id}/tasks`.

use reqwest::{Method, StatusCode};
use serde_json::json;
use updraft_model::TaskState;
use updraft_rest_api::auth::Role;

use crate::fixture::Server;
use crate::world;

#[tokio::test]
async fn dags_are_listed_in_airflow_shape_filtered_ordered_and_paged() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    let etl = &body["dags"][0];
    assert_eq!(etl["dag_id"], "etl");
    assert_eq!(etl["dag_display_name"], "etl");
    assert_eq!(etl["owners"], json!(["airflow"]));
    assert_eq!(etl["bundle_name"], "dags-folder");
    assert_eq!(etl["is_paused"], false);
    assert_eq!(etl["is_stale"], false);
    assert_eq!(etl["max_active_tasks"], 16);
    assert_eq!(etl["timetable_summary"], "None");
    assert!(etl["next_dagrun_logical_date"].is_null());
    assert_eq!(etl["tags"][0]["dag_id"], "etl");
    assert!(etl["file_token"].is_string());
    let solo = &body["dags"][1];
    assert_eq!(solo["timetable_summary"], "0 * * * *");
    assert_eq!(solo["timetable_periodic"], true);

    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags?order_by=-dag_id&limit=1")
        .await;
    assert_eq!(body["total_entries"], 2);
    assert_eq!(body["dags"].as_array().unwrap().len(), 1);
    assert_eq!(body["dags"][0]["dag_id"], "solo");
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags?tags=etl&tags=misc")
        .await;
    assert_eq!(body["total_entries"], 2);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags?tags=etl&tags=misc&tags_match_mode=all",
        )
        .await;
    assert_eq!(body["total_entries"], 0);
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags?dag_id_pattern=ET")
        .await;
    assert_eq!(body["dags"][0]["dag_id"], "etl");
    assert_eq!(body["total_entries"], 1);

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags?order_by=color")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags?last_dag_run_state=blue")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["query", "last_dag_run_state"])
    );
}

#[tokio::test]
async fn last_dag_run_state_filters_by_the_latest_run() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let run = world::run(server.store.as_ref(), "etl", "r1", 0).await;
    server
        .store
        .force_dag_run_state(
            run.id,
            updraft_model::DagRunState::Failed,
            chrono::Utc::now(),
        )
        .await
        .expect("force");
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags?last_dag_run_state=failed")
        .await;
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["dags"][0]["dag_id"], "etl");
}

#[tokio::test]
async fn one_dag_and_its_details() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/etl").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["dag_id"], "etl");
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/etl/details").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["catchup"], false);
    assert_eq!(body["concurrency"], 16);
    assert_eq!(body["timezone"], "UTC");
    assert_eq!(body["latest_dag_version"]["version_number"], 1);
    assert_eq!(body["owners"], json!(["airflow"]));
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["detail"].as_str().unwrap().contains("nothing"));
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/nothing/details")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patching_pauses_and_unpauses_one_or_many() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl",
            Some(json!({"is_paused": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["is_paused"], true);
    assert!(server.store.get_dag("etl").await.unwrap().is_paused);

    // A refused request changes nothing.
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl",
            Some(json!({"is_paused": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl?update_mask=description",
            Some(json!({"is_paused": false})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(server.store.get_dag("etl").await.unwrap().is_paused);
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/nothing",
            Some(json!({"is_paused": true})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags?dag_id_pattern=~",
            Some(json!({"is_paused": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    assert!(server.store.get_dag("solo").await.unwrap().is_paused);
    let (_, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags?dag_id_pattern=sol",
            Some(json!({"is_paused": false})),
        )
        .await;
    assert_eq!(body["dags"][0]["dag_id"], "solo");
    assert!(!server.store.get_dag("solo").await.unwrap().is_paused);
    assert!(server.store.get_dag("etl").await.unwrap().is_paused);
}

#[tokio::test]
async fn tags_sources_versions_and_stats() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let (_, body) = server.get(Role::Viewer, "/api/v2/dagTags").await;
    assert_eq!(body["tags"], json!(["daily", "etl", "misc"]));
    assert!(body["tags"].as_array().unwrap().contains(&json!("etl")));
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dagTags?tag_name_pattern=mi")
        .await;
    assert_eq!(body["tags"], json!(["misc"]));

    let (status, body) = server.get(Role::Viewer, "/api/v2/dagSources/etl").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["content"], "# etl h1");
    assert_eq!(body["version_number"], 1);
    let text = server
        .client
        .get(format!("{}/api/v2/dagSources/etl", server.url))
        .bearer_auth(server.token(Role::Viewer))
        .header("Accept", "text/plain")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "# etl h1");
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dagSources/etl?version_number=7")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagVersions")
        .await;
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["dag_versions"][0]["version_number"], 1);
    assert_eq!(body["dag_versions"][0]["bundle_name"], "dags-folder");
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagVersions/1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagVersions/2")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagVersions/one")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let run = world::run(server.store.as_ref(), "etl", "r1", 0).await;
    world::run(server.store.as_ref(), "etl", "r2", 1).await;
    server
        .store
        .force_dag_run_state(
            run.id,
            updraft_model::DagRunState::Success,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dagStats?dag_ids=etl")
        .await;
    assert_eq!(body["total_entries"], 1);
    let stats = body["dags"][0]["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 4);
    let count = |s: &str| stats.iter().find(|x| x["state"] == s).unwrap()["count"].clone();
    assert_eq!(count("success"), 1);
    assert_eq!(count("queued"), 1);
    assert_eq!(count("failed"), 0);
}

#[tokio::test]
async fn tasks_of_a_dag() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/etl/tasks").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 3);
    let a = &body["tasks"][0];
    assert_eq!(a["task_id"], "a");
    assert_eq!(a["operator_name"], "BashOperator");
    assert_eq!(a["downstream_task_ids"], json!(["b"]));
    assert_eq!(a["trigger_rule"], "all_success");
    assert_eq!(a["retry_delay"]["__type"], "TimeDelta");
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/tasks?order_by=-task_id")
        .await;
    assert_eq!(body["tasks"][0]["task_id"], "c");
    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/etl/tasks/b").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["retries"], 2.0);
    let (status, _) = server.get(Role::Viewer, "/api/v2/dags/etl/tasks/zz").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server.get(Role::Viewer, "/api/v2/dags/zz/tasks").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_dag_removes_it_and_its_runs() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let run = world::run(server.store.as_ref(), "etl", "r1", 0).await;
    world::finish(server.store.as_ref(), &run, "a", TaskState::Success).await;
    let (status, _) = server
        .call(Some(Role::User), Method::DELETE, "/api/v2/dags/etl", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(server.store.get_dag("etl").await.is_err());
    assert!(server.store.get_dag_run("etl", "r1").await.is_err());
    let (status, _) = server.admin(Method::DELETE, "/api/v2/dags/etl", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn run_dependencies_are_reported_as_set() {
    use updraft_store::conformance::fixture;
    let server = Server::start().await;
    let mut dag = fixture::dag("deps", updraft_model::Schedule::None, &["a", "b", "c"]);
    dag.dagrun_timeout = Some(std::time::Duration::from_secs(5400));
    dag.max_consecutive_failed_dag_runs = 4;
    dag.tasks[0].past.depends_on_past = true;
    dag.tasks[1].past.wait_for_downstream = true;
    dag.tasks[2].max_active_tis_per_dag = Some(1);
    fixture::sync(server.store.as_ref(), vec![fixture::upsert(dag, "h1")]).await;

    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/deps").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["max_consecutive_failed_dag_runs"], 4);
    assert_eq!(body["has_task_concurrency_limits"], true);
    let (_, body) = server.get(Role::Viewer, "/api/v2/dags/deps/details").await;
    assert_eq!(body["dag_run_timeout"], "PT1H30M");
    let (_, body) = server.get(Role::Viewer, "/api/v2/dags/deps/tasks").await;
    let flags: Vec<(bool, bool)> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["depends_on_past"].as_bool().unwrap(),
                t["wait_for_downstream"].as_bool().unwrap(),
            )
        })
        .collect();
    // As in Airflow, `wait_for_downstream` turns `depends_on_past` on.
    assert_eq!(flags, vec![(true, false), (true, true), (false, false)]);
}

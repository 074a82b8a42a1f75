//! DAG run routes: list, get, trigger, patch, delete, clear, wait, batch list.

use reqwest::{Method, StatusCode};
use serde_json::json;
use updraft_model::{DagRunState, TaskState};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture;

use crate::fixture::Server;
use crate::world;

async fn states(server: &Server, run_id: &str) -> Vec<(String, TaskState)> {
    let run = server.store.get_dag_run("etl", run_id).await.unwrap();
    let mut tis: Vec<_> = server
        .store
        .task_instances(run.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, t.state))
        .collect();
    tis.sort_by(|a, b| a.0.cmp(&b.0));
    tis
}

#[tokio::test]
async fn triggering_creates_a_run_and_duplicates_conflict() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let body = json!({"dag_run_id": "api-1", "logical_date": "2024-05-01T00:00:00Z",
        "conf": {"x": 1}, "note": "by hand"});
    let (status, run) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["dag_run_id"], "api-1");
    assert_eq!(run["state"], "queued");
    assert_eq!(run["run_type"], "manual");
    assert_eq!(run["conf"], json!({"x": 1}));
    assert_eq!(run["note"], "by hand");
    assert_eq!(run["logical_date"], "2024-05-01T00:00:00Z");
    assert_eq!(run["dag_versions"][0]["version_number"], 1);
    assert_eq!(states(&server, "api-1").await.len(), 3);

    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/nothing/dagRuns",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns",
            Some(json!({"dag_run_id": "bad", "conf": [1, 2]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns",
            Some(json!({"dag_run_id": "bad", "data_interval_start": "2024-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "data_interval_end"])
    );
    assert!(server.store.get_dag_run("etl", "bad").await.is_err());
    // Without a logical date the run is created now.
    let (status, run) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns",
            Some(json!({"logical_date": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert!(run["dag_run_id"].as_str().unwrap().starts_with("manual__"));
}

#[tokio::test]
async fn runs_are_listed_for_one_dag_or_all_with_filters_order_and_paging() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    world::run(store, "etl", "r1", 0).await;
    let r2 = world::run(store, "etl", "r2", 60).await;
    world::run(store, "solo", "s1", 30).await;
    store
        .force_dag_run_state(r2.id, DagRunState::Failed, chrono::Utc::now())
        .await
        .unwrap();

    let (status, body) = server.get(Role::Viewer, "/api/v2/dags/etl/dagRuns").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    assert_eq!(body["dag_runs"][0]["dag_run_id"], "r1");
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns?order_by=-logical_date",
        )
        .await;
    assert_eq!(body["total_entries"], 3);
    let ids: Vec<_> = body["dag_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dag_run_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("r2"), json!("s1"), json!("r1")]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns?limit=1&offset=1&order_by=logical_date",
        )
        .await;
    assert_eq!(body["total_entries"], 3);
    assert_eq!(body["dag_runs"][0]["dag_run_id"], "s1");
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns?state=failed&state=success",
        )
        .await;
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["dag_runs"][0]["state"], "failed");
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns?logical_date_gte=2024-01-01T00:30:00Z",
        )
        .await;
    assert_eq!(body["total_entries"], 2);
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/~/dagRuns?state=sideways")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "state"]));
    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns?logical_date_gte=yesterday",
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/nothing/dagRuns")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            "/api/v2/dags/~/dagRuns/list",
            Some(json!({"dag_ids": ["etl"], "order_by": "-logical_date", "page_limit": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    assert_eq!(body["dag_runs"][0]["dag_run_id"], "r2");

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/r2")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "failed");
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/dags/etl/dagRuns/nope")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn marking_a_run_success_or_failed_changes_its_task_instances() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    world::finish(store, &run, "a", TaskState::Failed).await;
    let claimed = world::claim(store, &run, "b").await;

    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1",
            Some(json!({"state": "paused"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "state"]));
    assert_eq!(states(&server, "r1").await[1].1, TaskState::Running);

    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r1",
            Some(json!({"state": "failed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "failed");
    assert_eq!(
        states(&server, "r1").await,
        vec![
            ("a".into(), TaskState::Failed),
            ("b".into(), TaskState::Failed),
            ("c".into(), TaskState::Skipped)
        ]
    );
    // The running try lost its claim: its worker's heartbeat is told so.
    let lost = store
        .heartbeat(std::slice::from_ref(&claimed.claim_id), fixture::at(100))
        .await
        .unwrap();
    assert_eq!(lost, vec![claimed.claim_id]);

    let run2 = world::run(store, "etl", "r2", 5).await;
    world::finish(store, &run2, "a", TaskState::Success).await;
    let (status, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r2?update_mask=state",
            Some(json!({"state": "success", "note": "ignored"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["note"].is_null());
    assert!(states(&server, "r2")
        .await
        .iter()
        .all(|(_, s)| *s == TaskState::Success));
    let (_, body) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/r2",
            Some(json!({"note": "looked"})),
        )
        .await;
    assert_eq!(body["note"], "looked");
    assert_eq!(body["state"], "success");
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::PATCH,
            "/api/v2/dags/etl/dagRuns/nope",
            Some(json!({"state": "failed"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clearing_a_run_dry_run_changes_nothing_and_the_real_one_resets_states() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.as_ref();
    let run = world::run(store, "etl", "r1", 0).await;
    world::finish(store, &run, "a", TaskState::Success).await;
    world::finish(store, &run, "b", TaskState::Failed).await;

    let (status, body) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns/r1/clear",
            Some(json!({"dry_run": true, "only_failed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["task_instances"][0]["task_id"], "b");
    assert_eq!(states(&server, "r1").await[1].1, TaskState::Failed);

    let (status, body) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns/r1/clear",
            Some(json!({"dry_run": false, "only_failed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dag_run_id"], "r1");
    let now = states(&server, "r1").await;
    assert_eq!(now[0].1, TaskState::Success);
    assert_eq!(now[1].1, TaskState::None);
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns/nope/clear",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::POST,
            "/api/v2/dags/etl/dagRuns/r1/clear",
            Some(json!({"dry_run": "no"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn deleting_a_run() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    world::run(server.store.as_ref(), "etl", "r1", 0).await;
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::DELETE,
            "/api/v2/dags/etl/dagRuns/r1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(server.store.get_dag_run("etl", "r1").await.is_err());
    let (status, _) = server
        .call(
            Some(Role::User),
            Method::DELETE,
            "/api/v2/dags/etl/dagRuns/r1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn waiting_streams_states_until_the_run_ends_with_results() {
    let server = Server::start().await;
    world::publish(server.store.as_ref()).await;
    let store = server.store.clone();
    let run = world::run(store.as_ref(), "solo", "s1", 0).await;
    let response = server
        .client
        .get(format!(
            "{}/api/v2/dags/solo/dagRuns/s1/wait?interval=0.05&result=a",
            server.url
        ))
        .bearer_auth(server.token(Role::Viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let claimed = world::claim(store.as_ref(), &run, "a").await;
    let mut report = fixture::report(&claimed, TaskState::Success);
    report.xcom = Some(json!({"rows": 3}));
    fixture::finish(store.as_ref(), report).await;
    store
        .force_dag_run_state(run.id, DagRunState::Success, chrono::Utc::now())
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["state"], "queued");
    let last = lines.last().unwrap();
    assert_eq!(last["state"], "success");
    assert_eq!(last["results"], json!({"a": {"rows": 3}}));

    let (status, _) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/solo/dagRuns/nope/wait?interval=1",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/dags/solo/dagRuns/s1/wait?interval=0")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "interval"]));
}

#[tokio::test]
async fn a_conf_that_does_not_fit_the_params_is_refused_with_the_reason() {
    let server = Server::start().await;
    let mut dag = fixture::dag("with_params", updraft_model::Schedule::None, &["a"]);
    let params = json!({
        "count": {"type": "integer", "default": 2, "minimum": 1, "description": "how many"},
        "target": {"type": "string", "enum": ["dev", "prod"]},
        "table": "users",
    });
    dag.params = params.as_object().cloned().unwrap_or_default();
    fixture::sync(server.store.as_ref(), vec![fixture::upsert(dag, "h1")]).await;
    let trigger = |conf: serde_json::Value| {
        let server = &server;
        async move {
            server
                .call(
                    Some(Role::User),
                    Method::POST,
                    "/api/v2/dags/with_params/dagRuns",
                    Some(json!({ "conf": conf })),
                )
                .await
        }
    };
    let refused = [
        (
            json!({}),
            "Invalid input for param target: No value passed and Param has no default value",
        ),
        (
            json!({"target": "test"}),
            "Invalid input for param target: \"test\" is not one of [\"dev\", \"prod\"]",
        ),
        (
            json!({"target": "dev", "count": 0}),
            "Invalid input for param count: 0 is less than the minimum of 1",
        ),
        (
            json!({"target": "dev", "count": "2"}),
            "Invalid input for param count: \"2\" is not of type integer",
        ),
    ];
    for (conf, detail) in refused {
        let (status, body) = trigger(conf.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{conf}: {body}");
        assert_eq!(body["detail"], detail, "{conf}");
    }
    let (status, run) = trigger(json!({"target": "prod", "extra": [1]})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["conf"], json!({"target": "prod", "extra": [1]}));

    let (status, details) = server
        .get(Role::Viewer, "/api/v2/dags/with_params/details")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(details["params"]["count"]["value"], 2);
    assert_eq!(details["params"]["count"]["description"], "how many");
    assert_eq!(
        details["params"]["count"]["schema"],
        json!({"type": "integer", "minimum": 1.0})
    );
    assert_eq!(details["params"]["table"]["value"], "users");
    assert_eq!(
        details["params"]["target"]["schema"]["enum"],
        json!(["dev", "prod"])
    );
}

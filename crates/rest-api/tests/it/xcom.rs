//! `/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries`.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{create, new_run, publish, task};

use crate::fixture::Server;

const ENTRIES: &str = "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/xcomEntries";

async fn world() -> Server {
    let server = Server::start().await;
    let store = &*server.store;
    publish(store, &["etl", "other"]).await;
    create(store, new_run("etl", "r1", vec![task("a")])).await;
    create(store, new_run("other", "r9", vec![task("a")])).await;
    server
}

async fn post(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Some(Role::Op), Method::POST, path, Some(body))
        .await
}

#[tokio::test]
async fn an_entry_is_created_read_updated_and_deleted() {
    let server = world().await;
    let (status, body) = post(&server, ENTRIES, json!({"key": "rows", "value": {"n": 3}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], "rows");
    assert_eq!(body["value"], json!({"n": 3}));
    assert_eq!(body["map_index"], -1);
    assert_eq!(body["dag_id"], "etl");
    assert_eq!(body["run_id"], "r1");
    assert_eq!(body["task_id"], "a");
    assert_eq!(body["dag_display_name"], "etl");
    assert_eq!(body["task_display_name"], "a");
    assert_eq!(body["logical_date"], "2024-01-01T00:00:00Z");
    assert_eq!(body["run_after"], "2024-01-01T00:00:00Z");
    assert!(body["timestamp"].is_string());

    let (status, body) = server.get(Role::Viewer, &format!("{ENTRIES}/rows")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"], json!({"n": 3}));
    let (_, body) = server
        .get(Role::Viewer, &format!("{ENTRIES}/rows?stringify=true"))
        .await;
    assert_eq!(body["value"], json!("{\"n\":3}"));

    let (status, body) = post(&server, ENTRIES, json!({"key": "rows", "value": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            &format!("{ENTRIES}/rows"),
            Some(json!({"value": [1, 2]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], json!([1, 2]));
    assert_eq!(
        server.get(Role::Viewer, &format!("{ENTRIES}/rows")).await.1["value"],
        json!([1, 2])
    );

    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::DELETE,
            &format!("{ENTRIES}/rows"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(Role::Viewer, &format!("{ENTRIES}/rows")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::DELETE,
            &format!("{ENTRIES}/rows"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn entries_are_listed_with_wildcards_filters_and_paging() {
    let server = world().await;
    for (path, key, map_index) in [
        (ENTRIES, "k1", -1),
        (ENTRIES, "k2", -1),
        (
            "/api/v2/dags/other/dagRuns/r9/taskInstances/a/xcomEntries",
            "k1",
            -1,
        ),
    ] {
        let (status, body) = post(
            &server,
            path,
            json!({"key": key, "value": 1, "map_index": map_index}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = server.get(Role::Viewer, ENTRIES).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total_entries"], 2);
    assert!(
        body["xcom_entries"][0].get("value").is_none(),
        "lists leave values out"
    );
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries?xcom_key=k1",
        )
        .await;
    assert_eq!(body["total_entries"], 2);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries?xcom_key=k1&map_index=0",
        )
        .await;
    assert_eq!(body["total_entries"], 0);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/other/dagRuns/~/taskInstances/a/xcomEntries?map_index=-1",
        )
        .await;
    assert_eq!(body["total_entries"], 1);
    assert_eq!(body["xcom_entries"][0]["dag_id"], "other");
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries?limit=1&offset=2",
        )
        .await;
    assert_eq!(body["total_entries"], 3);
    assert_eq!(body["xcom_entries"].as_array().expect("entries").len(), 1);
}

#[tokio::test]
async fn refused_xcom_writes_change_nothing() {
    let server = world().await;
    let (status, body) = post(&server, ENTRIES, json!({"value": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body"]));
    assert!(body["detail"][0]["msg"]
        .as_str()
        .expect("msg")
        .contains("key"));
    let (status, body) = post(
        &server,
        ENTRIES,
        json!({"key": "k", "value": 1, "map_index": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "map_index"]));
    let (status, _) = post(
        &server,
        "/api/v2/dags/etl/dagRuns/nope/taskInstances/a/xcomEntries",
        json!({"key": "k", "value": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &server,
        "/api/v2/dags/etl/dagRuns/r1/taskInstances/zzz/xcomEntries",
        json!({"key": "k", "value": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(
        &server,
        "/api/v2/dags/~/dagRuns/r1/taskInstances/a/xcomEntries",
        json!({"key": "k", "value": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::PATCH,
            &format!("{ENTRIES}/missing"),
            Some(json!({"value": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            ENTRIES,
            Some(json!({"key": "k", "value": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries",
        )
        .await;
    assert_eq!(body["total_entries"], 0);
}

//! `/api/v2/eventLogs` and the audit rows that API changes write.

use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{create, new_run, publish, task};
use updraft_store::NewEventLog;

use crate::fixture::Server;

async fn add(server: &Server, minute: u32, event: &str, owner: &str, dag_id: Option<&str>) -> i64 {
    server
        .store
        .add_event_log(NewEventLog {
            when: Utc.with_ymd_and_hms(2024, 1, 1, 0, minute, 0).unwrap(),
            event: event.into(),
            owner: Some(owner.into()),
            dag_id: dag_id.map(str::to_string),
            ..NewEventLog::default()
        })
        .await
        .expect("add event")
}

fn events(body: &Value) -> Vec<String> {
    body["event_logs"]
        .as_array()
        .expect("event_logs")
        .iter()
        .map(|e| e["event"].as_str().expect("event").to_string())
        .collect()
}

#[tokio::test]
async fn event_logs_are_filtered_sorted_and_paged() {
    let server = Server::start().await;
    let first = add(&server, 1, "trigger_dag_run", "alice", Some("etl")).await;
    add(&server, 2, "patch_dag", "bob", Some("etl")).await;
    add(&server, 3, "delete_pool", "alice", None).await;

    let (status, body) = server
        .get(Role::Viewer, &format!("/api/v2/eventLogs/{first}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"event_log_id": first, "when": "2024-01-01T00:01:00Z", "dag_id": "etl",
            "task_id": null, "run_id": null, "map_index": null, "try_number": null,
            "event": "trigger_dag_run", "logical_date": null, "owner": "alice", "extra": null,
            "dag_display_name": "etl", "task_display_name": null})
    );

    let (_, body) = server.get(Role::Viewer, "/api/v2/eventLogs").await;
    assert_eq!(body["total_entries"], 3);
    assert_eq!(
        events(&body),
        ["trigger_dag_run", "patch_dag", "delete_pool"]
    );
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/eventLogs?owner=alice&order_by=-when")
        .await;
    assert_eq!(events(&body), ["delete_pool", "trigger_dag_run"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/eventLogs?dag_id=etl&limit=1&offset=1",
        )
        .await;
    assert_eq!(
        (events(&body), body["total_entries"].clone()),
        (vec!["patch_dag".to_string()], json!(2))
    );
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/eventLogs?excluded_events=patch_dag&excluded_events=delete_pool",
        )
        .await;
    assert_eq!(events(&body), ["trigger_dag_run"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/eventLogs?included_events=patch_dag,delete_pool&order_by=event",
        )
        .await;
    assert_eq!(events(&body), ["delete_pool", "patch_dag"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/eventLogs?after=2024-01-01T00:01:00Z&before=2024-01-01T00:03:00Z",
        )
        .await;
    assert_eq!(events(&body), ["patch_dag"]);

    let (status, _) = server.get(Role::Viewer, "/api/v2/eventLogs/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.get(Role::Viewer, "/api/v2/eventLogs/first").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/eventLogs?map_index=x")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "map_index"]));
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/eventLogs?order_by=nope")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_changes_write_audit_rows_with_secrets_masked() {
    let server = Server::start().await;
    let store = &*server.store;
    publish(store, &["etl"]).await;
    create(store, new_run("etl", "r1", vec![task("a")])).await;

    let (status, body) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/dags/etl/dagRuns/r1/taskInstances/a/xcomEntries",
            Some(json!({"key": "api_token", "value": "s3cr3t-value"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = server
        .call(
            Some(Role::Admin),
            Method::POST,
            "/api/v2/pools",
            Some(json!({"name": "etl", "slots": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Refused and read-only requests write nothing.
    server
        .call(
            Some(Role::Op),
            Method::DELETE,
            "/api/v2/pools/nowhere",
            None,
        )
        .await;
    server.get(Role::Op, "/api/v2/pools").await;

    let (_, body) = server.get(Role::Viewer, "/api/v2/eventLogs").await;
    assert_eq!(body["total_entries"], 2, "{body}");
    let xcom = &body["event_logs"][0];
    assert_eq!(xcom["event"], "create_xcom_entry");
    assert_eq!(xcom["owner"], "op");
    assert_eq!(xcom["dag_id"], "etl");
    assert_eq!(xcom["run_id"], "r1");
    assert_eq!(xcom["task_id"], "a");
    assert_eq!(xcom["logical_date"], "2024-01-01T00:00:00Z");
    let extra = xcom["extra"].as_str().expect("extra");
    assert!(!extra.contains("s3cr3t-value"), "{extra}");
    let extra: Value = serde_json::from_str(extra).expect("extra is JSON");
    assert_eq!(extra, json!({"key": "api_token", "value": "***"}));
    let pool = &body["event_logs"][1];
    assert_eq!(pool["event"], "post_pool");
    assert_eq!(pool["owner"], "admin");
    assert_eq!(
        serde_json::from_str::<Value>(pool["extra"].as_str().expect("extra")).expect("JSON"),
        json!({"name": "etl", "slots": 2})
    );
}

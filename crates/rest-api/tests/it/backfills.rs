//! `/api/v2/backfills`: a dry run lists the dates and creates nothing; create, list, get,
//! pause, unpause and cancel; bad requests answer clearly.

use reqwest::{Method, StatusCode};
use serde_json::json;
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{at, hourly, sync, upsert};

use crate::fixture::Server;

fn body(from: i64, to: i64) -> serde_json::Value {
    json!({"dag_id": "h", "from_date": at(from), "to_date": at(to), "max_active_runs": 2,
           "dag_run_conf": {"k": 1}})
}

#[tokio::test]
async fn a_backfill_is_dry_run_created_listed_paused_and_cancelled() {
    let server = Server::start().await;
    sync(&*server.store, vec![upsert(hourly("h"), "h1")]).await;

    let (status, dry) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/backfills/dry_run",
            Some(body(0, 120)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(
        dry,
        json!({"backfills": [{"logical_date": at(0)}, {"logical_date": at(60)},
                             {"logical_date": at(120)}], "total_entries": 3})
    );
    let (_, listed) = server.get(Role::Viewer, "/api/v2/backfills").await;
    assert_eq!(listed, json!({"backfills": [], "total_entries": 0}));

    let (status, created) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/backfills",
            Some(body(0, 120)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["dag_id"], "h");
    assert_eq!(created["max_active_runs"], 2);
    assert_eq!(created["reprocess_behavior"], "none");
    assert_eq!(created["dag_run_conf"], json!({"k": 1}));
    assert_eq!(created["is_paused"], false);
    assert!(created["completed_at"].is_null());
    let id = created["id"].as_i64().expect("id");
    let (status, got) = server
        .get(Role::Viewer, &format!("/api/v2/backfills/{id}"))
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &created));
    let (_, listed) = server.get(Role::Viewer, "/api/v2/backfills?dag_id=h").await;
    assert_eq!(listed["total_entries"], 1);

    // A second one for the same DAG waits for the first.
    let (status, again) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/backfills",
            Some(body(0, 60)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, paused) = server
        .call(
            Some(Role::Op),
            Method::PUT,
            &format!("/api/v2/backfills/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(
        (status, &paused["is_paused"]),
        (StatusCode::OK, &json!(true))
    );
    let (_, unpaused) = server
        .call(
            Some(Role::Op),
            Method::PUT,
            &format!("/api/v2/backfills/{id}/unpause"),
            None,
        )
        .await;
    assert_eq!(unpaused["is_paused"], false);
    let (status, cancelled) = server
        .call(
            Some(Role::Op),
            Method::PUT,
            &format!("/api/v2/backfills/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!cancelled["completed_at"].is_null());
    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::PUT,
            &format!("/api/v2/backfills/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // A viewer may look but not create.
    let (status, _) = server
        .call(
            Some(Role::Viewer),
            Method::POST,
            "/api/v2/backfills",
            Some(body(0, 60)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_backfill_requests_are_refused() {
    let server = Server::start().await;
    sync(&*server.store, vec![upsert(hourly("h"), "h1")]).await;
    let (status, _) = server.get(Role::Viewer, "/api/v2/backfills/99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/backfills",
            Some(body(120, 0)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer.to_string().contains("is after"), "{answer}");
    let mut unknown = body(0, 60);
    unknown["dag_id"] = json!("nope");
    let (status, _) = server
        .call(
            Some(Role::Op),
            Method::POST,
            "/api/v2/backfills",
            Some(unknown),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut bad = body(0, 60);
    bad["reprocess_behavior"] = json!("sometimes");
    let (status, _) = server
        .call(Some(Role::Op), Method::POST, "/api/v2/backfills", Some(bad))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, listed) = server.get(Role::Viewer, "/api/v2/backfills").await;
    assert_eq!(listed["total_entries"], 0);
}

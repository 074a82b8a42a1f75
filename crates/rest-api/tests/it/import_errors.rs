//! `/api/v2/importErrors`.

use reqwest::StatusCode;
use serde_json::json;
use updraft_rest_api::auth::Role;
use updraft_store::conformance::fixture::{at, scan};
use updraft_store::ImportErrorRecord;

use crate::fixture::Server;

#[tokio::test]
async fn import_errors_are_listed_sorted_paged_and_read_one_by_one() {
    let server = Server::start().await;
    let mut sync = scan(Vec::new());
    sync.now = at(5);
    sync.import_errors = ["/dags/b.yaml", "/dags/a.yaml"]
        .iter()
        .map(|f| ImportErrorRecord {
            filename: f.to_string(),
            error: format!("{f}: line 3: unknown operator"),
        })
        .collect();
    server.store.sync_dags(sync).await.expect("sync");

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/importErrors?order_by=filename")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 2);
    let first = &body["import_errors"][0];
    let id = first["import_error_id"].as_i64().expect("id");
    assert_eq!(
        *first,
        json!({"import_error_id": id, "timestamp": "2024-01-01T00:05:00Z",
            "filename": "/dags/a.yaml", "bundle_name": null,
            "stack_trace": "/dags/a.yaml: line 3: unknown operator"})
    );
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/importErrors?order_by=-filename&limit=1&offset=1",
        )
        .await;
    assert_eq!(body["total_entries"], 2);
    assert_eq!(body["import_errors"][0]["filename"], "/dags/a.yaml");

    let (status, body) = server
        .get(Role::Viewer, &format!("/api/v2/importErrors/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["filename"], "/dags/a.yaml");
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/importErrors/424242")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.get(Role::Viewer, "/api/v2/importErrors/abc").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = server
        .get(Role::Viewer, "/api/v2/importErrors?order_by=size")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

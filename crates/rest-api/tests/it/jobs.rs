//! `/api/v2/jobs`.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use updraft_rest_api::auth::Role;
use updraft_store::{JobHeartbeat, JobKind};

use crate::fixture::Server;

async fn beat(server: &Server, id: &str, kind: JobKind, host: &str, ago: i64) {
    server
        .store
        .job_heartbeat(JobHeartbeat {
            id: id.into(),
            kind,
            hostname: host.into(),
            queues: Vec::new(),
            state: "running".into(),
            now: Utc::now() - Duration::seconds(ago),
        })
        .await
        .expect("heartbeat");
}

fn types(body: &Value) -> Vec<String> {
    body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_type"].as_str().expect("type").to_string())
        .collect()
}

#[tokio::test]
async fn jobs_are_filtered_by_type_host_and_liveness_and_paged() {
    let server = Server::start().await;
    beat(&server, "h1:1:0", JobKind::Scheduler, "h1", 0).await;
    beat(&server, "h2:2:0", JobKind::Worker, "h2", 0).await;
    beat(&server, "h1:3:0", JobKind::ApiServer, "h1", 3600).await;

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/jobs?job_type=SchedulerJob")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_entries"], 1);
    let job = &body["jobs"][0];
    for (field, value) in [
        ("job_type", json!("SchedulerJob")),
        ("state", json!("running")),
        ("hostname", json!("h1")),
        ("end_date", Value::Null),
        ("dag_id", Value::Null),
        ("executor_class", Value::Null),
        ("unixname", Value::Null),
        ("dag_display_name", Value::Null),
    ] {
        assert_eq!(job[field], value, "{field}");
    }
    assert!(
        job["id"].is_i64() && job["start_date"].is_string() && job["latest_heartbeat"].is_string()
    );

    let (_, body) = server
        .get(Role::Viewer, "/api/v2/jobs?order_by=job_type")
        .await;
    assert_eq!(types(&body), ["ApiServerJob", "SchedulerJob", "WorkerJob"]);
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/jobs?hostname=h1&order_by=-job_type")
        .await;
    assert_eq!(types(&body), ["SchedulerJob", "ApiServerJob"]);
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/jobs?is_alive=false")
        .await;
    assert_eq!(types(&body), ["ApiServerJob"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/jobs?is_alive=true&order_by=job_type&limit=1&offset=1",
        )
        .await;
    assert_eq!(
        (types(&body), body["total_entries"].clone()),
        (vec!["WorkerJob".to_string()], json!(2))
    );
    let (_, body) = server
        .get(Role::Viewer, "/api/v2/jobs?job_type=worker")
        .await;
    assert_eq!(types(&body), ["WorkerJob"]);
    let (_, body) = server
        .get(
            Role::Viewer,
            "/api/v2/jobs?end_date_gte=2020-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(body["total_entries"], 0);

    let (status, body) = server
        .get(Role::Viewer, "/api/v2/jobs?job_type=TriggererJob")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "job_type"]));
    let (status, body) = server
        .get(Role::Viewer, "/api/v2/jobs?is_alive=maybe")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "is_alive"]));
}

//! `/api/v2/monitor/health`: public, in Airflow's shape, from either source of heartbeats.

use std::sync::Arc;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use updraft_rest_api::openapi::openapi_document;
use updraft_rest_api::{HeartbeatSource, Heartbeats};
use updraft_store::{JobHeartbeat, JobKind};

use crate::fixture::Server;

async fn health(server: &Server) -> Value {
    let (status, body) = server
        .call(None, Method::GET, "/api/v2/monitor/health", None)
        .await;
    assert_eq!(status, StatusCode::OK, "public, no token");
    body
}

#[tokio::test]
async fn health_reads_scheduler_beats_from_the_job_table() {
    let server = Server::start().await;
    let body = health(&server).await;
    assert_eq!(body["metadatabase"], json!({"status": "healthy"}));
    assert_eq!(
        body["scheduler"],
        json!({"status": "unhealthy", "latest_scheduler_heartbeat": null})
    );
    assert_eq!(
        body["triggerer"],
        json!({"status": null, "latest_triggerer_heartbeat": null})
    );

    server
        .store
        .job_heartbeat(JobHeartbeat {
            id: "h:1:0".into(),
            kind: JobKind::Scheduler,
            hostname: "h".into(),
            queues: Vec::new(),
            state: "running".into(),
            now: Utc::now(),
        })
        .await
        .expect("beat");
    let body = health(&server).await;
    assert_eq!(body["scheduler"]["status"], "healthy");
    assert!(body["scheduler"]["latest_scheduler_heartbeat"].is_string());
}

#[tokio::test]
async fn health_reads_in_process_beats_in_standalone() {
    let beats = Arc::new(Heartbeats::default());
    let source = beats.clone();
    let server =
        Server::start_with(move |c| c.health.heartbeats = HeartbeatSource::InProcess(source)).await;
    let body = health(&server).await;
    assert_eq!(body["scheduler"]["status"], "unhealthy");
    assert_eq!(body["dag_processor"]["status"], "unhealthy");
    Heartbeats::beat(&beats.scheduler);
    Heartbeats::beat(&beats.dag_processor);
    let body = health(&server).await;
    assert_eq!(body["scheduler"]["status"], "healthy");
    assert_eq!(body["dag_processor"]["status"], "healthy");
    assert!(body["dag_processor"]["latest_dag_processor_heartbeat"].is_string());
}

#[test]
fn health_is_in_the_openapi_document_without_security() {
    let document = serde_json::to_value(openapi_document()).expect("document");
    let operation = &document["paths"]["/api/v2/monitor/health"]["get"];
    assert_eq!(operation["operationId"], "get_health");
    assert_eq!(operation["security"], json!([{}]));
}

//! The metrics port of the `scheduler` role: `/health` by its heartbeat, and `/metrics`
//! answering 404 in a process whose metrics are off (this test binary installs none).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use updraft_metrics::http::{server, SchedulerHealth};

#[tokio::test]
async fn health_follows_the_heartbeat_and_metrics_off_answer_404() {
    let heartbeat = Arc::new(AtomicI64::new(0));
    let router = server(Some(SchedulerHealth {
        heartbeat: heartbeat.clone(),
        threshold: Duration::from_secs(30),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let health = format!("http://{address}/health");

    let never = client.get(&health).send().await.unwrap();
    assert_eq!(never.status(), 503);
    let body: serde_json::Value = never.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["latest_scheduler_heartbeat"], serde_json::Value::Null);

    let stale = chrono::Utc::now() - chrono::Duration::seconds(60);
    heartbeat.store(stale.timestamp_micros(), Ordering::Relaxed);
    assert_eq!(client.get(&health).send().await.unwrap().status(), 503);

    heartbeat.store(chrono::Utc::now().timestamp_micros(), Ordering::Relaxed);
    let fresh = client.get(&health).send().await.unwrap();
    assert_eq!(fresh.status(), 200);
    let body: serde_json::Value = fresh.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(body["latest_scheduler_heartbeat"].is_string(), "{body}");

    let metrics = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 404);
    assert!(metrics.text().await.unwrap().contains("metrics.enabled"));
}

#[tokio::test]
async fn a_worker_port_has_no_health() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, server(None)).await });
    let answer = reqwest::get(format!("http://{address}/health"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
}

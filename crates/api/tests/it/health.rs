//! `GET /api/v2/monitor/health`: the database, and the newest heartbeat of a scheduler (or
//! `standalone`) judged against the server's threshold.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use updraft_api::HealthOptions;
use updraft_store::{JobHeartbeat, JobKind, Store};

use crate::fixture::{now_micros, Answer, Server};

async fn health(server: &Server) -> Value {
    let answer = Answer::of(reqwest::Client::new().get(server.health_url())).await;
    // Always 200, as Airflow: the status fields tell.
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.json
}

async fn beat(store: &dyn Store, id: &str, kind: JobKind, now: DateTime<Utc>) {
    store
        .job_heartbeat(JobHeartbeat {
            id: id.to_string(),
            kind,
            hostname: "h".into(),
            queues: Vec::new(),
            state: "running".into(),
            now,
        })
        .await
        .expect("job_heartbeat");
}

fn latest(health: &Value) -> Option<DateTime<Utc>> {
    let latest = &health["scheduler"]["latest_scheduler_heartbeat"];
    if latest.is_null() {
        return None;
    }
    Some(
        serde_json::from_value(latest.clone())
            .unwrap_or_else(|e| panic!("{latest} is no instant: {e}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_database_and_the_newest_scheduler_heartbeat() {
    let server = Server::start().await;
    let store = server.dyn_store();

    let without = health(&server).await;
    assert_eq!(without["metadatabase"]["status"], "healthy", "{without:#}");
    assert_eq!(without["scheduler"]["status"], "unhealthy", "{without:#}");
    assert_eq!(latest(&without), None);
    for component in ["triggerer", "dag_processor"] {
        assert!(
            without[component]["status"].is_null(),
            "{component}: {without:#}"
        );
    }

    // A worker's or an API server's beat is no scheduler's.
    beat(store, "w1", JobKind::Worker, now_micros()).await;
    beat(store, "api1", JobKind::ApiServer, now_micros()).await;
    assert_eq!(health(&server).await["scheduler"]["status"], "unhealthy");

    let at = now_micros();
    beat(store, "s1", JobKind::Scheduler, at).await;
    let schedulers = store
        .list_jobs(Some(JobKind::Scheduler), at - TimeDelta::seconds(1))
        .await
        .expect("list_jobs");
    assert_eq!(schedulers.len(), 1, "{schedulers:?}");
    assert_eq!(schedulers[0].latest_heartbeat, at);
    let with = health(&server).await;
    assert_eq!(with["metadatabase"]["status"], "healthy", "{with:#}");
    assert_eq!(with["scheduler"]["status"], "healthy", "{with:#}");
    assert_eq!(latest(&with), Some(at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_scheduler_heartbeat_is_unhealthy() {
    let server = Server::start().await;
    let store = server.dyn_store();
    // The default threshold is 30 s.
    let stale = now_micros() - TimeDelta::minutes(2);
    beat(store, "s1", JobKind::Scheduler, stale).await;
    let answer = health(&server).await;
    assert_eq!(answer["scheduler"]["status"], "unhealthy", "{answer:#}");
    assert_eq!(
        latest(&answer),
        Some(stale),
        "the stale beat is still reported"
    );

    // A standalone runs a scheduler too; its fresh beat is the newest.
    let fresh = now_micros();
    beat(store, "standalone", JobKind::Standalone, fresh).await;
    let answer = health(&server).await;
    assert_eq!(answer["scheduler"]["status"], "healthy", "{answer:#}");
    assert_eq!(latest(&answer), Some(fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_threshold_is_the_servers() {
    let server = Server::start_with(HealthOptions {
        scheduler_stale_after: Duration::from_secs(3600),
        ..HealthOptions::default()
    })
    .await;
    let ten_minutes_ago = now_micros() - TimeDelta::minutes(10);
    beat(
        server.dyn_store(),
        "s1",
        JobKind::Scheduler,
        ten_minutes_ago,
    )
    .await;
    let answer = health(&server).await;
    assert_eq!(answer["scheduler"]["status"], "healthy", "{answer:#}");
    assert_eq!(latest(&answer), Some(ten_minutes_ago));
}

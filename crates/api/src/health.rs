//! `GET /api/v2/monitor/health`, in Airflow 3's JSON shape, from the database: a ping and the
//! newest scheduler heartbeat. Always HTTP 200, as Airflow: the status fields tell.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use updraft_store::{JobKind, JobRecord, Result, StoreError};

use crate::server::Shared;

pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let limit = shared.health.check_timeout;
    let since = DateTime::<Utc>::UNIX_EPOCH;
    let (ping, schedulers, standalones) = tokio::join!(
        bounded(limit, shared.store.ping()),
        bounded(
            limit,
            shared.store.list_jobs(Some(JobKind::Scheduler), since)
        ),
        // `standalone` runs a scheduler too.
        bounded(
            limit,
            shared.store.list_jobs(Some(JobKind::Standalone), since)
        ),
    );
    let database = match ping {
        Ok(()) => "healthy",
        Err(e) => {
            tracing::warn!(error = %e, "health: the database does not answer");
            "unhealthy"
        }
    };
    let latest = newest_heartbeat([schedulers, standalones]);
    let stale_after = chrono::TimeDelta::from_std(shared.health.scheduler_stale_after)
        .unwrap_or(chrono::TimeDelta::MAX);
    let scheduler = match latest {
        Some(at) if Utc::now() - at <= stale_after => "healthy",
        _ => "unhealthy",
    };
    Json(json!({
        "metadatabase": {"status": database},
        "scheduler": {"status": scheduler, "latest_scheduler_heartbeat": latest},
        "triggerer": {"status": null, "latest_triggerer_heartbeat": null},
        "dag_processor": {"status": null, "latest_dag_processor_heartbeat": null},
    }))
}

async fn bounded<T>(limit: Duration, check: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or_else(|_| Err(StoreError::Database(format!("no answer within {limit:?}"))))
}

fn newest_heartbeat<const N: usize>(lists: [Result<Vec<JobRecord>>; N]) -> Option<DateTime<Utc>> {
    lists
        .into_iter()
        .filter_map(|list| match list {
            Ok(jobs) => Some(jobs),
            Err(e) => {
                tracing::warn!(error = %e, "health: cannot read scheduler heartbeats");
                None
            }
        })
        .flatten()
        .map(|job| job.latest_heartbeat)
        .max()
}

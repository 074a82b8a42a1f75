//! `GET /api/v2/monitor/health`, in Airflow's JSON shape.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use updraft_store::Store;

/// The heartbeats of this process's components: the REST API's type, so that its
/// `HeartbeatSource::InProcess` reads the same beats once it serves the health endpoint.
pub use updraft_rest_api::Heartbeats;

#[derive(Clone)]
pub struct HealthState {
    pub store: Arc<dyn Store>,
    pub heartbeats: Arc<Heartbeats>,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/api/v2/monitor/health", get(health))
        .with_state(state)
}

/// A component is unhealthy when its heartbeat is older than this: above the DAG folder's
/// default rescan interval (30 s), the slowest heartbeat.
const STALE_AFTER_SECS: i64 = 60;

async fn health(State(state): State<HealthState>) -> Json<Value> {
    let db = match state.store.ping().await {
        Ok(()) => "healthy",
        Err(_) => "unhealthy",
    };
    let component = |slot: &AtomicI64| {
        let micros = slot.load(Ordering::Relaxed);
        let at = (micros > 0)
            .then(|| DateTime::from_timestamp_micros(micros))
            .flatten();
        let healthy = at.is_some_and(|t| (Utc::now() - t).num_seconds() < STALE_AFTER_SECS);
        (if healthy { "healthy" } else { "unhealthy" }, at)
    };
    let (scheduler, scheduler_at) = component(&state.heartbeats.scheduler);
    let (processor, processor_at) = component(&state.heartbeats.dag_processor);
    Json(json!({
        "metadatabase": {"status": db},
        "scheduler": {"status": scheduler, "latest_scheduler_heartbeat": scheduler_at},
        "triggerer": {"status": null, "latest_triggerer_heartbeat": null},
        "dag_processor": {"status": processor, "latest_dag_processor_heartbeat": processor_at},
    }))
}

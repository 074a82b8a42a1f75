//! `GET /monitor/health` (public), in Airflow 3's shape: the database and the newest
//! scheduler and DAG-processor heartbeats. Always 200, as Airflow: the status fields tell.
//!
//! Where heartbeats come from depends on the process ([`HeartbeatSource`]): `standalone`
//! runs its scheduler and DAG processor in-process and knows their beats; an `api-server`
//! reads the job table, where the schedulers (and standalones) of the cluster beat.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_store::{JobKind, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::Access;
use crate::RestState;

pub(crate) const PERMISSIONS: super::Permissions = &[("get_health", Access::Public)];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(get_health))
}

/// Heartbeats of the components running in this process (microseconds since the epoch; 0:
/// never beat).
#[derive(Debug, Default)]
pub struct Heartbeats {
    pub scheduler: Arc<AtomicI64>,
    pub dag_processor: Arc<AtomicI64>,
}

impl Heartbeats {
    /// Records that the component of `slot` is alive now.
    pub fn beat(slot: &AtomicI64) {
        slot.store(Utc::now().timestamp_micros(), Ordering::Relaxed);
    }

    fn read(slot: &AtomicI64) -> Option<DateTime<Utc>> {
        let micros = slot.load(Ordering::Relaxed);
        (micros > 0)
            .then(|| DateTime::from_timestamp_micros(micros))
            .flatten()
    }
}

/// Where the health endpoint learns that schedulers are alive.
#[derive(Debug, Clone, Default)]
pub enum HeartbeatSource {
    /// The job table: schedulers and standalones anywhere in the cluster (`api-server`).
    #[default]
    Jobs,
    /// This process's own components (`standalone`).
    InProcess(Arc<Heartbeats>),
}

/// How the health endpoint judges.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub heartbeats: HeartbeatSource,
    /// A component whose newest beat is older than this is unhealthy
    /// (`api.scheduler_health_threshold`).
    pub stale_after: Duration,
    /// The longest a check of the database may take before it counts as unhealthy.
    pub check_timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            heartbeats: HeartbeatSource::Jobs,
            stale_after: Duration::from_secs(30),
            check_timeout: Duration::from_secs(5),
        }
    }
}

/// Airflow's `BaseInfoResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BaseInfoResponse {
    pub status: Option<String>,
}

/// Airflow's `SchedulerInfoResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchedulerInfoResponse {
    pub status: Option<String>,
    pub latest_scheduler_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `TriggererInfoResponse` (updraft has no triggerer: both null).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggererInfoResponse {
    pub status: Option<String>,
    pub latest_triggerer_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `DagProcessorInfoResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagProcessorInfoResponse {
    pub status: Option<String>,
    pub latest_dag_processor_heartbeat: Option<DateTime<Utc>>,
}

/// Airflow's `HealthInfoResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthInfoResponse {
    pub metadatabase: BaseInfoResponse,
    pub scheduler: SchedulerInfoResponse,
    pub triggerer: TriggererInfoResponse,
    pub dag_processor: Option<DagProcessorInfoResponse>,
}

async fn bounded<T>(
    limit: Duration,
    check: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::database_failure(
                updraft_store::DatabaseFailure::Unreachable,
                format!("no answer within {limit:?}"),
            ))
        })
}

fn status(at: Option<DateTime<Utc>>, stale_after: Duration) -> &'static str {
    let stale_after = chrono::TimeDelta::from_std(stale_after).unwrap_or(chrono::TimeDelta::MAX);
    match at {
        Some(at) if Utc::now() - at <= stale_after => "healthy",
        _ => "unhealthy",
    }
}

/// The newest heartbeat of a scheduler (or standalone) in the job table.
async fn newest_scheduler_beat(state: &RestState, limit: Duration) -> Option<DateTime<Utc>> {
    let since = DateTime::<Utc>::UNIX_EPOCH;
    let store = state.store();
    let (schedulers, standalones) = tokio::join!(
        bounded(limit, store.list_jobs(Some(JobKind::Scheduler), since)),
        bounded(limit, store.list_jobs(Some(JobKind::Standalone), since)),
    );
    [schedulers, standalones]
        .into_iter()
        .filter_map(|jobs| match jobs {
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

/// Whether the database answers and the schedulers beat.
#[utoipa::path(get, path = "/monitor/health", operation_id = "get_health", tag = "Monitor",
    security(()),
    responses((status = 200, body = HealthInfoResponse)))]
async fn get_health(State(state): State<RestState>) -> Json<HealthInfoResponse> {
    let health = &state.config().health;
    let database = match bounded(health.check_timeout, state.store().ping()).await {
        Ok(()) => "healthy",
        Err(e) => {
            tracing::warn!(error = %e, "health: the database does not answer");
            "unhealthy"
        }
    };
    let (scheduler_at, dag_processor) = match &health.heartbeats {
        HeartbeatSource::Jobs => (
            newest_scheduler_beat(&state, health.check_timeout).await,
            // The cluster's DAG processors beat as part of their scheduler.
            DagProcessorInfoResponse {
                status: None,
                latest_dag_processor_heartbeat: None,
            },
        ),
        HeartbeatSource::InProcess(beats) => {
            let processor_at = Heartbeats::read(&beats.dag_processor);
            (
                Heartbeats::read(&beats.scheduler),
                DagProcessorInfoResponse {
                    status: Some(status(processor_at, health.stale_after).to_string()),
                    latest_dag_processor_heartbeat: processor_at,
                },
            )
        }
    };
    Json(HealthInfoResponse {
        metadatabase: BaseInfoResponse {
            status: Some(database.to_string()),
        },
        scheduler: SchedulerInfoResponse {
            status: Some(status(scheduler_at, health.stale_after).to_string()),
            latest_scheduler_heartbeat: scheduler_at,
        },
        triggerer: TriggererInfoResponse {
            status: None,
            latest_triggerer_heartbeat: None,
        },
        dag_processor: Some(dag_processor),
    })
}

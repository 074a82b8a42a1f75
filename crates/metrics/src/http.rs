//! HTTP: the `/metrics` handler (`standalone` and `api-server` mount it on their API port),
//! the middleware that times API requests by route template, and the small server of the
//! `scheduler` and `worker` roles (`/metrics`, and the scheduler's `/health`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`: this process's metrics in Prometheus's text format; 404 when metrics are
/// off.
pub async fn metrics() -> Response {
    let Some(metrics) = crate::get() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off in this process (metrics.enabled = false)\n",
        )
            .into_response();
    };
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Middleware timing every request by its route's template (`updraft_api_request_duration_seconds`).
/// Add it with `Router::layer` after the routes, so that the template is known; requests no
/// route matched count under `unmatched`, so a scan of random paths adds one series, not one
/// per path.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let Some(metrics) = crate::get() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.api_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// What the scheduler's `/health` looks at: when its last pass ended.
#[derive(Debug, Clone)]
pub struct SchedulerHealth {
    /// Microseconds since the epoch of the last completed pass; 0 before the first.
    pub heartbeat: Arc<AtomicI64>,
    /// Healthy while the last pass is at most this old.
    pub threshold: Duration,
}

impl SchedulerHealth {
    fn last_beat(&self) -> Option<DateTime<Utc>> {
        match self.heartbeat.load(Ordering::Relaxed) {
            0 => None,
            micros => DateTime::from_timestamp_micros(micros),
        }
    }
}

/// The router of a role's metrics port: `GET /metrics`, and `GET /health` when `health` is
/// given (the scheduler, as Airflow's scheduler health server: 200 while its heartbeat is
/// recent, 503 otherwise).
pub fn server(health: Option<SchedulerHealth>) -> Router {
    let router = Router::new().route("/metrics", get(metrics));
    match health {
        Some(health) => router.merge(
            Router::new()
                .route("/health", get(scheduler_health))
                .with_state(health),
        ),
        None => router,
    }
}

async fn scheduler_health(State(health): State<SchedulerHealth>) -> Response {
    let last = health.last_beat();
    let threshold = chrono::Duration::from_std(health.threshold).unwrap_or(chrono::Duration::MAX);
    let healthy = last.is_some_and(|beat| Utc::now() - beat <= threshold);
    let body = serde_json::json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "latest_scheduler_heartbeat": last.map(|beat| beat.to_rfc3339()),
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

//! This process's metrics (`updraft-metrics`) as the long-running roles use them: set up from
//! `[metrics]`, the gauges counted from the database every few seconds (task instances by
//! state, pool slots: never per task), and the metrics port of `scheduler` and `worker`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{info, warn};
use updraft_metrics::http::SchedulerHealth;
use updraft_metrics::{MetricsConfig, StatsdConfig};
use updraft_store::Store;

use crate::config::Config;

/// How often the gauges read from the database are counted again.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Sets up this process's metrics unless `metrics.enabled` is false; answers whether they
/// are on.
pub fn install(config: &Config) -> Result<bool> {
    let m = &config.metrics;
    if !m.enabled {
        return Ok(false);
    }
    let statsd = m.statsd_on.then(|| StatsdConfig {
        host: m.statsd_host.clone(),
        port: m.statsd_port,
        prefix: m.statsd_prefix.clone(),
    });
    updraft_metrics::install(&MetricsConfig { statsd }).context("metrics.statsd_*")?;
    Ok(true)
}

/// Counts the unfinished task instances by state and the pools' slots every few seconds,
/// for the processes that hold the database (`standalone`, `scheduler`).
pub fn count_gauges(store: Arc<dyn Store>) {
    let Some(metrics) = updraft_metrics::get() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            if let Err(e) = count_once(store.as_ref(), metrics).await {
                warn!(error = %e, "cannot count task instances and pool slots for the metrics");
            }
            tokio::time::sleep(GAUGE_INTERVAL).await;
        }
    });
}

async fn count_once(
    store: &dyn Store,
    metrics: &updraft_metrics::Metrics,
) -> Result<(), updraft_store::StoreError> {
    let usage = store.pool_usage().await?;
    let pools = store.list_pools().await?;
    let (mut scheduled, mut queued, mut running) = (0, 0, 0);
    for u in usage.values() {
        scheduled += u.scheduled;
        queued += u.queued;
        running += u.running;
    }
    metrics.task_instances(&[
        ("scheduled", scheduled),
        ("queued", queued),
        ("running", running),
    ]);
    let slots: Vec<(&str, i64, u32, u32)> = pools
        .iter()
        .map(|pool| {
            let u = usage.get(&pool.name).copied().unwrap_or_default();
            let open = i64::from(pool.slots) - i64::from(u.running) - i64::from(u.queued);
            (pool.name.as_str(), open, u.queued, u.running)
        })
        .collect();
    metrics.pools(&slots);
    Ok(())
}

/// Serves `/metrics` (and the scheduler's `/health`) on `metrics.host`:`metrics.port` until
/// `shutdown`; answers the line to print (`  metrics: http://…/metrics`), or an empty one
/// when no port is set or metrics are off.
pub async fn serve_port(
    config: &Config,
    health: Option<SchedulerHealth>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<String> {
    let m = &config.metrics;
    let Some(port) = m.port.filter(|_| m.enabled) else {
        return Ok(String::new());
    };
    let listener = tokio::net::TcpListener::bind((m.host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {}:{port} (metrics.port)", m.host))?;
    let address = listener.local_addr()?;
    let router = updraft_metrics::http::server(health);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = served {
            warn!(error = %e, "the metrics server stopped");
        }
    });
    info!(%address, "metrics server started");
    Ok(format!("  metrics:     http://{address}/metrics\n"))
}

//! updraft's metrics: every event (a scheduler loop, a try that ended, a run that finished, an
//! API request, …) is recorded in one place, into Prometheus families (`updraft_…`, served at
//! `/metrics`) and, when StatsD is on, under Airflow's StatsD names.
//!
//! The binary installs one [`Metrics`] per process ([`install`]); the crates that see the
//! events record through [`get`], which answers `None` when metrics are off (library tests,
//! `metrics.enabled = false`), so recording then costs one atomic load.

mod families;
mod histogram;
pub mod http;
mod recorder;
mod statsd;

use std::sync::OnceLock;

pub use families::{HISTOGRAMS, METRIC_NAMES};
pub use histogram::AtomicHistogram;
pub use recorder::{Metrics, TryEnd};

/// Where StatsD lines go, and under which prefix (`metrics.statsd_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsdConfig {
    pub host: String,
    pub port: u16,
    /// Airflow's `statsd_prefix`: every name starts with `<prefix>.`.
    pub prefix: String,
}

/// What a process's [`Metrics`] send besides the Prometheus families.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `None`: no StatsD.
    pub statsd: Option<StatsdConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The StatsD address does not resolve, or no UDP socket could be opened.
    #[error("cannot send StatsD metrics to {address}: {reason}")]
    Statsd { address: String, reason: String },
    /// [`install`] was called twice in one process.
    #[error("metrics are already set up in this process")]
    AlreadyInstalled,
    /// The registry could not be written as text.
    #[error("cannot encode the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Sets up this process's metrics; recorded events from then on are exported.
pub fn install(config: &MetricsConfig) -> Result<&'static Metrics, MetricsError> {
    let metrics = Metrics::new(config)?;
    INSTALLED
        .set(metrics)
        .map_err(|_| MetricsError::AlreadyInstalled)?;
    INSTALLED.get().ok_or(MetricsError::AlreadyInstalled)
}

/// This process's metrics, or `None` when they are off.
pub fn get() -> Option<&'static Metrics> {
    INSTALLED.get()
}

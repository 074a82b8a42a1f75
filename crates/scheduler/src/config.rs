//! How a scheduler is set up, and where it reads the time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use updraft_store::JobKind;

/// Where the scheduler reads the time; tests inject a fixed clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Task instances queued or running at once, across all DAGs (Airflow's `parallelism`).
    pub parallelism: u32,
    /// The safety-net sweep; events do the real work.
    pub sweep_interval: Duration,
    /// Only this run is scheduled (`dags test`); pause is ignored for it.
    pub only_run: Option<i64>,
    /// Unique per process; the owner recorded on the runs this scheduler evaluates and the id
    /// of its heartbeat.
    pub scheduler_id: String,
    pub hostname: String,
    /// What this process is, in the heartbeat table (`standalone` or `scheduler`).
    pub job_kind: JobKind,
    /// How long this scheduler's runs stay its own without a renewal (a full pass renews
    /// them); after that, another scheduler adopts them.
    pub run_lease: Duration,
    /// Workers' lease. After this scheduler could not reach the database, it expires no
    /// worker lease until this long has passed: workers could not renew theirs either.
    pub worker_lease: Duration,
    /// A mapped task expanding to more instances than this fails (Airflow's
    /// `core.max_map_length`).
    pub max_map_length: usize,
    /// Where the spans of the runs this scheduler ends go (off by default).
    pub traces: updraft_telemetry::Traces,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            parallelism: 32,
            sweep_interval: Duration::from_secs(2),
            only_run: None,
            scheduler_id: "scheduler".to_string(),
            hostname: "localhost".to_string(),
            job_kind: JobKind::Scheduler,
            run_lease: Duration::from_secs(10),
            worker_lease: Duration::from_secs(30),
            max_map_length: updraft_model::DEFAULT_MAX_MAP_LENGTH,
            traces: updraft_telemetry::Traces::off(),
        }
    }
}

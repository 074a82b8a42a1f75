//! The scheduler: creates DAG runs on time, moves task instances through their states in
//! dependency order, queues ready work within the concurrency limits, and fails the tries of
//! workers whose lease ran out. It reacts to events (a task finished, a run was triggered)
//! rather than rescanning; a periodic sweep is only the safety net.

mod asset_runs;
mod backfill;
mod callbacks;
mod config;
mod dag_cache;
mod deadlines;
#[cfg(test)]
mod dice;
mod evaluation;
mod external_marker;
mod external_wait;
mod graph;
mod kept_states;
mod leases;
mod ownership;
mod passes;
mod past;
mod paused;
mod plan;
mod queueing;
mod run_context;
mod run_loop;
mod run_timeout;
mod scheduled_runs;
mod signal;
mod traces;
mod trigger;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use updraft_store::{Store, StoreError};

pub use asset_runs::events_to_consume;
pub use backfill::{
    backfill_dates, plan_backfill, BackfillError, BackfillRequest,
    DEFAULT_BACKFILL_MAX_ACTIVE_RUNS, MAX_BACKFILL_DATES,
};
pub use config::{Clock, SchedulerConfig, SystemClock};
pub use dag_cache::DagCache;
pub use external_marker::{marked_clears, ClearedRun, MarkedClear, MarkerError};
pub use graph::DagGraph;
use ownership::Ownership;
pub use past::held_by_past;
pub use plan::{plan_run, plan_run_held, plan_run_mapped, MapInputs, RunPlan};
pub use signal::{FinishedTry, SchedulerSignal};
pub use trigger::{new_dag_run, TriggerRequest};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    dags: DagCache,
    signal: Arc<SchedulerSignal>,
    /// Woken when work was queued, so local workers claim it at once.
    work_queued: Arc<Notify>,
    paused: Mutex<HashMap<String, bool>>,
    /// When the last pass completed (microseconds since the epoch), for health checks.
    heartbeat: Arc<AtomicI64>,
    /// The task instances of running runs as this scheduler last saw them, so that a finished
    /// task costs an update here rather than a read of its whole run. Refreshed from the
    /// store on every full pass and whenever a run changed in a way not seen here; a stale
    /// entry can only cause a compare-and-set conflict, which reloads.
    run_tasks: Mutex<HashMap<i64, kept_states::KeptRun>>,
    /// The unfinished runs as the last pass that read them found them (and the runs it started
    /// since): a pass over tries that finished in kept runs needs nothing else from the store.
    run_records: Mutex<HashMap<i64, updraft_store::DagRun>>,
    /// `max_active_tasks` of the DAGs of the runs evaluated (the version each run is pinned to).
    dag_limits: Mutex<HashMap<String, u32>>,
    /// Per DAG, its tasks' `max_active_tis_per_dag` and `max_active_tis_per_dagrun` (only
    /// the tasks that have one), from the versions of the runs evaluated.
    task_limits: Mutex<HashMap<String, queueing::DagTaskLimits>>,
    /// A pass over tries that freed places failed before it could tell the other schedulers
    /// whether it left some free: the next pass tells them.
    announcement_owed: AtomicBool,
    /// Per DAG, its runs that waited for their past (`depends_on_past`) when last evaluated:
    /// a change in another run of the DAG evaluates them again.
    past_waiters: Mutex<HashMap<String, HashSet<i64>>>,
    /// Which unfinished runs this scheduler owns (evaluates), and which it saw owned by
    /// others, as of the last ownership refresh. A run in neither set is new: its appearance
    /// refreshes ownership, so a triggered run is adopted at once.
    ownership: Mutex<Ownership>,
    /// When a pass last failed (the database was out of reach), for lease expiry.
    last_failure: Mutex<Option<DateTime<Utc>>>,
    /// The occupancy as this scheduler's last queueing left it, less the places of the tries
    /// it heard end since: a pass over its own runs' finished tries queues within it instead
    /// of reading it (a round trip on the way from a task's end to the next one's start).
    /// The store counts again when it queues, so a count too low here (another scheduler
    /// queued since) costs a refused item, which drops it; every other pass reads it.
    occupancy: Mutex<Option<updraft_store::Occupancy>>,
}

/// What one pass found out about the future.
#[derive(Debug, Default)]
pub struct PassOutcome {
    /// The earliest instant something is due (a scheduled run, a retry).
    pub next_due: Option<DateTime<Utc>>,
    pub queued: usize,
    /// The pass left free places that tries of its runs freed and told the other schedulers
    /// ([`Store::announce_free_places`]).
    pub told_places_free: bool,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
        signal: Arc<SchedulerSignal>,
        work_queued: Arc<Notify>,
        heartbeat: Arc<AtomicI64>,
    ) -> Self {
        Scheduler {
            dags: DagCache::new(store.clone()),
            store,
            clock,
            config,
            signal,
            work_queued,
            paused: Mutex::new(HashMap::new()),
            heartbeat,
            run_tasks: Mutex::new(HashMap::new()),
            run_records: Mutex::new(HashMap::new()),
            dag_limits: Mutex::new(HashMap::new()),
            task_limits: Mutex::new(HashMap::new()),
            announcement_owed: AtomicBool::new(false),
            past_waiters: Mutex::new(HashMap::new()),
            ownership: Mutex::new(Ownership::default()),
            last_failure: Mutex::new(None),
            occupancy: Mutex::new(None),
        }
    }

    /// Gives up this scheduler's runs and heartbeat so that the others take over at once
    /// (a clean shutdown, e.g. a rolling restart).
    pub async fn hand_over(&self) -> Result<(), SchedulerError> {
        if self.config.only_run.is_some() {
            return Ok(());
        }
        self.store
            .release_owned_dag_runs(&self.config.scheduler_id)
            .await?;
        self.store.end_job(&self.config.scheduler_id).await?;
        Ok(())
    }

    pub fn dag_cache(&self) -> &DagCache {
        &self.dags
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

//! The worker: claims queued task instances, runs each as a process, renews its leases, and
//! reports finished tries in batches (one transaction for all the tries that finished since
//! the last report). It reaches the rest of the cluster through [`TaskExecution`]: the store
//! itself inside `standalone`, an API server over HTTP for a remote worker (which then also
//! ships its task logs and announces itself).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{info, warn};
use updraft_store::{ClaimRequest, ClaimedTask, StoreError, TaskExecution};
use updraft_template::Renderer;

mod dag_cache;
mod developer;
mod execute;
mod heartbeat;
mod notifications;
pub(crate) mod operator;
mod reporter;
mod sensor;
mod starting;
mod traces;

pub use developer::{ReadOnlyExecution, TaskTry, TestOutcome};
pub use reporter::{FinishedHook, Reported};

use crate::process::Reaper;

/// A long-polling claim that answers empty sooner than this did not wait for work.
const EMPTY_AT_ONCE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct LocalWorkerConfig {
    /// Unique per process: `hostname:pid:start-time` (the binary's `recovery::worker_id`).
    pub worker_id: String,
    pub hostname: String,
    pub concurrency: usize,
    /// `None` serves every queue.
    pub queues: Option<Vec<String>>,
    /// Only tasks of this run (`dags test`).
    pub only_run: Option<i64>,
    pub base_log_folder: PathBuf,
    pub heartbeat_interval: Duration,
    pub lease: Duration,
    pub kill_grace: Duration,
    /// See [`crate::process::TaskLaunch::direct_exec`].
    pub direct_exec: bool,
    /// On shutdown, let running tasks finish for up to this long before killing them (a
    /// drain, for rolling restarts); `None` kills them at once.
    pub drain_grace: Option<Duration>,
    /// Record this worker's heartbeat, queues and state (`worker list`).
    pub announce: bool,
    /// Names that mark a variable (or an extra key) as secret: their values are masked in
    /// task logs (`core.sensitive_var_conn_names` with Airflow's built-in list).
    pub sensitive_names: updraft_secrets::SensitiveNames,
    /// The interpreter of Python tasks that name none (`core.python`).
    pub python_interpreter: String,
    /// The extracted Python SDK; `None` in a binary built without it (Python tasks fail).
    pub python_sdk: Option<PathBuf>,
    /// Start Python tries of `core.python` through the SDK's fork server
    /// (`worker.python_fork_server`) rather than a new interpreter each.
    pub python_fork_server: bool,
    /// Tries claimed but not started yet, at most (`worker.max_starting`): see
    /// the reasons in `local/starting.rs`.
    pub max_starting: usize,
    /// Where the spans of the tries this worker runs go, and whether their processes get a
    /// `TRACEPARENT` (off by default).
    pub traces: updraft_telemetry::Traces,
}

pub struct LocalWorker {
    execution: Arc<dyn TaskExecution>,
    config: LocalWorkerConfig,
    renderer: Renderer,
    dags: dag_cache::DagCache,
    /// Woken by the scheduler when it queued work, by a finished task freeing a slot, and by
    /// a try that started freeing its start slot.
    work_queued: Arc<Notify>,
    start_slots: starting::StartSlots,
    on_finished: FinishedHook,
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Claims whose try ended but whose report is not committed yet: their leases are still
    /// renewed, or a scheduler would take a finished try for a lost one and run it again.
    unreported: Mutex<HashSet<String>>,
    /// Kills the task process groups if this process dies; `None` where none could be started.
    reaper: Option<Reaper>,
    /// `config.python_interpreter` as the program it ends up running, asked once.
    python_resolved: tokio::sync::OnceCell<String>,
    /// The fork server of that interpreter, made on the first Python try that uses it.
    fork_server: std::sync::OnceLock<Arc<crate::process::ForkServer>>,
    /// The DAG files of the Python tries run so far, one per pinned version.
    pinned_files: operator::PinnedFiles,
}

impl LocalWorker {
    pub fn new(
        execution: Arc<dyn TaskExecution>,
        config: LocalWorkerConfig,
        work_queued: Arc<Notify>,
        on_finished: FinishedHook,
        reaper: Option<Reaper>,
    ) -> Arc<Self> {
        let start_slots = starting::StartSlots::new(config.max_starting, work_queued.clone());
        Arc::new(LocalWorker {
            execution,
            config,
            renderer: Renderer::new(),
            dags: dag_cache::DagCache::default(),
            start_slots,
            work_queued,
            on_finished,
            running: Mutex::new(HashMap::new()),
            unreported: Mutex::new(HashSet::new()),
            reaper,
            python_resolved: tokio::sync::OnceCell::new(),
            fork_server: std::sync::OnceLock::new(),
            pinned_files: operator::PinnedFiles::default(),
        })
    }

    /// Claims and runs work until `shutdown`; then drains (lets running tasks finish within
    /// the drain grace) or cancels what still runs, and reports it.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (finished_tx, finished_rx) = mpsc::unbounded_channel();
        let reporter = tokio::spawn(self.clone().report_finished(finished_rx));
        let (stopped_tx, stopped_rx) = watch::channel(false);
        let heartbeat = tokio::spawn(self.clone().heartbeat_loop(stopped_rx.clone()));
        let announce = self
            .config
            .announce
            .then(|| tokio::spawn(self.clone().announce_loop(shutdown.clone(), stopped_rx)));
        let long_polls = self.execution.claims_wait();
        if let Some(metrics) = updraft_metrics::get() {
            metrics.executor_slots(self.config.concurrency);
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self
                .config
                .concurrency
                .saturating_sub(self.running_count())
                .min(self.start_slots.free());
            let mut claimed = 0;
            let mut failed = false;
            let claim_started = tokio::time::Instant::now();
            if free > 0 {
                // Never abandoned half-way, not even for a shutdown: the server may have
                // committed the claim already, and a dropped answer would leave its tasks
                // to wait for their lease. What it brings is run (and drained) like the rest.
                match self.claim(free).await {
                    Ok(tasks) => {
                        claimed = tasks.len();
                        for task in tasks {
                            self.start(task, finished_tx.clone());
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "claiming work failed");
                        failed = true;
                    }
                }
            }
            if claimed > 0 && claimed == free {
                continue;
            }
            // A long-polling claim already waited for work on the server, unless it came back
            // empty at once (a server shutting down does that): then wait here, not spin.
            let empty_at_once = free > 0 && claimed == 0 && claim_started.elapsed() < EMPTY_AT_ONCE;
            if long_polls && free > 0 && !failed && !empty_at_once {
                continue;
            }
            let wait = if failed || (long_polls && empty_at_once) {
                Duration::from_millis(500)
            } else {
                // The safety net for work queued by another process; in-process schedulers
                // wake us through `work_queued`.
                Duration::from_secs(5)
            };
            tokio::select! {
                _ = self.work_queued.notified(), if !failed => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.drain().await;
        drop(finished_tx);
        let _ = reporter.await;
        let _ = stopped_tx.send(true);
        heartbeat.abort();
        if let Some(announce) = announce {
            let _ = announce.await;
        }
    }

    /// Lets running tasks finish within the drain grace, then kills what is left (its tries
    /// end as infrastructure failures, retried elsewhere without using up their retries).
    async fn drain(&self) {
        if let Some(grace) = self.config.drain_grace {
            let running = self.running_count();
            if running > 0 {
                info!(running, grace = ?grace, "draining: waiting for running tasks to finish");
            }
            let deadline = tokio::time::Instant::now() + grace;
            while self.running_count() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.cancel_all();
        while self.running_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn running_count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    fn cancel_all(&self) {
        if let Ok(running) = self.running.lock() {
            for cancel in running.values() {
                let _ = cancel.send(true);
            }
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedTask>, StoreError> {
        let now = Utc::now();
        let lease =
            chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(30));
        self.execution
            .claim(ClaimRequest {
                worker_id: self.config.worker_id.clone(),
                hostname: self.config.hostname.clone(),
                queues: self.config.queues.clone(),
                dag_run_id: self.config.only_run,
                limit,
                now,
                lease_until: now + lease,
            })
            .await
    }
}

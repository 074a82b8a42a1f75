//! The worker: claims queued task instances, runs each as a process, renews its leases, and
//! reports finished tries in batches (one transaction for all the tries that finished since
//! the last report). It reaches the rest of the cluster through [`TaskExecution`]: the store
//! itself inside `standalone`, an API server over HTTP for a remote worker (which then also
//! ships its task logs and announces itself).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch, Notify};
use tracing::{debug, info, warn};
use updraft_model::{retry, Dag, Task, TaskState};
use updraft_store::{
    ClaimRequest, ClaimedTask, FinishReport, JobHeartbeat, JobKind, LogTail, StoreError,
    TaskExecution, TransitionResult,
};
use updraft_template::Renderer;

mod operator;

use crate::log_shipper::{LogShipper, MAX_TAIL};
use crate::process::{run_task_guarded, FailureReason, Reaper, TaskLaunch, TaskOutcome};

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
    /// See [`TaskLaunch::direct_exec`].
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
}

/// Called with the ids of the runs whose tasks just finished.
pub type FinishedHook = Arc<dyn Fn(Reported) + Send + Sync>;

/// What one group commit of finished tries changed.
#[derive(Debug, Default)]
pub struct Reported {
    /// The reports that were applied, with the id of their run.
    pub applied: Vec<(i64, FinishReport)>,
    /// Runs with a report that was refused (the try was no longer this worker's): their
    /// state is not what the report said.
    pub refused_runs: Vec<i64>,
}

pub struct LocalWorker {
    execution: Arc<dyn TaskExecution>,
    config: LocalWorkerConfig,
    renderer: Renderer,
    dags: Mutex<HashMap<(String, i64), Arc<Dag>>>,
    /// Woken by the scheduler when it queued work, and by a finished task freeing a slot.
    work_queued: Arc<Notify>,
    on_finished: FinishedHook,
    running: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Claims whose try ended but whose report is not committed yet: their leases are still
    /// renewed, or a scheduler would take a finished try for a lost one and run it again.
    unreported: Mutex<HashSet<String>>,
    /// Kills the task process groups if this process dies; `None` where none could be started.
    reaper: Option<Reaper>,
}

struct Finished {
    report: FinishReport,
    dag_run_id: i64,
}

/// The log tails one finish request carries at most: with JSON's escapes (up to six bytes
/// for one) well under what an API server accepts in a body.
const MAX_BATCH_LOG: usize = 2 * 1024 * 1024;

/// Splits reports into consecutive batches whose log tails stay within [`MAX_BATCH_LOG`].
fn batches_within_log_limit(reports: Vec<Finished>) -> Vec<Vec<Finished>> {
    let mut batches: Vec<Vec<Finished>> = Vec::new();
    let mut log_bytes = 0;
    for finished in reports {
        let size = finished
            .report
            .log_tail
            .as_ref()
            .map_or(0, |tail| tail.data.len());
        match batches.last_mut() {
            Some(batch) if log_bytes + size <= MAX_BATCH_LOG => {
                log_bytes += size;
                batch.push(finished);
            }
            _ => {
                log_bytes = size;
                batches.push(vec![finished]);
            }
        }
    }
    batches
}

impl LocalWorker {
    pub fn new(
        execution: Arc<dyn TaskExecution>,
        config: LocalWorkerConfig,
        work_queued: Arc<Notify>,
        on_finished: FinishedHook,
        reaper: Option<Reaper>,
    ) -> Arc<Self> {
        Arc::new(LocalWorker {
            execution,
            config,
            renderer: Renderer::new(),
            dags: Mutex::new(HashMap::new()),
            work_queued,
            on_finished,
            running: Mutex::new(HashMap::new()),
            unreported: Mutex::new(HashSet::new()),
            reaper,
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
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self.config.concurrency.saturating_sub(self.running_count());
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
            let empty_at_once = claimed == 0 && claim_started.elapsed() < EMPTY_AT_ONCE;
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

    /// Records this worker's heartbeat every heartbeat interval: `running`, then `draining`
    /// once shutdown began, and `stopped` when it is over.
    async fn announce_loop(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        mut stopped: watch::Receiver<bool>,
    ) {
        loop {
            let state = if *stopped.borrow() {
                "stopped"
            } else if *shutdown.borrow() {
                "draining"
            } else {
                "running"
            };
            let beat = JobHeartbeat {
                id: self.config.worker_id.clone(),
                kind: JobKind::Worker,
                hostname: self.config.hostname.clone(),
                queues: self.config.queues.clone().unwrap_or_default(),
                state: state.to_string(),
                now: Utc::now(),
            };
            if let Err(e) = self.execution.worker_heartbeat(beat).await {
                warn!(error = %e, "worker heartbeat failed");
            }
            if state == "stopped" {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.heartbeat_interval) => {}
                _ = shutdown.changed(), if !*shutdown.borrow() => {}
                _ = stopped.changed() => {}
            }
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

    fn start(self: &Arc<Self>, claimed: ClaimedTask, finished: mpsc::UnboundedSender<Finished>) {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        if let Ok(mut running) = self.running.lock() {
            running.insert(claimed.claim_id.clone(), cancel_tx);
        }
        let worker = self.clone();
        tokio::spawn(async move {
            let claim_id = claimed.claim_id.clone();
            let dag_run_id = claimed.ti.dag_run_id;
            let report = worker.execute(claimed, cancel_rx).await;
            if let Ok(mut unreported) = worker.unreported.lock() {
                unreported.insert(claim_id.clone());
            }
            if let Ok(mut running) = worker.running.lock() {
                running.remove(&claim_id);
            }
            let _ = finished.send(Finished { report, dag_run_id });
            worker.work_queued.notify_one();
        });
    }

    async fn execute(&self, claimed: ClaimedTask, cancel: watch::Receiver<bool>) -> FinishReport {
        let ti = &claimed.ti;
        let log_path = crate::process::log_path(
            &self.config.base_log_folder,
            &ti.dag_id,
            &ti.run_id,
            &ti.task_id,
            ti.try_number,
        );
        let report = |state: TaskState, next_retry_at, xcom| FinishReport {
            ti_id: ti.id,
            try_number: ti.try_number,
            claim_id: claimed.claim_id.clone(),
            state,
            end_date: Utc::now(),
            next_retry_at,
            xcom,
            infrastructure_failure: false,
            log_tail: None,
            effects: Default::default(),
        };
        let dag = match self.dag(&ti.dag_id, claimed.dag_run.dag_version).await {
            Ok(dag) => dag,
            Err(e) => {
                let mut r = report(TaskState::Failed, None, None);
                r.log_tail = self
                    .log_before_start(&log_path, &format!("cannot load the DAG definition: {e}"));
                if let StoreError::Database(_) | StoreError::Unavailable(_) = e {
                    // Transient: not the task's fault.
                    r.state = TaskState::UpForRetry;
                    r.next_retry_at = Some(Utc::now());
                    r.infrastructure_failure = true;
                }
                return r;
            }
        };
        let Some(task) = dag.task(&ti.task_id) else {
            return FinishReport {
                log_tail: self
                    .log_before_start(&log_path, "the task is not in this version of the DAG"),
                ..report(TaskState::Failed, None, None)
            };
        };
        let failed = |task: &Task| {
            let user_try = ti.try_number.saturating_sub(ti.infra_failures);
            let (state, at) = retry::after_failure(task, user_try, Utc::now());
            report(state, at, None)
        };
        let (launch, supervisor) = match self.prepare(&claimed, &dag, task, log_path.clone()).await
        {
            Ok(operator::Work::Process(launch)) => (*launch, None),
            Ok(operator::Work::Python(prepared)) => (prepared.launch, Some(prepared.supervisor)),
            Ok(operator::Work::Nothing) => return report(TaskState::Success, None, None),
            Err(message) => {
                return FinishReport {
                    log_tail: self.log_before_start(&log_path, &message),
                    ..failed(task)
                };
            }
        };
        debug!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, "task started");
        let (outcome, log_tail) = if self.execution.ships_logs() {
            self.run_shipping_logs(&claimed, launch, cancel, log_path.clone())
                .await
        } else {
            let outcome = run_task_guarded(launch, cancel, self.reaper.as_ref()).await;
            (outcome, None)
        };
        let python = supervisor.map(|s| s.finish());
        let mut finished = match (outcome, python) {
            // Killed or timed out: as any process, whatever the child said before.
            (outcome @ TaskOutcome::Failed { .. }, Some((None, _)))
            | (outcome, None)
            | (
                outcome @ TaskOutcome::Failed {
                    reason: FailureReason::Killed | FailureReason::TimedOut(_),
                },
                Some(_),
            ) => self.process_finish(&claimed, task, outcome),
            (_, Some((None, _))) => {
                write_log_line(
                    &log_path,
                    "the Python process exited without reporting how the task ended",
                );
                failed(task)
            }
            (_, Some((Some(finish), pushed))) => {
                let mut finished = match finish.state {
                    operator::FinishState::Success => {
                        let xcom = finish.return_value.filter(|_| task.do_xcom_push);
                        report(TaskState::Success, None, xcom)
                    }
                    operator::FinishState::Skipped => report(TaskState::Skipped, None, None),
                    operator::FinishState::Failed if finish.retry => failed(task),
                    // AirflowFailException: failed for good, whatever the retries left.
                    operator::FinishState::Failed => report(TaskState::Failed, None, None),
                };
                if let Some(error) = &finish.error {
                    info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %error, "python task ended with an error");
                }
                finished.effects = updraft_store::TryEffects {
                    xcoms: pushed,
                    skip: finish.skip,
                };
                finished
            }
        };
        finished.log_tail = log_tail;
        finished
    }

    /// The report of a try from how its process ended (bash tasks, and Python tasks that
    /// did not report).
    fn process_finish(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
        outcome: TaskOutcome,
    ) -> FinishReport {
        let ti = &claimed.ti;
        let report = |state: TaskState, next_retry_at, xcom| FinishReport {
            ti_id: ti.id,
            try_number: ti.try_number,
            claim_id: claimed.claim_id.clone(),
            state,
            end_date: Utc::now(),
            next_retry_at,
            xcom,
            infrastructure_failure: false,
            log_tail: None,
            effects: Default::default(),
        };
        let failed = |task: &Task| {
            let user_try = ti.try_number.saturating_sub(ti.infra_failures);
            let (state, at) = retry::after_failure(task, user_try, Utc::now());
            report(state, at, None)
        };
        match outcome {
            TaskOutcome::Success { xcom } => {
                let xcom = xcom
                    .filter(|_| task.do_xcom_push)
                    .map(serde_json::Value::String);
                report(TaskState::Success, None, xcom)
            }
            TaskOutcome::Skipped { .. } => report(TaskState::Skipped, None, None),
            TaskOutcome::Failed { reason } => {
                info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %reason, "task failed");
                if reason == FailureReason::Killed {
                    // Cancelled by a shutdown or a lost claim: not the task's fault.
                    let (state, at) = retry::after_infrastructure_failure(
                        task,
                        ti.try_number,
                        ti.infra_failures,
                        Utc::now(),
                    );
                    FinishReport {
                        infrastructure_failure: true,
                        ..report(state, at, None)
                    }
                } else {
                    failed(task)
                }
            }
        }
    }

    /// Logs why a try could not start (a template error, say). A remote worker's file stays on
    /// its machine, so the log so far goes with the finish report: the user reads the reason
    /// where they read every log.
    fn log_before_start(&self, log_path: &Path, message: &str) -> Option<LogTail> {
        write_log_line(log_path, message);
        if !self.execution.ships_logs() {
            return None;
        }
        let log = std::fs::read(log_path).ok()?;
        (log.len() <= MAX_TAIL).then(|| LogTail {
            offset: 0,
            data: String::from_utf8_lossy(&log).into_owned(),
        })
    }

    /// Runs the try while its log is sent to the server; a fenced claim kills the task. The
    /// end of the log not sent yet goes with the finish report.
    async fn run_shipping_logs(
        &self,
        claimed: &ClaimedTask,
        launch: TaskLaunch,
        mut cancel: watch::Receiver<bool>,
        log_path: PathBuf,
    ) -> (TaskOutcome, Option<LogTail>) {
        let shipper = LogShipper::new(
            self.execution.clone(),
            log_path,
            claimed.ti.id,
            claimed.ti.try_number,
            claimed.claim_id.clone(),
        );
        let (done_tx, done_rx) = watch::channel(false);
        let (fenced_tx, mut fenced_rx) = watch::channel(false);
        let shipping = tokio::spawn(shipper.run(done_rx, fenced_tx));
        // Cancelled by the worker, or by the server refusing the log of a try that is no
        // longer ours.
        let (kill_tx, kill_rx) = watch::channel(false);
        let relay = tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = cancel.changed() => {
                        if changed.is_err() { return; }
                        if *cancel.borrow() { let _ = kill_tx.send(true); return; }
                    }
                    changed = fenced_rx.changed() => {
                        if changed.is_err() { continue; }
                        if *fenced_rx.borrow() {
                            warn!("the server refused the log of this try: claim lost; killing the task");
                            let _ = kill_tx.send(true);
                            return;
                        }
                    }
                }
            }
        });
        let outcome = run_task_guarded(launch, kill_rx, self.reaper.as_ref()).await;
        relay.abort();
        let _ = done_tx.send(true);
        let tail = shipping.await.ok().flatten();
        (outcome, tail)
    }

    async fn dag(&self, dag_id: &str, version: i64) -> Result<Arc<Dag>, StoreError> {
        let key = (dag_id.to_string(), version);
        if let Some(dag) = self.dags.lock().ok().and_then(|d| d.get(&key).cloned()) {
            return Ok(dag);
        }
        let dag = Arc::new(self.execution.dag_version(dag_id, version).await?);
        if let Ok(mut dags) = self.dags.lock() {
            dags.insert(key, dag.clone());
        }
        Ok(dag)
    }

    /// Writes every finished try that is waiting in one transaction (group commit).
    async fn report_finished(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Finished>) {
        let mut received = Vec::new();
        while rx.recv_many(&mut received, 1024).await > 0 {
            for batch in batches_within_log_limit(std::mem::take(&mut received)) {
                self.report(batch).await;
            }
        }
    }

    /// Reports one batch, retrying until it lands.
    async fn report(&self, batch: Vec<Finished>) {
        let runs: Vec<i64> = batch.iter().map(|f| f.dag_run_id).collect();
        let reports: Vec<FinishReport> = batch.into_iter().map(|f| f.report).collect();
        let mut attempt: u64 = 0;
        // Never give up: the leases of these claims are renewed until the report lands.
        let results = loop {
            match self.execution.finish(reports.clone()).await {
                Ok(results) => break results,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, attempt, "reporting finished tasks failed; retrying");
                    tokio::time::sleep(Duration::from_millis((100 * attempt).min(5_000))).await;
                }
            }
        };
        if let Ok(mut unreported) = self.unreported.lock() {
            for r in &reports {
                unreported.remove(&r.claim_id);
            }
        }
        let mut reported = Reported::default();
        for ((run, report), result) in runs.into_iter().zip(reports).zip(results) {
            if result == TransitionResult::Applied {
                reported.applied.push((run, report));
            } else if !reported.refused_runs.contains(&run) {
                reported.refused_runs.push(run);
            }
        }
        (self.on_finished)(reported);
    }

    /// Renews the leases of running tasks; a task whose claim was lost (cleared, or failed by
    /// a scheduler after a lease expiry) is killed.
    async fn heartbeat_loop(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.config.heartbeat_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if *shutdown.borrow() {
                return;
            }
            let mut claims: Vec<String> = match self.running.lock() {
                Ok(r) => r.keys().cloned().collect(),
                Err(_) => continue,
            };
            if let Ok(unreported) = self.unreported.lock() {
                claims.extend(unreported.iter().cloned());
            }
            if claims.is_empty() {
                continue;
            }
            let lease = chrono::Duration::from_std(self.config.lease)
                .unwrap_or(chrono::Duration::seconds(30));
            match self.execution.heartbeat(&claims, Utc::now() + lease).await {
                Ok(lost) => {
                    if let Ok(running) = self.running.lock() {
                        for claim in lost {
                            if let Some(cancel) = running.get(&claim) {
                                warn!(%claim, "claim lost; killing the task");
                                let _ = cancel.send(true);
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "heartbeat failed"),
            }
        }
    }
}

fn write_log_line(path: &Path, message: &str) {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let ts = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let _ = writeln!(f, "[{ts}] {{updraft}} {message}");
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use updraft_model::TaskState;
    use updraft_store::{FinishReport, LogTail};

    use super::{batches_within_log_limit, Finished, MAX_BATCH_LOG};

    fn finished(id: i64, log_bytes: usize) -> Finished {
        Finished {
            report: FinishReport {
                ti_id: id,
                try_number: 1,
                claim_id: format!("c{id}"),
                state: TaskState::Success,
                end_date: Utc::now(),
                next_retry_at: None,
                xcom: None,
                infrastructure_failure: false,
                log_tail: (log_bytes > 0).then(|| LogTail {
                    offset: 0,
                    data: "x".repeat(log_bytes),
                }),
                effects: Default::default(),
            },
            dag_run_id: 1,
        }
    }

    #[test]
    fn finish_batches_keep_their_log_tails_within_the_limit_and_their_order() {
        let third = MAX_BATCH_LOG / 3;
        let reports = vec![
            finished(1, third),
            finished(2, 0),
            finished(3, third),
            finished(4, third),
            finished(5, MAX_BATCH_LOG),
            finished(6, 10),
        ];
        let ids: Vec<Vec<i64>> = batches_within_log_limit(reports)
            .iter()
            .map(|batch| batch.iter().map(|f| f.report.ti_id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 2, 3, 4], vec![5], vec![6]]);
        assert!(batches_within_log_limit(Vec::new()).is_empty());
    }
}

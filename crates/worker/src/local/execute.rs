//! One claimed try, from its claim to its finish report: the DAG version it belongs to, what
//! its operator makes of it, the process (with its log shipped to the server for a remote
//! worker), and the state it ends in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};
use updraft_model::{retry, Task, TaskState};
use updraft_store::{ClaimedTask, FinishReport, LogTail, StoreError};

use super::dag_cache::CachedDag;
use super::operator;
use super::reporter::Finished;
use super::starting::Starting;
use super::LocalWorker;
use crate::log_shipper::{LogShipper, MAX_TAIL};
use crate::process::{run_task_guarded, FailureReason, TaskLaunch, TaskOutcome};

impl LocalWorker {
    pub(super) fn start(
        self: &Arc<Self>,
        claimed: ClaimedTask,
        finished: mpsc::UnboundedSender<Finished>,
    ) {
        let (cancel_tx, cancel_rx) = watch::channel(false);
        if let Ok(mut running) = self.running.lock() {
            running.insert(claimed.claim_id.clone(), cancel_tx);
        }
        let starting = self.start_slots.take();
        let worker = self.clone();
        tokio::spawn(async move {
            let claim_id = claimed.claim_id.clone();
            let dag_run_id = claimed.ti.dag_run_id;
            let traced = worker.config.traces.is_on().then(|| claimed.clone());
            let started = Utc::now();
            let metrics = updraft_metrics::get().map(|m| {
                let ti = &claimed.ti;
                let queued = ti.queued_at.and_then(|at| (Utc::now() - at).to_std().ok());
                m.try_started(&ti.dag_id, &ti.task_id, queued);
                (
                    m,
                    ti.dag_id.clone(),
                    ti.task_id.clone(),
                    std::time::Instant::now(),
                )
            });
            let report = worker.execute(claimed, cancel_rx, &starting).await;
            if let Some((m, dag_id, task_id, started)) = metrics {
                let end = match report.state {
                    TaskState::Success => updraft_metrics::TryEnd::Success,
                    TaskState::Failed | TaskState::UpForRetry => updraft_metrics::TryEnd::Failure,
                    _ => updraft_metrics::TryEnd::Other,
                };
                m.try_ended(
                    &dag_id,
                    &task_id,
                    report.state.as_str(),
                    end,
                    started.elapsed(),
                );
            }
            starting.started();
            if let Some(claimed) = traced {
                worker.trace_try_end(&claimed, &report, started);
            }
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

    /// Runs one claimed try; `starting` is given back once the try's own code runs.
    pub(super) async fn execute(
        &self,
        claimed: ClaimedTask,
        cancel: watch::Receiver<bool>,
        starting: &Starting,
    ) -> FinishReport {
        let ti = &claimed.ti;
        let log_path = crate::process::log_path(
            &self.config.base_log_folder,
            &ti.dag_id,
            &ti.run_id,
            &ti.task_id,
            ti.map_index,
            ti.try_number,
        );
        let report = |state, next_retry_at, xcom| report_of(&claimed, state, next_retry_at, xcom);
        let dag = match self
            .dags
            .get(
                self.execution.as_ref(),
                &ti.dag_id,
                claimed.dag_run.dag_version,
            )
            .await
        {
            Ok(dag) => dag,
            Err(e) => {
                let mut r = report(TaskState::Failed, None, None);
                r.log_tail = self
                    .log_before_start(&log_path, &format!("cannot load the DAG definition: {e}"));
                if retried_at_once(&e) {
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
        let (finished, error) = if task.sensor.is_some() {
            self.sense(&claimed, &dag, task, log_path, cancel, starting)
                .await
        } else {
            self.run_try(&claimed, &dag, task, log_path, cancel, starting)
                .await
        };
        // Once per try, however many pokes a sensor took.
        self.with_notifications(&claimed, task, finished, error)
    }

    /// Runs one try of `task` (one poke of a sensor) and answers its report. A sensor's poke
    /// that found nothing answers `up_for_reschedule` without an instant: the sensor's loop
    /// (`sense`) decides what follows.
    pub(super) async fn run_try(
        &self,
        claimed: &ClaimedTask,
        dag: &CachedDag,
        task: &Task,
        log_path: PathBuf,
        cancel: watch::Receiver<bool>,
        starting: &Starting,
    ) -> (FinishReport, Option<String>) {
        let ti = &claimed.ti;
        let report = |state, next_retry_at, xcom| report_of(claimed, state, next_retry_at, xcom);
        let failed = |task: &Task| failed_report(claimed, task);
        let mut container = None;
        let (launch, supervisor) = match self.prepare(claimed, dag, task, log_path.clone()).await {
            Ok(operator::Work::Process(launch)) => (*launch, None),
            Ok(operator::Work::Python(prepared)) => (prepared.launch, Some(prepared.supervisor)),
            Ok(operator::Work::Docker(prepared)) => {
                let prepared = *prepared;
                container = Some(prepared.container);
                (prepared.launch, None)
            }
            Ok(operator::Work::Nothing) => return (report(TaskState::Success, None, None), None),
            Ok(operator::Work::File(poke)) => {
                let finished = match poke.poke() {
                    Some(found) => {
                        write_log_line(&log_path, &format!("found {}", found.display()));
                        report(TaskState::Success, None, None)
                    }
                    None => {
                        write_log_line(
                            &log_path,
                            &format!("poking for {}: not there yet", poke.pattern),
                        );
                        report(TaskState::UpForReschedule, None, None)
                    }
                };
                return self.conclude(claimed, dag, task, finished, &log_path, None, None);
            }
            Ok(operator::Work::Trigger(prepared)) => {
                let finished = self
                    .run_trigger_try(claimed, task, *prepared, &log_path, cancel)
                    .await;
                return self.conclude(claimed, dag, task, finished, &log_path, None, None);
            }
            Ok(operator::Work::Http(call)) => {
                let finished = self.run_http(claimed, task, *call, &log_path, cancel).await;
                return self.conclude(claimed, dag, task, finished, &log_path, None, None);
            }
            Err(message) => {
                let done = FinishReport {
                    log_tail: self.log_before_start(&log_path, &message),
                    ..failed(task)
                };
                return (done, Some(message));
            }
        };
        match &supervisor {
            // Its callable runs once the child asked for its context.
            Some(supervisor) => supervisor.when_started(starting.clone()),
            None => starting.started(),
        }
        debug!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, "task started");
        // Should this worker die, its reaper kills the container as well as the process.
        let registered = container.as_ref().and_then(|c| {
            let reaper = self.reaper.as_ref()?;
            Some(reaper.guard_container(&c.name, c.docker_url.as_deref()))
        });
        let (outcome, log_tail) = if self.execution.ships_logs() {
            self.run_shipping_logs(claimed, launch, cancel, log_path.clone())
                .await
        } else {
            let outcome = run_task_guarded(launch, cancel, self.reaper.as_ref()).await;
            (outcome, None)
        };
        if let Some(container) = container {
            container.finish(&outcome).await;
        }
        drop(registered);
        let python = supervisor.map(|s| s.finish());
        let mut error = match &outcome {
            TaskOutcome::Failed { reason } => Some(reason.to_string()),
            _ => None,
        };
        let finished = match (outcome, python) {
            // Killed or timed out: as any process, whatever the child said before.
            (outcome @ TaskOutcome::Failed { .. }, Some((None, _)))
            | (outcome, None)
            | (
                outcome @ TaskOutcome::Failed {
                    reason: FailureReason::Killed | FailureReason::TimedOut(_),
                },
                Some(_),
            ) => self.process_finish(claimed, task, outcome),
            (_, Some((None, _))) => {
                write_log_line(
                    &log_path,
                    "the Python process exited without reporting how the task ended",
                );
                failed(task)
            }
            (_, Some((Some(finish), pushed))) => {
                let mut finished = match finish.state {
                    // A sensor's poke that found nothing.
                    operator::FinishState::Success if !finish.sensor_done => {
                        report(TaskState::UpForReschedule, None, None)
                    }
                    operator::FinishState::Success => {
                        let xcom = finish.return_value.filter(|_| task.do_xcom_push);
                        report(TaskState::Success, None, xcom)
                    }
                    operator::FinishState::Skipped => report(TaskState::Skipped, None, None),
                    operator::FinishState::Failed if finish.retry => failed(task),
                    // AirflowFailException: failed for good, whatever the retries left.
                    operator::FinishState::Failed => report(TaskState::Failed, None, None),
                };
                if finish.error.is_some() {
                    error.clone_from(&finish.error);
                }
                if let Some(error) = &finish.error {
                    info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %error, "python task ended with an error");
                }
                finished.effects = updraft_store::TryEffects {
                    xcoms: pushed,
                    skip: finish.skip,
                    notifications: Vec::new(),
                };
                finished
            }
        };
        self.conclude(claimed, dag, task, finished, &log_path, log_tail, error)
    }

    /// The report of an HTTP try: its XCom on success; a timeout or a failed request is the
    /// task's failure, a cancel the infrastructure's.
    async fn run_http(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
        call: operator::HttpTry,
        log_path: &Path,
        cancel: watch::Receiver<bool>,
    ) -> FinishReport {
        let ti = &claimed.ti;
        let outcome = match call.run(log_path, task.execution_timeout, cancel).await {
            // An HTTP sensor is done when a JSON filter finds something truthy; it pushes
            // nothing, as Airflow's `HttpSensor`.
            operator::HttpOutcome::Success(xcom) if task.sensor.is_some() => {
                let filtered = matches!(
                    &task.operator,
                    updraft_model::Operator::Http(call) if call.response_filter.is_some()
                );
                let done = !filtered || xcom.as_ref().is_some_and(truthy);
                let state = if done {
                    TaskState::Success
                } else {
                    TaskState::UpForReschedule
                };
                return report_of(claimed, state, None, None);
            }
            operator::HttpOutcome::Refused(404, _) if task.sensor.is_some() => {
                return report_of(claimed, TaskState::UpForReschedule, None, None);
            }
            operator::HttpOutcome::Success(xcom) => {
                let xcom = xcom.filter(|_| task.do_xcom_push);
                return report_of(claimed, TaskState::Success, None, xcom);
            }
            operator::HttpOutcome::Failed(why) | operator::HttpOutcome::Refused(_, why) => {
                info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %why, "http task failed");
                return failed_report(claimed, task);
            }
            operator::HttpOutcome::TimedOut(limit) => FailureReason::TimedOut(limit),
            operator::HttpOutcome::Cancelled => FailureReason::Killed,
        };
        self.process_finish(claimed, task, TaskOutcome::Failed { reason: outcome })
    }

    /// The report of a trigger try: the XComs it pushed whatever the end; a wait that ended
    /// in a failed state or a run that already exists fails it for good (Airflow's runner);
    /// a timeout or a missing DAG is the task's failure, a cancel the infrastructure's.
    async fn run_trigger_try(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
        prepared: operator::TriggerTry,
        log_path: &Path,
        cancel: watch::Receiver<bool>,
    ) -> FinishReport {
        let ti = &claimed.ti;
        let end = self
            .run_trigger(prepared, log_path, task.execution_timeout, cancel)
            .await;
        let mut report = match end.outcome {
            operator::TriggerOutcome::Success => report_of(claimed, TaskState::Success, None, None),
            operator::TriggerOutcome::Skipped => report_of(claimed, TaskState::Skipped, None, None),
            operator::TriggerOutcome::Failed(why) => {
                info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %why, "trigger task failed");
                failed_report(claimed, task)
            }
            operator::TriggerOutcome::FailedForGood(why) => {
                info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, %why, "trigger task failed");
                report_of(claimed, TaskState::Failed, None, None)
            }
            operator::TriggerOutcome::TimedOut(limit) => self.process_finish(
                claimed,
                task,
                TaskOutcome::Failed {
                    reason: FailureReason::TimedOut(limit),
                },
            ),
            operator::TriggerOutcome::Cancelled => self.process_finish(
                claimed,
                task,
                TaskOutcome::Failed {
                    reason: FailureReason::Killed,
                },
            ),
        };
        report.effects.xcoms = end.pushed;
        report
    }

    /// What every try's report gets once it ended: a result that downstream tasks map over
    /// is checked, a remote worker's log goes with it, and so do the notifications of the
    /// task's callbacks for the state it ends in (`error`: why it failed).
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &self,
        claimed: &ClaimedTask,
        dag: &CachedDag,
        task: &Task,
        mut finished: FinishReport,
        log_path: &Path,
        log_tail: Option<LogTail>,
        mut error: Option<String>,
    ) -> (FinishReport, Option<String>) {
        let ti = &claimed.ti;
        let failed = |task: &Task| failed_report(claimed, task);
        let mut log_tail = match log_tail {
            Some(tail) => Some(tail),
            // A try that ran no process shipped nothing yet: its whole log goes now.
            None if self.execution.ships_logs() => whole_log(log_path),
            None => None,
        };
        if finished.state == TaskState::Success
            && ti.map_index < 0
            && dag.is_mapped_over(&task.task_id)
        {
            if let Err(why) = operator::result_for_mapping(dag, task, &mut finished.xcom) {
                // As Airflow: the task whose result cannot be mapped over fails.
                let line = format!("the task's result cannot be mapped over: {why}");
                write_log_line(log_path, &line);
                if let Some(tail) = &mut log_tail {
                    tail.data.push_str(&line);
                    tail.data.push('\n');
                }
                finished = FinishReport {
                    effects: finished.effects,
                    ..failed(task)
                };
                error = Some(line);
            }
        }
        finished.log_tail = log_tail;
        (finished, error)
    }

    /// The report of a try from how its process ended (bash tasks, and Python tasks that
    /// did not report).
    pub(super) fn process_finish(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
        outcome: TaskOutcome,
    ) -> FinishReport {
        let ti = &claimed.ti;
        let report = |state, next_retry_at, xcom| report_of(claimed, state, next_retry_at, xcom);
        let failed = |task: &Task| failed_report(claimed, task);
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
                if matches!(reason, FailureReason::Killed | FailureReason::Lost(_)) {
                    // Cancelled by a shutdown or a lost claim, or the fork server that started
                    // it died: not the task's fault.
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
        whole_log(log_path)
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
}

/// The log of a try as a tail from its start, when it is small enough to go with the report.
pub(super) fn whole_log(log_path: &Path) -> Option<LogTail> {
    let log = std::fs::read(log_path).ok()?;
    (log.len() <= MAX_TAIL).then(|| LogTail {
        offset: 0,
        data: String::from_utf8_lossy(&log).into_owned(),
    })
}

/// Whether a try whose DAG version could not be loaded because of `e` is retried at once as an
/// infrastructure failure (not the task's fault) rather than failed: only when loading again
/// can succeed, decided by the kind of failure, never by its message.
fn retried_at_once(e: &StoreError) -> bool {
    e.is_transient()
}

pub(super) fn write_log_line(path: &Path, message: &str) {
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

/// Python's truth of a JSON value: what an HTTP sensor's filter must find.
fn truthy(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// The report of `claimed`'s try ending now in `state`.
pub(super) fn report_of(
    claimed: &ClaimedTask,
    state: TaskState,
    next_retry_at: Option<chrono::DateTime<Utc>>,
    xcom: Option<serde_json::Value>,
) -> FinishReport {
    FinishReport {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        claim_id: claimed.claim_id.clone(),
        state,
        end_date: Utc::now(),
        next_retry_at,
        xcom,
        infrastructure_failure: false,
        log_tail: None,
        effects: Default::default(),
    }
}

/// The report of a try that failed by the task's fault: up for retry while its retries last
/// (tries lost to the infrastructure do not count against them).
fn failed_report(claimed: &ClaimedTask, task: &Task) -> FinishReport {
    let ti = &claimed.ti;
    let user_try = ti.try_number.saturating_sub(ti.infra_failures);
    let (state, at) = retry::after_failure(task, user_try, Utc::now());
    report_of(claimed, state, at, None)
}

#[cfg(test)]
mod tests {
    use updraft_store::{DatabaseFailure, StoreError};

    use super::retried_at_once;

    #[test]
    fn only_a_failure_that_may_pass_retries_a_try_whose_dag_did_not_load() {
        let db = |failure| StoreError::database_failure(failure, "database is locked");
        assert!(retried_at_once(&db(DatabaseFailure::Busy)));
        assert!(retried_at_once(&db(DatabaseFailure::Unreachable)));
        // The same words as a busy database, but a failure of another kind: not retried.
        assert!(!retried_at_once(&db(DatabaseFailure::Other)));
        assert!(retried_at_once(&StoreError::Unavailable(
            "connection refused".into()
        )));
        assert!(!retried_at_once(&StoreError::NotFound(
            "version 3 of DAG \"d\"".into()
        )));
        assert!(!retried_at_once(&StoreError::Corrupt("bad JSON".into())));
    }
}

//! A sensor's try: pokes until one finds what it waits for, sleeping between them (`mode:
//! poke`, the slot stays taken) or ending the claim as `up_for_reschedule` with the instant of
//! the next poke (`mode: reschedule`, the slot is freed and the scheduler queues the next poke
//! then, in the same try). The timeout counts from the first poke of the try (the task
//! instance's `start_date`, which the store keeps across reschedules) and ends the task for
//! good, without a retry: failed, or skipped with `soft_fail`.

use std::path::PathBuf;

use chrono::Utc;
use tokio::sync::watch;
use tracing::info;
use updraft_model::sensor::jitter_salt;
use updraft_model::{AfterPoke, SensorMode, Task, TaskState};
use updraft_store::{ClaimedTask, FinishReport};

use super::dag_cache::CachedDag;
use super::execute::{report_of, whole_log, write_log_line};
use super::starting::Starting;
use super::LocalWorker;
use crate::process::{FailureReason, TaskOutcome};
use crate::waiting::cancelled;

impl LocalWorker {
    /// Runs `task`'s try as a sensor's: pokes until done, timed out, failed or rescheduled.
    pub(super) async fn sense(
        &self,
        claimed: &ClaimedTask,
        dag: &CachedDag,
        task: &Task,
        log_path: PathBuf,
        mut cancel: watch::Receiver<bool>,
        starting: &Starting,
    ) -> (FinishReport, Option<String>) {
        let Some(sensing) = &task.sensor else {
            return self
                .run_try(claimed, dag, task, log_path, cancel, starting)
                .await;
        };
        let ti = &claimed.ti;
        let started = ti.start_date.unwrap_or_else(Utc::now);
        let salt = jitter_salt(ti.id, ti.try_number);
        loop {
            let (poked, error) = self
                .run_try(
                    claimed,
                    dag,
                    task,
                    log_path.clone(),
                    cancel.clone(),
                    starting,
                )
                .await;
            // Found, failed, skipped or cancelled: the try ends as the poke did.
            if poked.state != TaskState::UpForReschedule || poked.next_retry_at.is_some() {
                return (poked, error);
            }
            let now = Utc::now();
            let (state, next_poke, line) = match sensing.after_poke(started, now, salt) {
                AfterPoke::TimedOut => {
                    let elapsed = (now - started).num_milliseconds() as f64 / 1000.0;
                    let line = format!(
                        "Sensor has timed out; run duration of {elapsed:.1}s is over its timeout \
                         of {:.1}s{}",
                        sensing.timeout.as_secs_f64(),
                        if sensing.soft_fail {
                            " (soft_fail: skipped)"
                        } else {
                            ""
                        }
                    );
                    info!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, "sensor timed out");
                    let state = if sensing.soft_fail {
                        TaskState::Skipped
                    } else {
                        TaskState::Failed
                    };
                    (state, None, line)
                }
                AfterPoke::PokeAt(at) if sensing.mode == SensorMode::Reschedule => (
                    TaskState::UpForReschedule,
                    Some(at),
                    format!(
                        "Rescheduling: the next poke is at {}",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                ),
                AfterPoke::PokeAt(at) => {
                    let wait = (at - now).to_std().unwrap_or_default();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => continue,
                        () = cancelled(&mut cancel) => {
                            let killed = FailureReason::Killed;
                            let error = Some(killed.to_string());
                            let outcome = TaskOutcome::Failed { reason: killed };
                            return (self.process_finish(claimed, task, outcome), error);
                        }
                    }
                }
            };
            write_log_line(&log_path, &line);
            let mut report = report_of(claimed, state, next_poke, None);
            if self.execution.ships_logs() {
                report.log_tail = whole_log(&log_path);
            }
            let error = (state == TaskState::Failed).then_some(line);
            return (report, error);
        }
    }
}

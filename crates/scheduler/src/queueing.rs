//! Queueing: moving scheduled task instances to queued, highest priority first, and choosing
//! which of them fit within the concurrency limits.

mod pick;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use updraft_model::TaskState;
use updraft_store::{Occupancy, QueueItem, TaskLimits, TransitionResult};

use crate::{DagGraph, Scheduler, SchedulerError};
use pick::{pick, Limits};

/// A DAG's tasks that limit their own instances: task id → (`max_active_tis_per_dag`,
/// `max_active_tis_per_dagrun`).
pub(crate) type DagTaskLimits = HashMap<String, (Option<u32>, Option<u32>)>;

impl Scheduler {
    /// Moves `scheduled` task instances to `queued` (starting a new try), highest priority
    /// first, within parallelism, each DAG's `max_active_tasks` and each pool's slots. Task
    /// instances of paused DAGs stay `scheduled` (except for the `only_run` of `dags test`).
    /// High-priority tasks held back by a full pool, a DAG at its limit or a pause do not
    /// hide the queueable ones behind them (`pick`).
    pub(crate) async fn queue_ready_work(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, SchedulerError> {
        let occupancy = self.store.occupancy().await?;
        self.queue_within(occupancy, now).await
    }

    /// [`Self::queue_ready_work`] within `occupancy`, read by the caller.
    pub(crate) async fn queue_within(
        &self,
        occupancy: Occupancy,
        now: DateTime<Utc>,
    ) -> Result<usize, SchedulerError> {
        let free = self.config.parallelism.saturating_sub(occupancy.total) as usize;
        if free == 0 {
            return Ok(0);
        }
        let max_active_tasks = self
            .dag_limits
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let task_limits = self
            .task_limits
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let paused = self.paused.lock().map(|p| p.clone()).unwrap_or_default();
        let items: Vec<QueueItem> = {
            let kept = self.kept();
            let limits = Limits {
                occupancy: &occupancy,
                max_active_tasks: &max_active_tasks,
                task_limits: &task_limits,
                paused: &paused,
                only_run: self.config.only_run,
            };
            pick(&kept, &limits, free, now)
                .into_iter()
                .map(|ti| QueueItem {
                    ti_id: ti.id,
                    try_number: ti.try_number,
                    dag_id: ti.dag_id.clone(),
                    pool: ti.pool.clone(),
                    queue: ti.queue.clone(),
                    dag_run_id: ti.dag_run_id,
                    max_active_tasks: max_active_tasks
                        .get(&ti.dag_id)
                        .copied()
                        .unwrap_or(u32::MAX),
                    task_limits: task_limits
                        .get(&ti.dag_id)
                        .and_then(|tasks| tasks.get(&ti.task_id))
                        .map(|&(per_dag, per_run)| TaskLimits {
                            task_id: ti.task_id.clone(),
                            dag_run_id: ti.dag_run_id,
                            per_dag,
                            per_run,
                        }),
                    // A rescheduled sensor's next poke: the same try goes on.
                    resumes: ti.state == TaskState::UpForReschedule,
                })
                .collect()
        };
        if items.is_empty() {
            return Ok(0);
        }
        // What the kept states need of each item once the store has taken them.
        let picked: Vec<(i64, i64, bool)> = items
            .iter()
            .map(|item| (item.dag_run_id, item.ti_id, item.resumes))
            .collect();
        let results = self.store.queue(items, now).await?;
        let mut kept = self.kept();
        let mut queued = 0;
        for (&(dag_run_id, ti_id, resumes), result) in picked.iter().zip(&results) {
            // Not queued: another scheduler filled the DAG's or the pool's places first (the
            // task stays scheduled), or the row moved on, which the next full pass reloads.
            if *result != TransitionResult::Applied {
                continue;
            }
            queued += 1;
            if let Some(kept_run) = kept.get_mut(&dag_run_id) {
                kept_run.update(ti_id, |ti| {
                    ti.state = TaskState::Queued;
                    ti.try_number += u32::from(!resumes);
                    ti.next_retry_at = None;
                });
            }
        }
        Ok(queued)
    }
}

impl Scheduler {
    /// Remembers the task limits of the version a run being evaluated is pinned to.
    pub(crate) fn remember_task_limits(&self, graph: &DagGraph) {
        if let Ok(mut limits) = self.task_limits.lock() {
            if graph.task_limits.is_empty() {
                limits.remove(&graph.dag.dag_id);
            } else if limits.get(&graph.dag.dag_id) != Some(&graph.task_limits) {
                limits.insert(graph.dag.dag_id.clone(), graph.task_limits.clone());
            }
        }
    }
}

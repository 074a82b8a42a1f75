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

/// The DAG and pool of each instance queued: the places it took.
pub(crate) type Places = Vec<(String, String)>;

impl Scheduler {
    /// Moves `scheduled` task instances to `queued` (starting a new try), highest priority
    /// first, within parallelism, each DAG's `max_active_tasks` and each pool's slots. Task
    /// instances of paused DAGs stay `scheduled` (except for the `only_run` of `dags test`).
    /// High-priority tasks held back by a full pool, a DAG at its limit or a pause do not
    /// hide the queueable ones behind them (`pick`).
    pub(crate) async fn queue_ready_work(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Places, SchedulerError> {
        let occupancy = self.store.occupancy().await?;
        self.queue_within(occupancy, now).await
    }

    /// [`Self::queue_ready_work`] within `occupancy`, read by the caller (or kept).
    pub(crate) async fn queue_within(
        &self,
        occupancy: Occupancy,
        now: DateTime<Utc>,
    ) -> Result<Places, SchedulerError> {
        let items = self.pick_items(&occupancy, now);
        if items.is_empty() {
            self.keep_occupancy(Some(occupancy));
            return Ok(Places::new());
        }
        let results = self.store.queue(items.clone(), now).await?;
        Ok(self.keep_queued(occupancy, &items, &results))
    }

    /// The queueable instances of the kept runs that fit within `occupancy`, in the order the
    /// queue takes them, as the store's items.
    pub(crate) fn pick_items(&self, occupancy: &Occupancy, now: DateTime<Utc>) -> Vec<QueueItem> {
        let free = self.config.parallelism.saturating_sub(occupancy.total) as usize;
        if free == 0 {
            return Vec::new();
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
        let kept = self.kept();
        let limits = Limits {
            occupancy,
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
    }

    /// Applies the store's answer to queueing `items` to the kept states, and keeps
    /// `occupancy` with the queued items counted in; returns the places they took.
    pub(crate) fn keep_queued(
        &self,
        mut occupancy: Occupancy,
        items: &[QueueItem],
        results: &[TransitionResult],
    ) -> Places {
        let mut taken = Places::new();
        let mut refused = false;
        {
            let mut kept = self.kept();
            for (item, result) in items.iter().zip(results) {
                // Not queued: another scheduler filled the DAG's or the pool's places first
                // (the task stays scheduled), or the row moved on, which a told change or
                // the kept states' next reading reloads. Either way the occupancy counted here is not the store's.
                if *result != TransitionResult::Applied {
                    refused = true;
                    continue;
                }
                taken.push((item.dag_id.clone(), item.pool.clone()));
                *occupancy.per_dag.entry(item.dag_id.clone()).or_default() += 1;
                *occupancy.per_pool.entry(item.pool.clone()).or_default() += 1;
                occupancy.total += 1;
                if let Some(kept_run) = kept.get_mut(&item.dag_run_id) {
                    kept_run.update(item.ti_id, |ti| {
                        ti.state = TaskState::Queued;
                        ti.try_number += u32::from(!item.resumes);
                        ti.next_retry_at = None;
                    });
                }
            }
        }
        self.keep_occupancy((!refused).then_some(occupancy));
        taken
    }

    /// Keeps `occupancy` as the one the next pass over this scheduler's finished tries starts
    /// from (`None`: that pass reads it).
    pub(crate) fn keep_occupancy(&self, occupancy: Option<Occupancy>) {
        if let Ok(mut kept) = self.occupancy.lock() {
            *kept = occupancy;
        }
    }

    /// The kept occupancy with the places of `freed` tries (their DAG and pool) given back,
    /// kept so; `None` when there is none to trust.
    pub(crate) fn occupancy_after(&self, freed: &[(String, String)]) -> Option<Occupancy> {
        let mut kept = self.occupancy.lock().ok()?;
        let occupancy = kept.as_mut()?;
        for (dag_id, pool) in freed {
            if let Some(n) = occupancy.per_dag.get_mut(dag_id) {
                *n = n.saturating_sub(1);
            }
            if let Some(n) = occupancy.per_pool.get_mut(pool) {
                *n = n.saturating_sub(1);
            }
            occupancy.total = occupancy.total.saturating_sub(1);
        }
        Some(occupancy.clone())
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

//! Queueing: moving scheduled task instances to queued, highest priority first, and choosing
//! which of them fit within the concurrency limits.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use updraft_model::TaskState;
use updraft_store::{Occupancy, QueueItem, TaskInstance, TaskLimits, TransitionResult};

use crate::kept_states::KeptRun;
use crate::{DagGraph, Scheduler, SchedulerError};

/// A DAG's tasks that limit their own instances: task id → (`max_active_tis_per_dag`,
/// `max_active_tis_per_dagrun`).
pub(crate) type DagTaskLimits = HashMap<String, (Option<u32>, Option<u32>)>;

impl Scheduler {
    /// Moves `scheduled` task instances to `queued` (starting a new try), highest priority
    /// first, within parallelism, each DAG's `max_active_tasks` and each pool's slots. Task
    /// instances of paused DAGs stay `scheduled` (except for the `only_run` of `dags test`).
    ///
    /// Candidates are read by priority in growing batches until enough were chosen or none are
    /// left, so that high-priority tasks held back by a full pool, a DAG at its limit or a
    /// pause cannot hide the queueable ones behind them.
    pub(crate) async fn queue_ready_work(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, SchedulerError> {
        let occupancy = self.store.occupancy().await?;
        let free = self.config.parallelism.saturating_sub(occupancy.total) as usize;
        if free == 0 {
            return Ok(0);
        }
        let limits = self
            .dag_limits
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let task_limits = self
            .task_limits
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let chosen: Vec<Chosen> = {
            let kept = self.kept();
            let candidates = self.queueing_candidates(&kept, &occupancy, &limits, now);
            by_priority_until_enough(candidates, free, |ordered| {
                let ordered = within_task_limits(ordered, &kept, &task_limits);
                choose(ordered, &occupancy, free, &limits, self.config.only_run)
            })
            .into_iter()
            .map(|ti| Chosen {
                ti_id: ti.id,
                try_number: ti.try_number,
                resumes: ti.state == TaskState::UpForReschedule,
                dag_run_id: ti.dag_run_id,
                dag_id: ti.dag_id.clone(),
                pool: ti.pool.clone(),
                task_limits: task_limits
                    .get(&ti.dag_id)
                    .and_then(|tasks| tasks.get(&ti.task_id))
                    .map(|&(per_dag, per_run)| TaskLimits {
                        task_id: ti.task_id.clone(),
                        dag_run_id: ti.dag_run_id,
                        per_dag,
                        per_run,
                    }),
            })
            .collect()
        };
        if chosen.is_empty() {
            return Ok(0);
        }
        let items: Vec<QueueItem> = chosen
            .iter()
            .map(|c| QueueItem {
                ti_id: c.ti_id,
                try_number: c.try_number,
                dag_id: c.dag_id.clone(),
                pool: c.pool.clone(),
                max_active_tasks: limits.get(&c.dag_id).copied().unwrap_or(u32::MAX),
                task_limits: c.task_limits.clone(),
                resumes: c.resumes,
            })
            .collect();
        let results = self.store.queue(items, now).await?;
        let mut kept = self.kept();
        let mut queued = 0;
        for (c, result) in chosen.iter().zip(&results) {
            // Not queued: another scheduler filled the DAG's or the pool's places first (the
            // task stays scheduled), or the row moved on, which the next full pass reloads.
            if *result != TransitionResult::Applied {
                continue;
            }
            queued += 1;
            if let Some(kept_run) = kept.get_mut(&c.dag_run_id) {
                kept_run.update(c.ti_id, |ti| {
                    ti.state = TaskState::Queued;
                    ti.try_number += u32::from(!c.resumes);
                    ti.next_retry_at = None;
                });
            }
        }
        Ok(queued)
    }

    /// The `scheduled` task instances of the kept runs, and the rescheduled sensors whose next
    /// poke is due, that could be queued now (their DAG
    /// is below `max_active_tasks`, their pool has a free slot, their DAG is not paused), in
    /// no order. Every running run in scope is kept after a full pass, so this reads nothing
    /// from the store.
    pub(crate) fn queueing_candidates<'a>(
        &self,
        kept: &'a HashMap<i64, KeptRun>,
        occupancy: &updraft_store::Occupancy,
        limits: &HashMap<String, u32>,
        now: DateTime<Utc>,
    ) -> Vec<&'a TaskInstance> {
        let dag_full = |dag_id: &str| {
            let active = occupancy.per_dag.get(dag_id).copied().unwrap_or(0);
            limits.get(dag_id).is_some_and(|limit| active >= *limit)
        };
        let pool_full = |pool: &str| {
            let used = occupancy.per_pool.get(pool).copied().unwrap_or(0);
            occupancy
                .pool_slots
                .get(pool)
                .is_some_and(|slots| used >= *slots)
        };
        let paused_dags = self.paused.lock().map(|p| p.clone()).unwrap_or_default();
        let paused: HashSet<&str> = paused_dags
            .iter()
            .filter(|(_, is_paused)| **is_paused)
            .map(|(dag, _)| dag.as_str())
            .collect();
        let candidates: Vec<&TaskInstance> = kept
            .iter()
            .filter(|(run, _)| self.config.only_run.is_none_or(|only| only == **run))
            .flat_map(|(_, run)| run.queueable())
            .filter(|ti| match ti.state {
                TaskState::Scheduled => true,
                TaskState::UpForReschedule => ti.next_retry_at.is_none_or(|at| at <= now),
                _ => false,
            })
            .filter(|ti| !dag_full(&ti.dag_id) && !pool_full(&ti.pool))
            .filter(|ti| self.config.only_run.is_some() || !paused.contains(ti.dag_id.as_str()))
            .collect();
        candidates
    }
}

/// Highest priority first; the older task instance first among equals.
fn by_priority(a: &&TaskInstance, b: &&TaskInstance) -> std::cmp::Ordering {
    b.priority_weight
        .cmp(&a.priority_weight)
        .then(a.id.cmp(&b.id))
}

/// At least this many candidates are ordered before the first pick.
const MIN_HEAD: usize = 64;

/// What `pick` takes (at most `free`) from `candidates` in priority order, ordering only the
/// head of them while that is enough. Thousands of instances may wait while a few places are
/// free; sorting all of them on every pass was most of a pass's time. `pick` goes down the
/// order and takes what fits, so when the head yields `free` picks, the whole order would
/// have yielded the same ones.
fn by_priority_until_enough<'a>(
    mut candidates: Vec<&'a TaskInstance>,
    free: usize,
    pick: impl Fn(Vec<&'a TaskInstance>) -> Vec<&'a TaskInstance>,
) -> Vec<&'a TaskInstance> {
    let head = free.saturating_mul(2).max(MIN_HEAD);
    if candidates.len() > head {
        candidates.select_nth_unstable_by(head, by_priority);
        let mut top = candidates[..head].to_vec();
        top.sort_unstable_by(by_priority);
        let picked = pick(top);
        if picked.len() >= free {
            return picked;
        }
    }
    candidates.sort_unstable_by(by_priority);
    pick(candidates)
}

/// A task instance picked for queueing, copied out of the kept states.
struct Chosen {
    ti_id: i64,
    try_number: u32,
    /// A rescheduled sensor's next poke: the same try goes on.
    resumes: bool,
    dag_run_id: i64,
    dag_id: String,
    pool: String,
    task_limits: Option<TaskLimits>,
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

/// `candidates` (in order) without those whose task is at its `max_active_tis_per_dag` or
/// `max_active_tis_per_dagrun`, counting the queued and running instances of the kept runs
/// and the candidates kept before them. The store counts again when it queues, over every
/// run, so a run another scheduler owns never lets a task exceed its limit.
pub fn within_task_limits<'a>(
    candidates: Vec<&'a TaskInstance>,
    kept: &HashMap<i64, KeptRun>,
    task_limits: &HashMap<String, DagTaskLimits>,
) -> Vec<&'a TaskInstance> {
    if task_limits.is_empty() {
        return candidates;
    }
    let limits_of = |ti: &TaskInstance| {
        task_limits
            .get(&ti.dag_id)
            .and_then(|tasks| tasks.get(&ti.task_id))
            .copied()
    };
    let mut per_dag: HashMap<(String, String), u32> = HashMap::new();
    let mut per_run: HashMap<(i64, String), u32> = HashMap::new();
    for ti in kept.values().flat_map(KeptRun::all) {
        if limits_of(ti).is_some()
            && matches!(
                ti.state,
                TaskState::Queued | TaskState::Running | TaskState::Restarting
            )
        {
            *per_dag
                .entry((ti.dag_id.clone(), ti.task_id.clone()))
                .or_default() += 1;
            *per_run
                .entry((ti.dag_run_id, ti.task_id.clone()))
                .or_default() += 1;
        }
    }
    candidates
        .into_iter()
        .filter(|ti| {
            let Some((dag_limit, run_limit)) = limits_of(ti) else {
                return true;
            };
            let in_dag = per_dag
                .entry((ti.dag_id.clone(), ti.task_id.clone()))
                .or_default();
            let in_run = per_run
                .entry((ti.dag_run_id, ti.task_id.clone()))
                .or_default();
            if dag_limit.is_some_and(|l| *in_dag >= l) || run_limit.is_some_and(|l| *in_run >= l) {
                return false;
            }
            *in_dag += 1;
            *in_run += 1;
            true
        })
        .collect()
}

/// Picks from `candidates` (highest priority first) at most `free` task instances such that no
/// DAG exceeds its `max_active_tasks` and no pool its slots. Pools with no row are unlimited.
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = &'a TaskInstance>,
    occupancy: &Occupancy,
    free: usize,
    max_active_tasks: &HashMap<String, u32>,
    only_run: Option<i64>,
) -> Vec<&'a TaskInstance> {
    let mut per_dag: HashMap<&str, u32> = occupancy
        .per_dag
        .iter()
        .map(|(dag, n)| (dag.as_str(), *n))
        .collect();
    let mut per_pool: HashMap<&str, u32> = occupancy
        .per_pool
        .iter()
        .map(|(pool, n)| (pool.as_str(), *n))
        .collect();
    let mut chosen = Vec::new();
    for ti in candidates {
        if chosen.len() >= free {
            break;
        }
        if only_run.is_some_and(|run| run != ti.dag_run_id) {
            continue;
        }
        let dag_count = per_dag.get(ti.dag_id.as_str()).copied().unwrap_or(0);
        if max_active_tasks
            .get(&ti.dag_id)
            .is_some_and(|limit| dag_count >= *limit)
        {
            continue;
        }
        let pool_count = per_pool.get(ti.pool.as_str()).copied().unwrap_or(0);
        if occupancy
            .pool_slots
            .get(&ti.pool)
            .is_some_and(|slots| pool_count >= *slots)
        {
            continue;
        }
        per_dag.insert(&ti.dag_id, dag_count + 1);
        per_pool.insert(&ti.pool, pool_count + 1);
        chosen.push(ti);
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_store::TaskState;

    fn ti(id: i64, dag: &str, pool: &str) -> TaskInstance {
        TaskInstance {
            id,
            dag_run_id: 1,
            dag_id: dag.into(),
            run_id: "r".into(),
            task_id: format!("t{id}"),
            map_index: -1,
            try_number: 0,
            state: TaskState::Scheduled,
            queue: "default".into(),
            pool: pool.into(),
            priority_weight: 1,
            hostname: None,
            worker_id: None,
            claim_id: None,
            lease_until: None,
            queued_at: None,
            start_date: None,
            end_date: None,
            next_retry_at: None,
            infra_failures: 0,
            note: None,
        }
    }

    #[test]
    fn respects_parallelism_dag_and_pool_limits() {
        let candidates = vec![
            ti(1, "a", "p"),
            ti(2, "a", "p"),
            ti(3, "a", "default_pool"),
            ti(4, "b", "p"),
            ti(5, "b", "default_pool"),
        ];
        let mut occupancy = Occupancy::default();
        occupancy.pool_slots.insert("p".into(), 2);
        occupancy.per_pool.insert("p".into(), 1);
        occupancy.per_dag.insert("a".into(), 1);
        let limits = HashMap::from([("a".to_string(), 2), ("b".to_string(), 16)]);
        let ids: Vec<i64> = choose(&candidates, &occupancy, 10, &limits, None)
            .iter()
            .map(|t| t.id)
            .collect();
        // a: one slot left under max_active_tasks; pool p: one slot left.
        assert_eq!(ids, vec![1, 5]);
        let ids: Vec<i64> = choose(&candidates, &Occupancy::default(), 2, &limits, None)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn ordering_only_the_head_picks_what_ordering_all_would() {
        // 1,000 waiting in two DAGs, priorities in no order; DAG "a" (the higher priorities)
        // has room for three more only, so the head alone cannot fill every free place.
        let candidates: Vec<TaskInstance> = (0..1_000)
            .map(|id| {
                let mut t = ti(id, if id % 2 == 0 { "a" } else { "b" }, "default_pool");
                t.priority_weight = (id * 7_919) % 1_000 + if id % 2 == 0 { 2_000 } else { 0 };
                t
            })
            .collect();
        let mut occupancy = Occupancy::default();
        occupancy.per_dag.insert("a".into(), 13);
        let limits = HashMap::from([("a".to_string(), 16), ("b".to_string(), 1_000)]);
        for free in [1, 3, 5, 40, 200, 2_000] {
            let picked: Vec<i64> =
                by_priority_until_enough(candidates.iter().collect(), free, |ordered| {
                    choose(ordered, &occupancy, free, &limits, None)
                })
                .iter()
                .map(|t| t.id)
                .collect();
            let mut all: Vec<&TaskInstance> = candidates.iter().collect();
            all.sort_unstable_by(by_priority);
            let from_all: Vec<i64> = choose(all, &occupancy, free, &limits, None)
                .iter()
                .map(|t| t.id)
                .collect();
            assert_eq!(picked, from_all, "free = {free}");
            assert_eq!(picked.len(), free.min(1_000 / 2 + 3), "free = {free}");
        }
    }
}

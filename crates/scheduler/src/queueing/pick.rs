//! Which waiting task instances a pass queues: the highest priority first (the older first
//! among equals), as long as parallelism, each DAG's `max_active_tasks`, each pool's slots and
//! each task's own limits allow.
//!
//! Thousands of instances may wait while a few places are free, so the picks come from a merge
//! of ordered streams, one per kept run and pool: a pick costs a heap step, and a stream whose
//! DAG or pool is full is dropped whole, since every instance in it would be refused too.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};
use updraft_model::TaskState;
use updraft_store::{Occupancy, TaskInstance};

use super::DagTaskLimits;
use crate::kept_states::{KeptRun, QueueOrder};

/// What bounds the picks of one pass.
pub(crate) struct Limits<'a> {
    /// Queued and running instances, in all and per DAG and pool, and the pools' slots (a
    /// pool without a row is unlimited).
    pub occupancy: &'a Occupancy,
    /// Per DAG; a DAG not named is unlimited.
    pub max_active_tasks: &'a HashMap<String, u32>,
    /// Per DAG, its tasks with `max_active_tis_per_dag` or `max_active_tis_per_dagrun`.
    pub task_limits: &'a HashMap<String, DagTaskLimits>,
    /// DAG id → paused. A paused DAG's instances wait, except for the `only_run`.
    pub paused: &'a HashMap<String, bool>,
    /// `dags test`: only this run's instances are picked, paused or not.
    pub only_run: Option<i64>,
}

/// At most `free` of the kept runs' queueable instances: `scheduled` ones, and rescheduled
/// sensors whose next poke is due at `now`, in the order the queue takes them.
pub(crate) fn pick<'a>(
    kept: &'a HashMap<i64, KeptRun>,
    limits: &Limits<'_>,
    free: usize,
    now: DateTime<Utc>,
) -> Vec<&'a TaskInstance> {
    let mut chosen = Vec::new();
    if free == 0 {
        return chosen;
    }
    let mut per_dag: HashMap<&str, u32> = limits
        .occupancy
        .per_dag
        .iter()
        .map(|(dag, n)| (dag.as_str(), *n))
        .collect();
    let mut per_pool: HashMap<&str, u32> = limits
        .occupancy
        .per_pool
        .iter()
        .map(|(pool, n)| (pool.as_str(), *n))
        .collect();
    let mut per_task = TaskCounts::of(kept, limits.task_limits);
    let mut streams = BinaryHeap::new();
    for (run_id, run) in kept {
        if limits.only_run.is_some_and(|only| only != *run_id) {
            continue;
        }
        let Some(dag) = run.dag_id() else {
            continue;
        };
        if limits.only_run.is_none() && limits.paused.get(dag).copied().unwrap_or(false) {
            continue;
        }
        for (pool, order) in run.queueable_by_pool() {
            streams.extend(Stream::start(dag, pool, order));
        }
    }
    while chosen.len() < free {
        let Some(stream) = streams.pop() else {
            break;
        };
        let dag_count = per_dag.get(stream.dag).copied().unwrap_or(0);
        if limits
            .max_active_tasks
            .get(stream.dag)
            .is_some_and(|limit| dag_count >= *limit)
        {
            continue;
        }
        let pool_count = per_pool.get(stream.pool).copied().unwrap_or(0);
        if limits
            .occupancy
            .pool_slots
            .get(stream.pool)
            .is_some_and(|slots| pool_count >= *slots)
        {
            continue;
        }
        let ti = stream.head;
        let due =
            ti.state != TaskState::UpForReschedule || ti.next_retry_at.is_none_or(|at| at <= now);
        if due && per_task.admits(ti, limits.task_limits) {
            per_dag.insert(stream.dag, dag_count + 1);
            per_pool.insert(stream.pool, pool_count + 1);
            chosen.push(ti);
        }
        streams.extend(stream.advance());
    }
    chosen
}

/// A run's queueable instances of one pool, from the next one the queue would take.
struct Stream<'a> {
    head: &'a TaskInstance,
    rest: QueueOrder<'a>,
    dag: &'a str,
    pool: &'a str,
}

impl<'a> Stream<'a> {
    fn start(dag: &'a str, pool: &'a str, mut order: QueueOrder<'a>) -> Option<Self> {
        order.next().map(|head| Stream {
            head,
            rest: order,
            dag,
            pool,
        })
    }

    fn advance(self) -> Option<Self> {
        Stream::start(self.dag, self.pool, self.rest)
    }

    /// The heap pops the greatest: the higher priority, then the lower id.
    fn rank(&self) -> (i64, std::cmp::Reverse<i64>) {
        (self.head.priority_weight, std::cmp::Reverse(self.head.id))
    }
}

impl PartialEq for Stream<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Stream<'_> {}

impl PartialOrd for Stream<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Stream<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Queued and running instances of the tasks that limit their own, per DAG and per run, as
/// the kept runs hold them, plus what this pass picked. The store counts again when it
/// queues, over every run, so a run another scheduler owns never lets a task exceed its limit.
#[derive(Default)]
struct TaskCounts<'a> {
    per_dag: HashMap<(&'a str, &'a str), u32>,
    per_run: HashMap<(i64, &'a str), u32>,
}

impl<'a> TaskCounts<'a> {
    fn of(kept: &'a HashMap<i64, KeptRun>, task_limits: &HashMap<String, DagTaskLimits>) -> Self {
        let mut counts = TaskCounts::default();
        for run in kept.values() {
            let Some(tasks) = run.dag_id().and_then(|dag| task_limits.get(dag)) else {
                continue;
            };
            for ti in run.all() {
                if tasks.contains_key(&ti.task_id) && ti.state.occupies_slot() {
                    counts.count(ti);
                }
            }
        }
        counts
    }

    fn count(&mut self, ti: &'a TaskInstance) {
        *self
            .per_dag
            .entry((ti.dag_id.as_str(), ti.task_id.as_str()))
            .or_default() += 1;
        *self
            .per_run
            .entry((ti.dag_run_id, ti.task_id.as_str()))
            .or_default() += 1;
    }

    /// Whether `ti`'s task is below its limits; if so, counts it as taken.
    fn admits(
        &mut self,
        ti: &'a TaskInstance,
        task_limits: &HashMap<String, DagTaskLimits>,
    ) -> bool {
        let Some(&(dag_limit, run_limit)) = task_limits
            .get(&ti.dag_id)
            .and_then(|tasks| tasks.get(&ti.task_id))
        else {
            return true;
        };
        let in_dag = self
            .per_dag
            .get(&(ti.dag_id.as_str(), ti.task_id.as_str()))
            .copied()
            .unwrap_or(0);
        let in_run = self
            .per_run
            .get(&(ti.dag_run_id, ti.task_id.as_str()))
            .copied()
            .unwrap_or(0);
        if dag_limit.is_some_and(|l| in_dag >= l) || run_limit.is_some_and(|l| in_run >= l) {
            return false;
        }
        self.count(ti);
        true
    }
}

#[cfg(test)]
mod tests;

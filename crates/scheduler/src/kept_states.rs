//! The task states the scheduler keeps for its running runs, so a finished task costs an
//! update here rather than a read of its whole run, and a pass over a run of 50,000 tasks
//! looks only at the instances that changed, the ones waiting for a place or an instant, and
//! what depends on them.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{btree_set, BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use updraft_model::TaskState;
use updraft_store::{TaskInstance, TransitionResult};

use crate::graph::DagGraph;
use crate::plan::{Instances, RunTis};
use crate::{Scheduler, SchedulerError};

/// A running run's task instances as this scheduler last saw them, indexed by what the
/// passes ask of them. Every change goes through [`KeptRun::update`], which keeps the
/// indexes true.
#[derive(Debug)]
pub(crate) struct KeptRun {
    /// In id order, as the store reads them.
    tis: Vec<TaskInstance>,
    /// Positions of the instances changed since the run was last planned; `None` until its
    /// first plan, which looks at every task.
    changed: Option<BTreeSet<usize>>,
    /// The instances the queue picks from (`scheduled`, `up_for_reschedule`), per pool in
    /// the order it picks them.
    queueable: BTreeMap<String, BTreeSet<QueueKey>>,
    /// Positions of the instances that wait for an instant: `up_for_retry`,
    /// `up_for_reschedule`, `deferred`.
    timed: BTreeSet<usize>,
    /// Every instance before this position is finished (moved on as a plan asks).
    finished_below: Cell<usize>,
    /// Per task of the run's DAG version, the positions of its instances: built by the first
    /// plan (the graph is not known before).
    by_task: Option<Vec<Instances<u32>>>,
}

impl KeptRun {
    pub(crate) fn new(tis: Vec<TaskInstance>) -> Self {
        let mut kept = KeptRun {
            tis,
            changed: None,
            queueable: BTreeMap::new(),
            timed: BTreeSet::new(),
            finished_below: Cell::new(0),
            by_task: None,
        };
        for at in 0..kept.tis.len() {
            kept.index(at);
        }
        kept
    }

    pub(crate) fn tis(&self) -> &[TaskInstance] {
        &self.tis
    }

    /// Changes instance `id` with `change`; false when the run has no such instance.
    pub(crate) fn update(&mut self, id: i64, change: impl FnOnce(&mut TaskInstance)) -> bool {
        let Some(at) = self.position(id) else {
            return false;
        };
        self.unqueue(at);
        change(&mut self.tis[at]);
        self.index(at);
        if let Some(changed) = self.changed.as_mut() {
            changed.insert(at);
        }
        true
    }

    /// The kept instance `id`. The store reads a run's instances in id order, and a run is
    /// re-read whole when it gains some, so a binary search finds it; a linear search is the
    /// fallback should the order ever differ.
    pub(crate) fn get(&self, id: i64) -> Option<&TaskInstance> {
        self.position(id).map(|at| &self.tis[at])
    }

    fn position(&self, id: i64) -> Option<usize> {
        match self.tis.binary_search_by_key(&id, |ti| ti.id) {
            Ok(at) => Some(at),
            Err(_) => self.tis.iter().position(|ti| ti.id == id),
        }
    }

    fn index(&mut self, at: usize) {
        let ti = &self.tis[at];
        let state = ti.state;
        if matches!(state, TaskState::Scheduled | TaskState::UpForReschedule) {
            let key = queue_key(ti, at);
            match self.queueable.get_mut(&ti.pool) {
                Some(in_pool) => {
                    in_pool.insert(key);
                }
                None => {
                    self.queueable
                        .insert(ti.pool.clone(), BTreeSet::from([key]));
                }
            }
        }
        set_member(
            &mut self.timed,
            at,
            matches!(
                state,
                TaskState::UpForRetry | TaskState::UpForReschedule | TaskState::Deferred
            ),
        );
        if !state.is_finished() && at < self.finished_below.get() {
            self.finished_below.set(at);
        }
    }

    /// Takes instance `at` out of the queueable index, keyed by what it is before a change.
    fn unqueue(&mut self, at: usize) {
        let ti = &self.tis[at];
        if let Some(in_pool) = self.queueable.get_mut(&ti.pool) {
            in_pool.remove(&queue_key(ti, at));
            if in_pool.is_empty() {
                self.queueable.remove(&ti.pool);
            }
        }
    }

    /// The instances the queue may pick from (`scheduled`, `up_for_reschedule`), per pool,
    /// each pool's highest priority first (the older first among equals).
    pub(crate) fn queueable_by_pool(&self) -> impl Iterator<Item = (&str, QueueOrder<'_>)> {
        self.queueable.iter().map(|(pool, keys)| {
            (
                pool.as_str(),
                QueueOrder {
                    keys: keys.iter(),
                    tis: &self.tis,
                },
            )
        })
    }

    /// The DAG the run belongs to (every instance has it).
    pub(crate) fn dag_id(&self) -> Option<&str> {
        self.tis.first().map(|ti| ti.dag_id.as_str())
    }

    /// Every instance.
    pub(crate) fn all(&self) -> impl Iterator<Item = &TaskInstance> {
        self.tis.iter()
    }

    /// Makes the next plan look at every task: what it decides may have changed without any
    /// of the run's instances changing (the run before it, for `depends_on_past`).
    pub(crate) fn plan_everything(&mut self) {
        self.changed = None;
    }

    /// The earliest instant after `now` that an instance waits for.
    pub(crate) fn next_due_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.timed
            .iter()
            .filter_map(|&at| self.tis[at].next_retry_at)
            .filter(|at| *at > now)
            .min()
    }

    /// What a plan of this run looks at: every task the first time, then the tasks of the
    /// instances that changed since (and what depends on them) and of the instances that
    /// wait for an instant. Taking it starts a new record of changes.
    pub(crate) fn take_plan_scope(&mut self, graph: &DagGraph) -> PlanScope {
        if self.by_task.is_none() {
            self.by_task = Some(crate::plan::instances_by_task(graph, &self.tis));
        }
        let Some(changed) = self.changed.replace(BTreeSet::new()) else {
            return PlanScope::Everything;
        };
        let task_of = |at: &usize| graph.index.get(&self.tis[*at].task_id).copied();
        PlanScope::Changed {
            changed: changed.iter().filter_map(task_of).collect(),
            timed: self.timed.iter().filter_map(task_of).collect(),
        }
    }

    /// The instances with the per-task index a plan reads them through.
    pub(crate) fn run_tis(&self) -> Option<RunTis<'_>> {
        self.by_task.as_deref().map(|by_task| RunTis {
            tis: &self.tis,
            by_task,
        })
    }

    /// Whether every instance is finished, counting the states `planned` gives some (by
    /// instance id). Cheap while the run goes on: the instances before the first unfinished
    /// one stay finished, so each is looked at once.
    pub(crate) fn all_finished(&self, planned: &HashMap<i64, TaskState>) -> bool {
        let mut below = self.finished_below.get();
        while self.tis.get(below).is_some_and(|ti| ti.state.is_finished()) {
            below += 1;
        }
        self.finished_below.set(below);
        self.tis[below..].iter().all(|ti| {
            planned
                .get(&ti.id)
                .copied()
                .unwrap_or(ti.state)
                .is_finished()
        })
    }
}

/// Where an instance stands in the queue's order: higher priority first, then the older
/// (lower id); its position last.
type QueueKey = (Reverse<i64>, i64, usize);

fn queue_key(ti: &TaskInstance, at: usize) -> QueueKey {
    (Reverse(ti.priority_weight), ti.id, at)
}

/// A run's queueable instances of one pool, in the order the queue picks them.
#[derive(Clone)]
pub(crate) struct QueueOrder<'a> {
    keys: btree_set::Iter<'a, QueueKey>,
    tis: &'a [TaskInstance],
}

impl<'a> Iterator for QueueOrder<'a> {
    type Item = &'a TaskInstance;

    fn next(&mut self) -> Option<&'a TaskInstance> {
        self.keys.next().map(|&(_, _, at)| &self.tis[at])
    }
}

/// What a plan looks at (task indexes of the run's DAG version).
#[derive(Debug, PartialEq)]
pub(crate) enum PlanScope {
    Everything,
    Changed {
        /// Tasks with an instance that changed: they and what depends on them.
        changed: Vec<usize>,
        /// Tasks with an instance that waits for an instant: they alone.
        timed: Vec<usize>,
    },
}

fn set_member(set: &mut BTreeSet<usize>, at: usize, member: bool) {
    if member {
        set.insert(at);
    } else {
        set.remove(&at);
    }
}

impl Scheduler {
    /// The kept runs. Only a cache: a panic elsewhere while it was held leaves nothing that
    /// the next full pass does not reload, so a poisoned lock is used as is.
    pub(crate) fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<i64, KeptRun>> {
        self.run_tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure a run's task instances are kept, reading them from the store if not.
    pub(crate) async fn keep_run(&self, dag_run_id: i64) -> Result<(), SchedulerError> {
        if self.kept().contains_key(&dag_run_id) {
            return Ok(());
        }
        let tis = self.store.task_instances(dag_run_id).await?;
        self.kept().insert(dag_run_id, KeptRun::new(tis));
        Ok(())
    }

    /// Records applied transitions in the kept task states; a conflict drops the run's entry,
    /// since the row is not what this scheduler thought.
    pub(crate) fn keep_transitions(
        &self,
        runs: &[i64],
        transitions: &[updraft_store::Transition],
        results: &[TransitionResult],
    ) {
        let mut kept = self.kept();
        for ((run, t), result) in runs.iter().zip(transitions).zip(results) {
            if *result == TransitionResult::Conflict {
                kept.remove(run);
                continue;
            }
            if let Some(kept_run) = kept.get_mut(run) {
                kept_run.update(t.ti_id, |ti| {
                    ti.state = t.to;
                    ti.try_number += u32::from(t.new_try);
                    ti.next_retry_at = t.next_retry_at;
                    // As the store does: a wait's timeout counts from when it began.
                    if t.to == TaskState::Deferred && ti.start_date.is_none() {
                        ti.start_date = Some(t.now);
                    }
                });
            }
        }
    }
}

//! The task states the scheduler keeps for its running runs, so a finished task costs an
//! update here rather than a read of its whole run, and a pass over a run of 50,000 tasks
//! looks only at the instances that changed, the ones waiting for a place or an instant, and
//! what depends on them.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};

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
    /// Positions of the instances the queue picks from: `scheduled`, `up_for_reschedule`.
    queueable: BTreeSet<usize>,
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
            queueable: BTreeSet::new(),
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
        let state = self.tis[at].state;
        set_member(
            &mut self.queueable,
            at,
            matches!(state, TaskState::Scheduled | TaskState::UpForReschedule),
        );
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

    /// The instances the queue may pick from (`scheduled`, `up_for_reschedule`).
    pub(crate) fn queueable(&self) -> impl Iterator<Item = &TaskInstance> {
        self.queueable.iter().map(|&at| &self.tis[at])
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

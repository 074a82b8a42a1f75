//! The task states the scheduler keeps for its running runs, so a finished task costs an
//! update here rather than a read of its whole run.

use std::collections::HashMap;

use updraft_store::{TaskInstance, TransitionResult};

use crate::{Scheduler, SchedulerError};

/// The kept instance `id` of a run. The store reads a run's instances in id order, and a run
/// is re-read whole when it gains some, so a binary search finds it; a linear search is the
/// fallback should the order ever differ.
pub(crate) fn kept_instance(tis: &mut [TaskInstance], id: i64) -> Option<&mut TaskInstance> {
    match tis.binary_search_by_key(&id, |ti| ti.id) {
        Ok(at) => tis.get_mut(at),
        Err(_) => tis.iter_mut().find(|ti| ti.id == id),
    }
}

impl Scheduler {
    /// The kept task states. Only a cache: a panic elsewhere while it was held leaves nothing
    /// that the next full pass does not reload, so a poisoned lock is used as is.
    pub(crate) fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<TaskInstance>>> {
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
        self.kept().insert(dag_run_id, tis);
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
            if let Some(ti) = kept
                .get_mut(run)
                .and_then(|tis| kept_instance(tis, t.ti_id))
            {
                ti.state = t.to;
                ti.try_number += u32::from(t.new_try);
                ti.next_retry_at = t.next_retry_at;
                // As the store does: a wait's timeout counts from when it began.
                if t.to == updraft_model::TaskState::Deferred && ti.start_date.is_none() {
                    ti.start_date = Some(t.now);
                }
            }
        }
    }
}

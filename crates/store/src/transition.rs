//! The state machine's check of every task instance write a backend is asked for, in one
//! place for every backend: a write the state machine forbids is refused before anything is
//! written ([`StoreError::IllegalTransition`]), whatever the database holds.

use updraft_model::state::IllegalTransition;

use crate::{
    FinishReport, LogAppend, MarkTaskInstances, Result, StoreError, TaskInstance, TaskState,
    Transition,
};

/// Checks every compare-and-set of a batch ([`crate::Store::apply_transitions`]).
pub fn check_transitions(batch: &[Transition]) -> Result<()> {
    for t in batch {
        t.from.check_transition(t.to)?;
    }
    Ok(())
}

/// Checks the end state of every finish report: a finish moves a running try on.
pub fn check_finishes(reports: &[FinishReport]) -> Result<()> {
    for r in reports {
        TaskState::Running.check_transition(r.state)?;
    }
    Ok(())
}

impl MarkTaskInstances {
    /// Checks a mark against the task instances it changes (those not already in its state):
    /// only a finished state may be set by hand.
    pub fn check(&self, changing: &[TaskInstance]) -> Result<()> {
        match changing.first() {
            Some(ti) if !self.state.is_finished() => Err(IllegalTransition {
                from: ti.state,
                to: self.state,
            }
            .into()),
            _ => Ok(()),
        }
    }
}

/// What becomes of storing a finish report's log tail (see [`FinishReport::log_tail`]): a
/// tail that cannot be placed ([`StoreError::Corrupt`]) must not keep the try's state from
/// being recorded, so it is only logged; any other error fails the finish as it would anyway.
pub fn log_tail_stored(ti_id: i64, stored: Result<LogAppend>) -> Result<()> {
    match stored {
        Err(StoreError::Corrupt(message)) => {
            tracing::warn!(ti_id, %message, "log tail not stored");
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn transition(from: TaskState, to: TaskState) -> Transition {
        Transition {
            ti_id: 1,
            try_number: 1,
            from,
            to,
            now: Utc.timestamp_opt(0, 0).unwrap(),
            new_try: false,
            next_retry_at: None,
        }
    }

    fn finish(state: TaskState) -> FinishReport {
        FinishReport {
            ti_id: 1,
            try_number: 1,
            claim_id: "c".into(),
            state,
            end_date: Utc.timestamp_opt(0, 0).unwrap(),
            next_retry_at: None,
            xcom: None,
            infrastructure_failure: false,
            log_tail: None,
            effects: Default::default(),
        }
    }

    fn illegal(result: Result<()>) -> Option<(TaskState, TaskState)> {
        match result {
            Err(StoreError::IllegalTransition(IllegalTransition { from, to })) => Some((from, to)),
            Err(other) => panic!("not an illegal transition: {other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn a_batch_is_refused_for_its_first_forbidden_transition() {
        assert_eq!(illegal(check_transitions(&[])), None);
        assert_eq!(
            illegal(check_transitions(&[
                transition(TaskState::None, TaskState::Scheduled),
                transition(TaskState::Scheduled, TaskState::Queued)
            ])),
            None
        );
        assert_eq!(
            illegal(check_transitions(&[
                transition(TaskState::None, TaskState::Scheduled),
                transition(TaskState::Success, TaskState::Running),
                transition(TaskState::Running, TaskState::None),
            ])),
            Some((TaskState::Success, TaskState::Running))
        );
    }

    #[test]
    fn a_finish_ends_a_running_try() {
        for ok in [
            TaskState::Success,
            TaskState::Failed,
            TaskState::UpForRetry,
            TaskState::Skipped,
        ] {
            assert_eq!(illegal(check_finishes(&[finish(ok)])), None, "{ok}");
        }
        assert_eq!(
            illegal(check_finishes(&[
                finish(TaskState::Success),
                finish(TaskState::Queued)
            ])),
            Some((TaskState::Running, TaskState::Queued))
        );
    }

    #[test]
    fn only_finished_states_are_marked_by_hand() {
        let ti = |state| TaskInstance {
            id: 1,
            dag_run_id: 1,
            dag_id: "d".into(),
            run_id: "r".into(),
            task_id: "t".into(),
            map_index: -1,
            try_number: 1,
            state,
            queue: "default".into(),
            pool: "default_pool".into(),
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
        };
        let mark = |state| MarkTaskInstances {
            ti_ids: vec![1],
            state,
            now: Utc.timestamp_opt(0, 0).unwrap(),
        };
        assert_eq!(
            illegal(mark(TaskState::Success).check(&[ti(TaskState::Running)])),
            None
        );
        assert_eq!(
            illegal(mark(TaskState::Skipped).check(&[ti(TaskState::Queued)])),
            None
        );
        assert_eq!(
            illegal(mark(TaskState::Queued).check(&[ti(TaskState::Running)])),
            Some((TaskState::Running, TaskState::Queued))
        );
        // Nothing changes: nothing to refuse.
        assert_eq!(illegal(mark(TaskState::Queued).check(&[])), None);
    }

    #[test]
    fn an_unplaceable_tail_is_dropped_but_a_database_error_fails_the_finish() {
        assert!(log_tail_stored(1, Ok(LogAppend::Fenced)).is_ok());
        assert!(log_tail_stored(1, Err(StoreError::Corrupt("gap".into()))).is_ok());
        assert!(matches!(
            log_tail_stored(1, Err(StoreError::database("gone"))),
            Err(StoreError::Database(_))
        ));
    }
}

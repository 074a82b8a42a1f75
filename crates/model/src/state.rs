//! Task instance and DAG run states, Airflow's names, and the one table of legal transitions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Airflow's "no status": not yet considered by the scheduler, or cleared.
    None,
    Scheduled,
    Queued,
    Running,
    Success,
    Failed,
    UpForRetry,
    Skipped,
    UpstreamFailed,
    Removed,
    Restarting,
    Deferred,
    UpForReschedule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DagRunState {
    Queued,
    Running,
    Success,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunType {
    Manual,
    Scheduled,
    Backfill,
    /// Created because the DAG's asset condition was met (Airflow's `asset_triggered`).
    AssetTriggered,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal task state transition {from} -> {to}")]
pub struct IllegalTransition {
    pub from: TaskState,
    pub to: TaskState,
}

const TASK_STATES: [(TaskState, &str); 13] = [
    (TaskState::None, "none"),
    (TaskState::Scheduled, "scheduled"),
    (TaskState::Queued, "queued"),
    (TaskState::Running, "running"),
    (TaskState::Success, "success"),
    (TaskState::Failed, "failed"),
    (TaskState::UpForRetry, "up_for_retry"),
    (TaskState::Skipped, "skipped"),
    (TaskState::UpstreamFailed, "upstream_failed"),
    (TaskState::Removed, "removed"),
    (TaskState::Restarting, "restarting"),
    (TaskState::Deferred, "deferred"),
    (TaskState::UpForReschedule, "up_for_reschedule"),
];

impl TaskState {
    pub fn as_str(self) -> &'static str {
        TASK_STATES
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, name)| *name)
            .unwrap_or("none")
    }

    /// Finished for this run unless cleared: downstream tasks may be decided on it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TaskState::Success
                | TaskState::Failed
                | TaskState::Skipped
                | TaskState::UpstreamFailed
                | TaskState::Removed
        )
    }

    /// Holds a place of its DAG, pool and task (`max_active_tasks`, slots, a task's own
    /// limits): queued, running, or restarting.
    pub fn occupies_slot(self) -> bool {
        matches!(
            self,
            TaskState::Queued | TaskState::Running | TaskState::Restarting
        )
    }

    /// Counts as a failure for trigger rules and for the run's final state.
    pub fn is_failure(self) -> bool {
        matches!(self, TaskState::Failed | TaskState::UpstreamFailed)
    }

    /// Whether `self -> to` is a legal transition. Every state write checks this table.
    pub fn can_become(self, to: TaskState) -> bool {
        use TaskState::*;
        match (self, to) {
            // Clearing puts any task that is not running back to "no status".
            (from, None) if from != Running => true,
            (None | UpForRetry, Scheduled) => true,
            (None | Scheduled | UpForRetry, Queued) => true,
            (Queued, Running) => true,
            // A rescheduled sensor's next poke goes on with the same try.
            (UpForReschedule, Queued) => true,
            // A queued task can fail before it starts (its worker died, or it cannot render).
            (Queued, Failed | UpForRetry) => true,
            (Running, Success | Failed | UpForRetry | Skipped | Restarting | UpForReschedule) => {
                true
            }
            (Restarting, UpForRetry | Failed) => true,
            (None | Scheduled, Skipped | UpstreamFailed | Removed) => true,
            // A task with nothing to execute (the empty operator) succeeds where it stands.
            (None | Scheduled, Success) => true,
            (UpForRetry, Failed) => true,
            (Deferred | UpForReschedule, Scheduled | Failed) => true,
            // A wait on time the scheduler holds: it begins, or ends with the instant.
            (None | Scheduled, Deferred) => true,
            (Deferred, Success | Skipped) => true,
            // A wait on another DAG the scheduler holds: each poke that finds it unmet sets
            // the next one.
            (Deferred, Deferred) => true,
            (UpForReschedule, Skipped) => true,
            _ => false,
        }
    }

    pub fn check_transition(self, to: TaskState) -> Result<(), IllegalTransition> {
        if self.can_become(to) {
            Ok(())
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl DagRunState {
    pub fn as_str(self) -> &'static str {
        match self {
            DagRunState::Queued => "queued",
            DagRunState::Running => "running",
            DagRunState::Success => "success",
            DagRunState::Failed => "failed",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, DagRunState::Success | DagRunState::Failed)
    }
}

impl RunType {
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Manual => "manual",
            RunType::Scheduled => "scheduled",
            RunType::Backfill => "backfill",
            RunType::AssetTriggered => "asset_triggered",
        }
    }
}

impl FromStr for TaskState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TASK_STATES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(state, _)| *state)
            .ok_or_else(|| UnknownState {
                kind: "task state",
                value: s.to_string(),
            })
    }
}

impl FromStr for DagRunState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            DagRunState::Queued,
            DagRunState::Running,
            DagRunState::Success,
            DagRunState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| UnknownState {
            kind: "dag run state",
            value: s.to_string(),
        })
    }
}

impl FromStr for RunType {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RunType::Manual,
            RunType::Scheduled,
            RunType::Backfill,
            RunType::AssetTriggered,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| UnknownState {
            kind: "run type",
            value: s.to_string(),
        })
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DagRunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RunType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (state, name) in TASK_STATES {
            assert_eq!(state.as_str(), name);
            assert_eq!(name.parse::<TaskState>(), Ok(state));
        }
        assert!("bogus".parse::<TaskState>().is_err());
    }

    #[test]
    fn the_happy_path_is_legal() {
        use TaskState::*;
        let path = [None, Scheduled, Queued, Running, Success];
        for pair in path.windows(2) {
            assert!(pair[0].can_become(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn a_sensor_waits_between_pokes_and_a_time_wait_ends_where_it_stands() {
        use TaskState::*;
        for path in [
            &[Queued, Running, UpForReschedule, Queued, Running, Success][..],
            &[None, Deferred, Success],
            &[None, Deferred, None],
            &[UpForReschedule, None],
        ] {
            for pair in path.windows(2) {
                assert!(pair[0].can_become(pair[1]), "{} -> {}", pair[0], pair[1]);
            }
        }
        assert!(!UpForReschedule.is_finished() && !Deferred.is_finished());
        assert!(!UpForReschedule.can_become(Running) && !Deferred.can_become(Queued));
    }

    #[test]
    fn finished_tasks_cannot_jump_to_running() {
        use TaskState::*;
        for from in [Success, Failed, Skipped, UpstreamFailed, None, Scheduled] {
            assert_eq!(
                from.check_transition(Running),
                Err(IllegalTransition { from, to: Running })
            );
        }
        assert!(
            !Running.can_become(None),
            "a running task is restarted, not reset"
        );
    }
}

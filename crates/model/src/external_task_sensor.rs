//! A wait for a task, a task group or a whole run of another DAG (Airflow's
//! `ExternalTaskSensor`). The scheduler decides it from the store at each poke, as Airflow's
//! deferrable form does in its triggerer: no process and no worker slot while it waits.
//!
//! What a poke decides follows Airflow's counts for one logical date: listed tasks are met
//! when every instance of each is in an allowed state and failed when any instance is in a
//! failed state; a task group is met (or failed) when all of its instances are; a whole DAG
//! is met by its run's state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{DagRunState, Task, TaskState};

/// What of the other DAG's run the sensor waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "of")]
pub enum ExternalTarget {
    /// The run itself (neither task ids nor a group given).
    Run,
    /// These tasks (Airflow's `external_task_id` / `external_task_ids`).
    Tasks { task_ids: Vec<String> },
    /// Every task of this group (Airflow's `external_task_group_id`).
    Group { group_id: String },
}

/// An `ExternalTaskSensor`'s definition. Ids are templates, rendered with the sensor's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalTaskSensor {
    pub external_dag_id: String,
    pub target: ExternalTarget,
    /// States that end the wait with success (Airflow's default: `success`).
    pub allowed_states: Vec<String>,
    /// States that fail the sensor (skip it with `soft_fail`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_states: Vec<String>,
    /// States that skip the sensor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_states: Vec<String>,
    /// The other run's logical date is the sensor run's minus this many seconds (negative:
    /// a later run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_delta_secs: Option<i64>,
    /// Fail at the first poke when the DAG, or a listed task or the group, does not exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_existence: bool,
}

/// Why a definition is refused, in Airflow's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExternalSensorError {
    #[error("Duplicate values provided across allowed_states, skipped_states and failed_states.")]
    DuplicateStates,
    #[error("Duplicate task_ids passed in external_task_ids parameter")]
    DuplicateTaskIds,
    #[error("{0:?} is not a {1} state; allowed: {2}")]
    UnknownState(String, &'static str, String),
}

/// What one poke found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalVerdict {
    /// Everything waited for is in an allowed state: the sensor succeeds.
    Met,
    /// Something is in a failed state: the sensor fails (skips with `soft_fail`).
    Failed(String),
    /// Something is in a skipped state: the sensor skips.
    Skipped(String),
    /// Not yet: poke again.
    Pending,
}

/// The default `allowed_states`.
pub fn default_allowed_states() -> Vec<String> {
    vec![TaskState::Success.as_str().to_owned()]
}

impl ExternalTaskSensor {
    /// Checks the states (task states, or run states when the target is the run) and ids as
    /// Airflow does when the operator is built.
    pub fn validate(&self) -> Result<(), ExternalSensorError> {
        let all: Vec<&String> = self
            .allowed_states
            .iter()
            .chain(&self.failed_states)
            .chain(&self.skipped_states)
            .collect();
        let distinct: std::collections::HashSet<&&String> = all.iter().collect();
        if distinct.len() != all.len() {
            return Err(ExternalSensorError::DuplicateStates);
        }
        if let ExternalTarget::Tasks { task_ids } = &self.target {
            let distinct: std::collections::HashSet<&String> = task_ids.iter().collect();
            if distinct.len() != task_ids.len() {
                return Err(ExternalSensorError::DuplicateTaskIds);
            }
        }
        for state in all {
            let known = match self.target {
                ExternalTarget::Run => state.parse::<DagRunState>().is_ok(),
                _ => state.parse::<TaskState>().is_ok(),
            };
            if !known {
                let (kind, names) = match self.target {
                    ExternalTarget::Run => ("DAG run", "queued, running, success, failed"),
                    _ => (
                        "task",
                        "success, failed, skipped, upstream_failed, removed, …",
                    ),
                };
                return Err(ExternalSensorError::UnknownState(
                    state.clone(),
                    kind,
                    names.to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// The logical date of the other DAG's run that a run of `logical_date` waits for.
    pub fn target_date(&self, logical_date: DateTime<Utc>) -> DateTime<Utc> {
        self.execution_delta_secs
            .and_then(|secs| logical_date.checked_sub_signed(Duration::seconds(secs)))
            .unwrap_or(logical_date)
    }

    /// What a poke finds when the other DAG's runs of the target date are in `runs`.
    pub fn judge_runs(&self, dag_id: &str, runs: &[DagRunState]) -> ExternalVerdict {
        let any_in =
            |states: &[String]| runs.iter().any(|s| states.iter().any(|w| w == s.as_str()));
        if any_in(&self.failed_states) {
            return ExternalVerdict::Failed(format!("The external DAG {dag_id} failed."));
        }
        if any_in(&self.skipped_states) {
            return ExternalVerdict::Skipped(format!(
                "The external DAG {dag_id} reached a state in our states-to-skip-on list. \
                 Skipping."
            ));
        }
        met_if(any_in(&self.allowed_states))
    }

    /// What a poke finds when the other run's task instances are `tis` (task id and state,
    /// every instance of the run; those not waited for are ignored); `task_ids` are the
    /// rendered ids waited for.
    pub fn judge_tasks(
        &self,
        dag_id: &str,
        task_ids: &[String],
        tis: &[(&str, TaskState)],
    ) -> ExternalVerdict {
        let waited: Vec<TaskState> = tis
            .iter()
            .filter(|(id, _)| task_ids.iter().any(|t| t == id))
            .map(|(_, s)| *s)
            .collect();
        if waited.iter().any(|s| in_states(*s, &self.failed_states)) {
            return ExternalVerdict::Failed(format!(
                "Some of the external tasks {task_ids:?} in DAG {dag_id} failed."
            ));
        }
        if waited.iter().any(|s| in_states(*s, &self.skipped_states)) {
            return ExternalVerdict::Skipped(format!(
                "Some of the external tasks {task_ids:?} in DAG {dag_id} reached a state in our \
                 states-to-skip-on list. Skipping."
            ));
        }
        let every_task_there = task_ids.iter().all(|t| tis.iter().any(|(id, _)| id == t));
        met_if(every_task_there && waited.iter().all(|s| in_states(*s, &self.allowed_states)))
    }

    /// What a poke finds when the instances of the group's tasks in the other run are in
    /// `states`. As Airflow counts a group: only when all of them are in the states.
    pub fn judge_group(
        &self,
        dag_id: &str,
        group_id: &str,
        states: &[TaskState],
    ) -> ExternalVerdict {
        let all_in =
            |wanted: &[String]| !states.is_empty() && states.iter().all(|s| in_states(*s, wanted));
        if all_in(&self.failed_states) {
            return ExternalVerdict::Failed(format!(
                "The external task_group '{group_id}' in DAG '{dag_id}' failed."
            ));
        }
        if all_in(&self.skipped_states) {
            return ExternalVerdict::Skipped(format!(
                "The external task_group '{group_id}' in DAG {dag_id} reached a state in our \
                 states-to-skip-on list. Skipping."
            ));
        }
        met_if(all_in(&self.allowed_states))
    }

    /// `waits for <dag>.<tasks>`, as a task's command is shown.
    pub fn summary(&self) -> String {
        match &self.target {
            ExternalTarget::Run => format!("waits for a run of {}", self.external_dag_id),
            ExternalTarget::Tasks { task_ids } => {
                format!("waits for {}.{}", self.external_dag_id, task_ids.join(","))
            }
            ExternalTarget::Group { group_id } => {
                format!("waits for group {}.{group_id}", self.external_dag_id)
            }
        }
    }
}

/// The ids of the tasks (of a DAG's `tasks`) in the task group `group_id` or a group nested
/// in it: by the group they name, or by the group's prefix of their id (Airflow's
/// `prefix_group_id`).
pub fn group_members<'a>(tasks: &'a [Task], group_id: &str) -> Vec<&'a str> {
    let prefix = format!("{group_id}.");
    tasks
        .iter()
        .filter(|t| {
            t.task_group
                .as_deref()
                .is_some_and(|g| g == group_id || g.starts_with(&prefix))
                || t.task_id.starts_with(&prefix)
        })
        .map(|t| t.task_id.as_str())
        .collect()
}

fn in_states(state: TaskState, states: &[String]) -> bool {
    states.iter().any(|s| s == state.as_str())
}

fn met_if(met: bool) -> ExternalVerdict {
    if met {
        ExternalVerdict::Met
    } else {
        ExternalVerdict::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sensor(target: ExternalTarget) -> ExternalTaskSensor {
        ExternalTaskSensor {
            external_dag_id: "up".into(),
            target,
            allowed_states: default_allowed_states(),
            failed_states: vec!["failed".into()],
            skipped_states: vec![],
            execution_delta_secs: None,
            check_existence: false,
        }
    }

    fn tasks(ids: &[&str]) -> ExternalTarget {
        ExternalTarget::Tasks {
            task_ids: ids.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn listed_tasks_are_met_only_when_every_instance_of_each_is_allowed() {
        let s = sensor(tasks(&["a", "b"]));
        let ids = vec!["a".to_string(), "b".to_string()];
        use TaskState::*;
        let check = |tis: &[(&str, TaskState)]| s.judge_tasks("up", &ids, tis);
        assert_eq!(check(&[]), ExternalVerdict::Pending);
        assert_eq!(check(&[("a", Success)]), ExternalVerdict::Pending);
        assert_eq!(
            check(&[("a", Success), ("b", Running), ("c", Failed)]),
            ExternalVerdict::Pending
        );
        assert_eq!(
            check(&[("a", Success), ("b", Success), ("c", Failed)]),
            ExternalVerdict::Met
        );
        assert_eq!(
            check(&[("a", Success), ("b", Success), ("b", Queued)]),
            ExternalVerdict::Pending
        );
        assert!(matches!(
            check(&[("a", Running), ("b", Failed)]),
            ExternalVerdict::Failed(m) if m == "Some of the external tasks [\"a\", \"b\"] in DAG up failed."
        ));
    }

    #[test]
    fn a_group_counts_only_when_all_of_its_instances_are_in_the_states() {
        let mut s = sensor(ExternalTarget::Group {
            group_id: "g".into(),
        });
        s.skipped_states = vec!["skipped".into()];
        use TaskState::*;
        let check = |states: &[TaskState]| s.judge_group("up", "g", states);
        assert_eq!(check(&[]), ExternalVerdict::Pending);
        assert_eq!(check(&[Success, Failed]), ExternalVerdict::Pending);
        assert_eq!(check(&[Success, Success]), ExternalVerdict::Met);
        assert!(matches!(
            check(&[Failed, Failed]),
            ExternalVerdict::Failed(_)
        ));
        assert!(matches!(check(&[Skipped]), ExternalVerdict::Skipped(_)));
    }

    #[test]
    fn a_groups_members_are_named_by_their_group_or_its_prefix() {
        let mut named = crate::Task::new("a", crate::Operator::Empty);
        named.task_group = Some("g".into());
        let mut nested = crate::Task::new("b", crate::Operator::Empty);
        nested.task_group = Some("g.inner".into());
        let tasks = vec![
            named,
            nested,
            crate::Task::new("g.c", crate::Operator::Empty),
            crate::Task::new("gx", crate::Operator::Empty),
        ];
        assert_eq!(group_members(&tasks, "g"), vec!["a", "b", "g.c"]);
        assert_eq!(group_members(&tasks, "g.inner"), vec!["b"]);
    }

    #[test]
    fn a_whole_dag_is_judged_by_its_run_state() {
        let s = ExternalTaskSensor {
            failed_states: vec!["failed".into()],
            ..sensor(ExternalTarget::Run)
        };
        assert_eq!(s.judge_runs("up", &[]), ExternalVerdict::Pending);
        assert_eq!(
            s.judge_runs("up", &[DagRunState::Running]),
            ExternalVerdict::Pending
        );
        assert_eq!(
            s.judge_runs("up", &[DagRunState::Success]),
            ExternalVerdict::Met
        );
        assert_eq!(
            s.judge_runs("up", &[DagRunState::Failed]),
            ExternalVerdict::Failed("The external DAG up failed.".into())
        );
    }

    #[test]
    fn states_are_checked_as_airflow_checks_them() {
        let mut s = sensor(tasks(&["a"]));
        assert_eq!(s.validate(), Ok(()));
        s.skipped_states = vec!["success".into()];
        assert_eq!(s.validate(), Err(ExternalSensorError::DuplicateStates));
        s.skipped_states = vec!["nope".into()];
        assert!(matches!(
            s.validate(),
            Err(ExternalSensorError::UnknownState(state, "task", _)) if state == "nope"
        ));
        let mut s = sensor(ExternalTarget::Run);
        s.skipped_states = vec!["upstream_failed".into()];
        assert!(matches!(
            s.validate(),
            Err(ExternalSensorError::UnknownState(_, "DAG run", _))
        ));
        assert_eq!(
            sensor(tasks(&["a", "a"])).validate(),
            Err(ExternalSensorError::DuplicateTaskIds)
        );
    }

    #[test]
    fn the_execution_delta_looks_back() {
        let mut s = sensor(ExternalTarget::Run);
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 6, 0, 0).unwrap();
        assert_eq!(s.target_date(at), at);
        s.execution_delta_secs = Some(6 * 3600);
        assert_eq!(
            s.target_date(at),
            Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap()
        );
        s.execution_delta_secs = Some(-3600);
        assert_eq!(
            s.target_date(at),
            Utc.with_ymd_and_hms(2026, 1, 2, 7, 0, 0).unwrap()
        );
    }
}

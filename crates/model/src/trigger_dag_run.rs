//! A task that starts a run of another DAG (Airflow's `TriggerDagRunOperator`), and optionally
//! waits for it to end.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::DagRunState;

/// Airflow's default `poke_interval` of a `TriggerDagRunOperator`.
pub const DEFAULT_POKE_INTERVAL: Duration = Duration::from_secs(60);

/// The XCom key under which the triggered run's id is pushed (Airflow's `XCOM_RUN_ID`).
pub const XCOM_RUN_ID: &str = "trigger_run_id";

/// What a trigger task starts. `trigger_dag_id`, `trigger_run_id`, `logical_date` and the
/// strings inside `conf` are templates (Airflow's `template_fields`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerDagRun {
    pub trigger_dag_id: String,
    /// The run id; absent: `manual__<logical date>`, as Airflow names a triggered run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_run_id: Option<String>,
    /// The triggered run's conf (a JSON object).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// An instant (RFC 3339 or a date) once rendered; absent: the time of the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<String>,
    /// A run with that id already exists: clear it so it runs again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_dag_run: bool,
    /// Keep the task running until the triggered run is in `allowed_states` or
    /// `failed_states`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait_for_completion: bool,
    /// Between two looks at the triggered run's state (seconds in the serialized form).
    #[serde(default = "default_poke_interval", with = "crate::dag::duration_secs")]
    pub poke_interval: Duration,
    /// Default `[success]`.
    #[serde(default = "default_allowed_states")]
    pub allowed_states: Vec<DagRunState>,
    /// Default `[failed]`.
    #[serde(default = "default_failed_states")]
    pub failed_states: Vec<DagRunState>,
    /// A run with that id already exists: skip this task instead of failing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_when_already_exists: bool,
}

fn default_poke_interval() -> Duration {
    DEFAULT_POKE_INTERVAL
}

pub fn default_allowed_states() -> Vec<DagRunState> {
    vec![DagRunState::Success]
}

pub fn default_failed_states() -> Vec<DagRunState> {
    vec![DagRunState::Failed]
}

/// What a wait for the triggered run concludes from one look at its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitVerdict {
    /// In `allowed_states`: the task succeeds.
    Done,
    /// In `failed_states`: the task fails.
    Failed,
    /// Neither yet: look again after `poke_interval`.
    Waiting,
}

impl TriggerDagRun {
    /// A trigger of `dag_id` with Airflow's defaults.
    pub fn new(dag_id: impl Into<String>) -> Self {
        TriggerDagRun {
            trigger_dag_id: dag_id.into(),
            trigger_run_id: None,
            conf: serde_json::Map::new(),
            logical_date: None,
            reset_dag_run: false,
            wait_for_completion: false,
            poke_interval: DEFAULT_POKE_INTERVAL,
            allowed_states: default_allowed_states(),
            failed_states: default_failed_states(),
            skip_when_already_exists: false,
        }
    }

    /// `trigger <dag_id>`, as a task's command is shown.
    pub fn summary(&self) -> String {
        format!("trigger {}", self.trigger_dag_id)
    }

    /// As Airflow's runner checks the failed states first: a state in both lists fails.
    pub fn verdict(&self, state: DagRunState) -> WaitVerdict {
        if self.failed_states.contains(&state) {
            WaitVerdict::Failed
        } else if self.allowed_states.contains(&state) {
            WaitVerdict::Done
        } else {
            WaitVerdict::Waiting
        }
    }

    /// The poke interval, at least a millisecond: a zero would spin.
    pub fn poke_every(&self) -> Duration {
        self.poke_interval.max(Duration::from_millis(1))
    }
}

/// An instant as Airflow's `timezone.parse` reads one: RFC 3339, or a date or a time without
/// a zone (UTC).
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_dates_parse_as_airflows_timezone_parse_does() {
        let at = |s: &str| parse_instant(s).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2026-01-02T03:04:05+02:00").as_deref(),
            Some("2026-01-02T01:04:05+00:00")
        );
        assert_eq!(
            at("2026-01-02T03:04:05").as_deref(),
            Some("2026-01-02T03:04:05+00:00")
        );
        assert_eq!(
            at("2026-01-02 03:04:05.5").as_deref(),
            Some("2026-01-02T03:04:05.500+00:00")
        );
        assert_eq!(
            at("2026-01-02").as_deref(),
            Some("2026-01-02T00:00:00+00:00")
        );
        assert_eq!(at("yesterday"), None);
    }

    #[test]
    fn failed_states_win_over_allowed_states_and_other_states_wait() {
        let mut trigger = TriggerDagRun::new("child");
        assert_eq!(trigger.verdict(DagRunState::Success), WaitVerdict::Done);
        assert_eq!(trigger.verdict(DagRunState::Failed), WaitVerdict::Failed);
        assert_eq!(trigger.verdict(DagRunState::Running), WaitVerdict::Waiting);
        assert_eq!(trigger.verdict(DagRunState::Queued), WaitVerdict::Waiting);
        trigger.allowed_states = vec![DagRunState::Success, DagRunState::Failed];
        assert_eq!(trigger.verdict(DagRunState::Failed), WaitVerdict::Failed);
        trigger.failed_states = vec![];
        assert_eq!(trigger.verdict(DagRunState::Failed), WaitVerdict::Done);
    }

    #[test]
    fn absent_keys_take_airflows_defaults() {
        let trigger: TriggerDagRun =
            serde_json::from_value(serde_json::json!({"trigger_dag_id": "child"}))
                .expect("a trigger");
        assert_eq!(trigger, TriggerDagRun::new("child"));
        assert_eq!(trigger.poke_every(), Duration::from_secs(60));
    }
}

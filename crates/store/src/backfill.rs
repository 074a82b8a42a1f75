//! Backfills (Airflow 3): runs of a DAG for a range of past logical dates, created by the
//! schedulers a few at a time. The whole plan lives in the store, so a backfill survives
//! restarts and failovers, and each date is taken by exactly one scheduler.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DagRunState, NewDagRun, Result};

/// What a backfill does with a date that already has a run (Airflow's `reprocess_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReprocessBehavior {
    /// Skip every date that has a run.
    #[default]
    None,
    /// Run again the dates whose run failed.
    Failed,
    /// Run again every date whose run finished.
    Completed,
}

impl ReprocessBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ReprocessBehavior::None => "none",
            ReprocessBehavior::Failed => "failed",
            ReprocessBehavior::Completed => "completed",
        }
    }

    /// Whether an existing run in `state` is run again; queued and running runs never are.
    pub fn reprocesses(self, state: DagRunState) -> bool {
        match self {
            ReprocessBehavior::None => false,
            ReprocessBehavior::Failed => state == DagRunState::Failed,
            ReprocessBehavior::Completed => {
                matches!(state, DagRunState::Failed | DagRunState::Success)
            }
        }
    }
}

impl fmt::Display for ReprocessBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReprocessBehavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ReprocessBehavior::None),
            "failed" => Ok(ReprocessBehavior::Failed),
            "completed" => Ok(ReprocessBehavior::Completed),
            other => Err(format!(
                "unknown reprocess behavior {other:?}; expected none, failed or completed"
            )),
        }
    }
}

/// One date of a new backfill, in the order the runs are to be created.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillDate {
    pub logical_date: DateTime<Utc>,
    /// The existing run this date runs again (cleared when the date is taken).
    pub dag_run_id: Option<i64>,
    /// Why the date is skipped (`already exists`, `in flight`); `None` when it runs.
    pub exception_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBackfill {
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    pub dag_run_conf: serde_json::Map<String, serde_json::Value>,
    pub reprocess_behavior: ReprocessBehavior,
    pub max_active_runs: u32,
    pub run_backwards: bool,
    /// Every date between `from_date` and `to_date`, already in creation order.
    pub dates: Vec<BackfillDate>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backfill {
    pub id: i64,
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    pub dag_run_conf: serde_json::Map<String, serde_json::Value>,
    pub reprocess_behavior: ReprocessBehavior,
    pub max_active_runs: u32,
    pub run_backwards: bool,
    pub is_paused: bool,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One date of a backfill and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillDagRun {
    pub backfill_id: i64,
    pub logical_date: DateTime<Utc>,
    pub sort_ordinal: i64,
    /// The run of this date: the existing run to reprocess, or the run a scheduler created.
    pub dag_run_id: Option<i64>,
    pub exception_reason: Option<String>,
    /// Whether a scheduler has created (or cleared) this date's run.
    pub taken: bool,
    /// The state of `dag_run_id`'s run, when there is one.
    pub run_state: Option<DagRunState>,
}

impl BackfillDagRun {
    /// Neither skipped nor taken yet: a scheduler still has to create its run.
    pub fn is_pending(&self) -> bool {
        !self.taken && self.exception_reason.is_none()
    }
}

/// What a scheduler does to take a date of a backfill.
#[derive(Debug, Clone)]
pub enum TakeBackfillDate {
    /// Create this run.
    Create(Box<NewDagRun>),
    /// Run again the date's existing run: every task instance is cleared and the run becomes
    /// a queued backfill run, in the same transaction as the taking.
    Reprocess { now: DateTime<Utc> },
}

#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Records a backfill and its dates in one transaction. A DAG has at most one backfill
    /// that is not completed: another is a `Conflict`; an unknown DAG is `NotFound`.
    async fn create_backfill(&self, backfill: NewBackfill) -> Result<Backfill>;
    async fn get_backfill(&self, id: i64) -> Result<Backfill>;
    /// Backfills (of `dag_id`, or all), oldest first.
    async fn list_backfills(&self, dag_id: Option<&str>) -> Result<Vec<Backfill>>;
    /// The dates of a backfill in creation order, with their runs' states.
    async fn backfill_dag_runs(&self, id: i64) -> Result<Vec<BackfillDagRun>>;
    /// Pauses or resumes a backfill; a completed one is a `Conflict`.
    async fn set_backfill_paused(
        &self,
        id: i64,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Backfill>;
    /// Cancels a backfill as Airflow does: it is paused and completed, no more runs are
    /// created, and its queued runs fail; running runs finish. A completed one is unchanged.
    async fn cancel_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<Backfill>;
    /// Backfills neither paused nor completed: the ones schedulers advance.
    async fn active_backfills(&self) -> Result<Vec<Backfill>>;
    /// Takes the date `sort_ordinal` of backfill `id` and creates (or marks for reprocessing)
    /// its run, in one transaction, only if the date is still pending and the backfill
    /// active. Returns the run's id when this call took the date, `None` when it was taken
    /// already (another scheduler) or the backfill is paused or completed.
    async fn take_backfill_date(
        &self,
        id: i64,
        sort_ordinal: i64,
        take: TakeBackfillDate,
    ) -> Result<Option<i64>>;
    /// Marks a backfill completed (every date taken or skipped, every run finished); `false`
    /// when it was completed already.
    async fn complete_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<bool>;
}

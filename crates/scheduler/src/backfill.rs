//! Backfills (Airflow 3): planning one (which dates, which existing runs are run again) and
//! advancing the active ones, a few runs at a time.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tracing::{debug, info};
use updraft_model::{timetable, Schedule};
use updraft_store::{
    BackfillDate, DagRunState, NewBackfill, ReprocessBehavior, RunType, Store, StoreError,
    TakeBackfillDate,
};

use crate::{new_dag_run, Scheduler, SchedulerError, TriggerRequest};

/// More dates than this in one backfill is almost certainly a mistake (a minutely DAG over
/// years); the user narrows the range or splits it.
pub const MAX_BACKFILL_DATES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be a backfill (no schedule, an empty or reversed range).
    #[error("{0}")]
    Invalid(String),
}

/// What a user asks for: `backfill create` or `POST /api/v2/backfills`.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    pub run_backwards: bool,
    pub dag_run_conf: serde_json::Map<String, serde_json::Value>,
    pub reprocess_behavior: ReprocessBehavior,
    /// `None`: Airflow's default of 10.
    pub max_active_runs: Option<u32>,
}

/// Airflow's default `max_active_runs` of a backfill.
pub const DEFAULT_BACKFILL_MAX_ACTIVE_RUNS: u32 = 10;

/// The logical dates of `dag`'s schedule from `from` to `to`, both included, oldest first.
pub fn backfill_dates(
    dag: &updraft_model::Dag,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, BackfillError> {
    if matches!(dag.schedule, Schedule::None) {
        return Err(BackfillError::Invalid(format!(
            "DAG {:?} has no schedule: there are no logical dates to backfill",
            dag.dag_id
        )));
    }
    if from > to {
        return Err(BackfillError::Invalid(format!(
            "from_date {from} is after to_date {to}"
        )));
    }
    let mut dates: Vec<_> = timetable::next_fire_times(
        dag,
        from - Duration::microseconds(1),
        MAX_BACKFILL_DATES + 1,
    )
    .into_iter()
    .filter(|date| *date <= to)
    .collect();
    if dates.len() > MAX_BACKFILL_DATES {
        return Err(BackfillError::Invalid(format!(
            "the range holds more than {MAX_BACKFILL_DATES} logical dates; narrow it"
        )));
    }
    dates.sort();
    Ok(dates)
}

/// The backfill `request` makes, in creation order: each date with the existing run it runs
/// again, or why it is skipped (Airflow's `already exists` and `in flight`).
pub async fn plan_backfill(
    store: &dyn Store,
    request: &BackfillRequest,
    now: DateTime<Utc>,
) -> Result<NewBackfill, BackfillError> {
    let record = store.get_dag(&request.dag_id).await?;
    let dag = store
        .get_dag_version(&request.dag_id, record.version)
        .await?;
    let mut dates = backfill_dates(&dag, request.from_date, request.to_date)?;
    if request.run_backwards {
        dates.reverse();
    }
    let max_active_runs = request
        .max_active_runs
        .unwrap_or(DEFAULT_BACKFILL_MAX_ACTIVE_RUNS);
    if max_active_runs == 0 {
        return Err(BackfillError::Invalid(
            "max_active_runs must be at least 1".to_string(),
        ));
    }
    // The latest run of each logical date decides (several manual runs may share one).
    let mut existing: HashMap<DateTime<Utc>, (i64, DagRunState)> = HashMap::new();
    for run in store.list_dag_runs(&request.dag_id).await? {
        let entry = existing
            .entry(run.logical_date)
            .or_insert((run.id, run.state));
        if run.id > entry.0 {
            *entry = (run.id, run.state);
        }
    }
    let dates = dates
        .into_iter()
        .map(|logical_date| {
            let (dag_run_id, exception_reason) = match existing.get(&logical_date) {
                None => (None, None),
                Some((_, DagRunState::Queued | DagRunState::Running)) => {
                    (None, Some("in flight".to_string()))
                }
                Some((id, state)) if request.reprocess_behavior.reprocesses(*state) => {
                    (Some(*id), None)
                }
                Some(_) => (None, Some("already exists".to_string())),
            };
            BackfillDate {
                logical_date,
                dag_run_id,
                exception_reason,
            }
        })
        .collect();
    Ok(NewBackfill {
        dag_id: request.dag_id.clone(),
        from_date: request.from_date,
        to_date: request.to_date,
        dag_run_conf: request.dag_run_conf.clone(),
        reprocess_behavior: request.reprocess_behavior,
        max_active_runs,
        run_backwards: request.run_backwards,
        dates,
        now,
    })
}

impl Scheduler {
    /// Creates the next runs of every active backfill, up to its `max_active_runs` unfinished
    /// at once, in its order; completes the backfills with nothing left to do. Each date is
    /// taken by a compare-and-set in the store, so schedulers doing this at the same moment
    /// create each run once.
    pub(crate) async fn advance_backfills(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        for backfill in self.store.active_backfills().await? {
            let dates = self.store.backfill_dag_runs(backfill.id).await?;
            let active = dates
                .iter()
                .filter(|d| {
                    d.taken
                        && matches!(
                            d.run_state,
                            Some(DagRunState::Queued | DagRunState::Running)
                        )
                })
                .count() as u32;
            let pending: Vec<_> = dates.iter().filter(|d| d.is_pending()).collect();
            if pending.is_empty() {
                if active == 0 && self.store.complete_backfill(backfill.id, now).await? {
                    info!(backfill_id = backfill.id, dag_id = %backfill.dag_id, "backfill completed");
                }
                continue;
            }
            let room = backfill.max_active_runs.saturating_sub(active) as usize;
            if room == 0 {
                continue;
            }
            let record = match self.store.get_dag(&backfill.dag_id).await {
                Ok(record) => record,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(graph) = self.dag_graph(&record).await? else {
                continue;
            };
            for date in pending.into_iter().take(room) {
                let take = if date.dag_run_id.is_some() {
                    TakeBackfillDate::Reprocess { now }
                } else {
                    let request = TriggerRequest {
                        run_type: RunType::Backfill,
                        run_id: None,
                        logical_date: Some(date.logical_date),
                        conf: backfill.dag_run_conf.clone(),
                    };
                    let run = new_dag_run(&graph.dag, record.version, request, now, None);
                    TakeBackfillDate::Create(Box::new(run))
                };
                match self
                    .store
                    .take_backfill_date(backfill.id, date.sort_ordinal, take)
                    .await?
                {
                    Some(run) => {
                        info!(backfill_id = backfill.id, dag_id = %backfill.dag_id, logical_date = %date.logical_date, dag_run_id = run, "backfill run created");
                        self.signal.everything_changed();
                    }
                    None => debug!(backfill_id = backfill.id, "backfill date taken already"),
                }
            }
        }
        Ok(())
    }
}

//! `GET /dags/{dag_id}/backfills`: the DAG's backfills (newest first, with their progress and
//! pause / unpause / cancel buttons) and the form that creates one. As every write of the UI,
//! the buttons and the form go through the public `/api/v2/backfills` (`static/app.js` for
//! the buttons, `static/dag.js` for the form and its dry run), so the API checks the role
//! and the request, and its message shows on the form.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use updraft_model::Schedule;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{Backfill, BackfillDagRun, DagRunState};

use super::{header, load, page, DagHeader};
use crate::layout::Page;
use crate::links;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

/// The page lists this many backfills, the newest; each costs one query for its progress.
const SHOWN: usize = 50;

/// What a backfill is doing, as the page names it.
fn state_of(b: &Backfill) -> &'static str {
    match (b.completed_at.is_some(), b.is_paused) {
        // Cancelling pauses and completes; a backfill that ran out of dates is not paused.
        (true, true) => "cancelled",
        (true, false) => "completed",
        (false, true) => "paused",
        (false, false) => "running",
    }
}

/// (runs finished, runs to make): dates skipped because they have a run are not counted.
fn progress(dates: &[BackfillDagRun]) -> (usize, usize) {
    let planned = dates.iter().filter(|d| d.exception_reason.is_none());
    let total = planned.clone().count();
    let done = planned
        .filter(|d| {
            d.taken
                && matches!(
                    d.run_state,
                    Some(DagRunState::Success | DagRunState::Failed)
                )
        })
        .count();
    (done, total)
}

/// A row of the backfills table.
pub(crate) struct BackfillRow {
    pub id: i64,
    pub from: Moment,
    pub to: Moment,
    pub reprocess: &'static str,
    pub max_active_runs: u32,
    pub run_backwards: bool,
    pub state: &'static str,
    pub done: usize,
    pub total: usize,
    pub created: Moment,
    pub completed: Option<Moment>,
    /// `/api/v2/backfills/{id}`, to which the actions add `/pause`, `/unpause`, `/cancel`.
    pub api: String,
}

#[derive(Template)]
#[template(path = "dag/backfills.html")]
struct BackfillsPage {
    page: Page,
    dag: DagHeader,
    rows: Vec<BackfillRow>,
    /// How many backfills the DAG has, shown or not.
    total: usize,
    can_create: bool,
    can_edit: bool,
    /// Whether the DAG has a schedule, without which there is nothing to backfill.
    scheduled: bool,
    /// The form's initial range: the last week, in UTC (`datetime-local` values).
    from_default: String,
    to_default: String,
}

fn local_input(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

pub(crate) async fn page_route(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let mut backfills = state.store().list_backfills(Some(&dag_id)).await?;
    let total = backfills.len();
    backfills.reverse();
    backfills.truncate(SHOWN);
    let mut rows = Vec::with_capacity(backfills.len());
    for b in backfills {
        let (done, planned) = progress(&state.store().backfill_dag_runs(b.id).await?);
        rows.push(BackfillRow {
            id: b.id,
            from: Moment::in_dag_tz(b.from_date, dag.timezone),
            to: Moment::in_dag_tz(b.to_date, dag.timezone),
            reprocess: b.reprocess_behavior.as_str(),
            max_active_runs: b.max_active_runs,
            run_backwards: b.run_backwards,
            state: state_of(&b),
            done,
            total: planned,
            created: Moment::new(b.created_at),
            completed: b.completed_at.map(Moment::new),
            api: format!("/api/v2/backfills/{}", b.id),
        });
    }
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or_else(Utc::now);
    page(&BackfillsPage {
        page: Page::new(&session, "dags"),
        can_create: session.allows(Action::Create, Resource::DagRun, Some(&dag_id)),
        can_edit: session.allows(Action::Edit, Resource::DagRun, Some(&dag_id)),
        scheduled: !matches!(dag.schedule, Schedule::None),
        dag: header(&session, &record, &dag, "backfills"),
        rows,
        total,
        from_default: local_input(today - chrono::Duration::days(7)),
        to_default: local_input(today),
    })
}

impl BackfillsPage {
    fn runs_href(&self) -> String {
        format!("{}/runs", links::dag(&self.dag.dag_id))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn date(taken: bool, skipped: bool, run_state: Option<DagRunState>) -> BackfillDagRun {
        BackfillDagRun {
            backfill_id: 1,
            logical_date: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            sort_ordinal: 0,
            dag_run_id: run_state.map(|_| 7),
            exception_reason: skipped.then(|| "already exists".to_string()),
            taken,
            run_state,
        }
    }

    #[test]
    fn progress_counts_finished_runs_of_the_dates_the_backfill_runs() {
        let dates = [
            date(true, false, Some(DagRunState::Success)),
            date(true, false, Some(DagRunState::Failed)),
            date(true, false, Some(DagRunState::Running)),
            date(false, false, None),
            // Skipped: its run is someone else's, finished or not.
            date(false, true, Some(DagRunState::Success)),
            // To reprocess but not taken yet: the finished state is the old run's.
            date(false, false, Some(DagRunState::Failed)),
        ];
        assert_eq!(progress(&dates), (2, 5));
        assert_eq!(progress(&[]), (0, 0));
    }

    #[test]
    fn a_cancelled_backfill_is_told_from_one_that_ran_out_of_dates() {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let mut b = Backfill {
            id: 1,
            dag_id: "etl".into(),
            from_date: at,
            to_date: at,
            dag_run_conf: Default::default(),
            reprocess_behavior: Default::default(),
            max_active_runs: 10,
            run_backwards: false,
            is_paused: false,
            created_at: at,
            completed_at: None,
            updated_at: at,
        };
        assert_eq!(state_of(&b), "running");
        b.is_paused = true;
        assert_eq!(state_of(&b), "paused");
        b.completed_at = Some(at);
        assert_eq!(state_of(&b), "cancelled");
        b.is_paused = false;
        assert_eq!(state_of(&b), "completed");
    }
}

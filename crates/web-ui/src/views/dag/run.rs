//! `GET /dags/{dag_id}/runs/{run_id}`: a run, its task instances (a live region), and the
//! actions on it — clear with a dry-run preview, mark success or failed, the note.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{DagRun, StoreError};

use super::info::{run_row, RunRow};
use super::{dur, header, load, page, DagHeader};
use crate::grid::seconds;
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct FragmentQuery {
    fragment: Option<String>,
}

/// A task instance's row.
pub(crate) struct TiRow {
    pub task_id: String,
    pub href: String,
    pub state: &'static str,
    pub try_number: u32,
    pub start: Option<Moment>,
    pub end: Option<Moment>,
    pub duration: String,
    pub hostname: Option<String>,
}

#[derive(Template)]
#[template(path = "dag/run_region.html")]
struct RunRegion {
    live: String,
    /// The run's database id, for `data-live-runs`.
    run_db_id: i64,
    run: RunRow,
    tis: Vec<TiRow>,
}

#[derive(Template)]
#[template(path = "dag/run.html")]
struct RunPage {
    page: Page,
    dag: DagHeader,
    run_id: String,
    region: String,
    conf: String,
    note: String,
    can_edit_run: bool,
    can_clear: bool,
    run_api: String,
    clear_api: String,
    /// Clear one task (`None`: the run's task instances).
    clear_task: Option<String>,
    clear_map_index: Option<i64>,
}

/// The run, or a 404 page.
pub(crate) async fn get_run(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
) -> Result<DagRun, UiError> {
    match state.store().get_dag_run(dag_id, run_id).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(_)) => Err(UiError::NotFound(format!(
            "The DAG `{dag_id}` has no run `{run_id}`."
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn page_handler(
    state: RestState,
    session: Session,
    dag_id: String,
    run_id: String,
    fragment: Option<String>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let run = get_run(&state, &dag_id, &run_id).await?;
    let mut tis = state.store().task_instances(run.id).await?;
    let order = |task_id: &str| {
        dag.tasks
            .iter()
            .position(|t| t.task_id == task_id)
            .unwrap_or(usize::MAX)
    };
    tis.sort_by_key(|ti| order(&ti.task_id));
    let now = Utc::now();
    let tz = dag.timezone;
    let region = RunRegion {
        live: format!("{}?fragment=run", links::dag_run(&dag_id, &run_id)),
        run: run_row(&run, tz),
        run_db_id: run.id,
        tis: tis
            .iter()
            .map(|ti| TiRow {
                task_id: ti.task_id.clone(),
                href: links::task_try(&dag_id, &run_id, &ti.task_id, ti.try_number.max(1)),
                state: ti.state.as_str(),
                try_number: ti.try_number,
                start: ti.start_date.map(|t| Moment::in_dag_tz(t, tz)),
                end: ti.end_date.map(|t| Moment::in_dag_tz(t, tz)),
                duration: dur(&seconds(ti.start_date, ti.end_date, now)),
                hostname: ti.hostname.clone(),
            })
            .collect(),
    };
    if crate::views::wants_fragment(fragment.as_deref(), "run")? {
        return Ok(page(&region)?.into_response());
    }
    let api_dag = links::encode(&dag_id);
    page(&RunPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "runs"),
        run_id: run_id.clone(),
        region: region.render()?,
        conf: serde_json::to_string_pretty(&run.conf).unwrap_or_default(),
        note: run.note.clone().unwrap_or_default(),
        can_edit_run: session.allows(Action::Edit, Resource::DagRun, Some(&dag_id)),
        can_clear: session.allows(Action::Edit, Resource::TaskInstance, Some(&dag_id)),
        run_api: format!("/api/v2/dags/{api_dag}/dagRuns/{}", links::encode(&run_id)),
        clear_api: format!("/api/v2/dags/{api_dag}/clearTaskInstances"),
        clear_task: None,
        clear_map_index: None,
    })
}

pub(crate) async fn page_route(
    State(state): State<RestState>,
    session: Session,
    Path((dag_id, run_id)): Path<(String, String)>,
    QueryParams(query): QueryParams<FragmentQuery>,
) -> Result<Response, UiError> {
    page_handler(state, session, dag_id, run_id, query.fragment).await
}

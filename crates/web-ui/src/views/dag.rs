//! The pages of one DAG: the header they share (pause toggle, trigger button, tabs) and the
//! grid (`/dags/{dag_id}`); the other tabs (backfills among them) live in the submodules.

mod backfills;
mod charts;
mod info;
mod run;
mod task_instance;
mod trigger;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Deserialize;
use updraft_model::Dag;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{
    DagRecord, DagRunQuery, DagRunSortField, Sort, StoreError, TaskInstanceSummary, Window,
};

use crate::assets::Asset;
use crate::grid::{self, Grid, DEFAULT_RUNS, MAX_RUNS};
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::{self, Moment};
use crate::UiError;

pub(crate) fn routes() -> Router<RestState> {
    Router::new()
        .route("/dags/{dag_id}", get(grid_page))
        .route("/dags/{dag_id}/graph", get(charts::graph))
        .route("/dags/{dag_id}/gantt", get(charts::gantt))
        .route("/dags/{dag_id}/durations", get(charts::durations))
        .route("/dags/{dag_id}/code", get(info::code))
        .route("/dags/{dag_id}/details", get(info::details))
        .route("/dags/{dag_id}/runs", get(info::runs))
        .route("/dags/{dag_id}/tasks", get(info::tasks))
        .route("/dags/{dag_id}/audit", get(info::audit))
        .route("/dags/{dag_id}/trigger", get(trigger::form))
        .route("/dags/{dag_id}/backfills", get(backfills::page_route))
        .route("/dags/{dag_id}/runs/{run_id}", get(run::page_route))
        .route(
            "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}",
            get(task_instance::page_route),
        )
        .route(
            "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/log",
            get(task_instance::download_log),
        )
}

/// The tabs of a DAG's pages: (key, label, path after `/dags/{id}`).
pub(crate) const TABS: &[(&str, &str, &str)] = &[
    ("grid", "Grid", ""),
    ("graph", "Graph", "/graph"),
    ("gantt", "Gantt", "/gantt"),
    ("durations", "Durations", "/durations"),
    ("code", "Code", "/code"),
    ("details", "Details", "/details"),
    ("runs", "Runs", "/runs"),
    ("backfills", "Backfills", "/backfills"),
    ("tasks", "Tasks", "/tasks"),
    ("audit", "Audit log", "/audit"),
];

/// What the header of every DAG page shows.
#[derive(Debug, Clone)]
pub(crate) struct DagHeader {
    pub dag_id: String,
    pub href: String,
    pub description: Option<String>,
    pub is_paused: bool,
    pub schedule: String,
    pub tags: Vec<String>,
    pub next_run: Option<Moment>,
    pub tab: &'static str,
    pub can_trigger: bool,
    pub can_pause: bool,
    /// The DAG views' script and styles.
    pub js: String,
    pub css: String,
}

impl DagHeader {
    /// `aria-current` for a tab.
    pub fn current(&self, tab: &str) -> &'static str {
        if self.tab == tab {
            "page"
        } else {
            "false"
        }
    }

    pub fn tab_href(&self, path: &str) -> String {
        format!("{}{path}", self.href)
    }
}

/// The DAG's record and current definition, or a 404 page.
pub(crate) async fn load(
    state: &RestState,
    dag_id: &str,
) -> Result<(DagRecord, Arc<Dag>), UiError> {
    let record = match state.store().get_dag(dag_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound(_)) => {
            return Err(UiError::NotFound(format!("There is no DAG `{dag_id}`.")))
        }
        Err(e) => return Err(e.into()),
    };
    // Versions never change: the process's cache of them answers after the first read.
    let dag = state.dags().get(dag_id, record.version).await?.dag.clone();
    Ok((record, dag))
}

pub(crate) fn header(
    session: &Session,
    record: &DagRecord,
    dag: &Dag,
    tab: &'static str,
) -> DagHeader {
    let id = record.dag_id.as_str();
    DagHeader {
        dag_id: record.dag_id.clone(),
        href: links::dag(id),
        description: record.description.clone(),
        is_paused: record.is_paused,
        schedule: record.schedule.clone(),
        tags: record.tags.clone(),
        next_run: record
            .next_dagrun
            .map(|at| Moment::in_dag_tz(at, dag.timezone)),
        tab,
        can_trigger: session.allows(Action::Create, Resource::DagRun, Some(id)),
        can_pause: session.allows(Action::Edit, Resource::Dag, Some(id)),
        js: Asset::DagJs.url(),
        css: Asset::DagCss.url(),
    }
}

/// The DAG's latest `limit` runs (newest first) and their task instances, in brief.
pub(crate) async fn recent_runs(
    state: &RestState,
    dag: &Dag,
    limit: u32,
) -> Result<(Vec<updraft_store::DagRun>, Vec<TaskInstanceSummary>), UiError> {
    let runs = state
        .store()
        .query_dag_runs(DagRunQuery {
            dag_ids: Some(vec![dag.dag_id.clone()]),
            sort: vec![Sort {
                field: DagRunSortField::LogicalDate,
                descending: true,
            }],
            window: Window { limit, offset: 0 },
            ..Default::default()
        })
        .await?
        .items;
    if runs.is_empty() {
        return Ok((runs, Vec::new()));
    }
    let tis = state
        .store()
        .task_instance_summaries(runs.iter().map(|r| r.id).collect())
        .await?;
    Ok((runs, tis))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct GridQuery {
    runs: Option<u32>,
    fragment: Option<String>,
    /// `all`: every row in the table at once.
    rows: Option<String>,
}

/// The grid's region: re-rendered alone for `?fragment=grid`.
#[derive(Template)]
#[template(path = "dag/grid_region.html")]
struct GridRegion {
    dag_id: String,
    grid: Grid,
    live: String,
    /// Per column, the start of its cells' links (`/dags/{id}/runs/{run}/tasks/`), and per
    /// row its encoded task id: encoded once, not once per cell.
    run_prefixes: Vec<String>,
    task_paths: Vec<String>,
    /// Rows rendered into the table; the rest come inside a `<template>` that the page's
    /// script moves into the table after the first paint.
    eager_rows: usize,
    /// This grid with every row in the table (without scripts).
    all_rows_href: String,
}

/// A grid of more rows than this shows them first and the rest after the first paint: a
/// 200-task grid of 100 runs is 20,000 cells, whose layout would hold the first screen up.
const EAGER_ROWS: usize = 40;

#[derive(Template)]
#[template(path = "dag/grid.html")]
struct GridPage {
    page: Page,
    dag: DagHeader,
    /// The rendered [`GridRegion`].
    region: String,
    runs: u32,
}

impl GridRegion {
    fn run_href(&self, run_id: &str) -> String {
        links::dag_run(&self.dag_id, run_id)
    }

    /// The newest run's page, where each task's row leads.
    fn task_href(&self, task_id: &str) -> String {
        match self.grid.runs.last() {
            Some(r) => format!(
                "{}#task-{}",
                links::dag_run(&self.dag_id, &r.run_id),
                links::encode(task_id)
            ),
            None => format!("{}/tasks", links::dag(&self.dag_id)),
        }
    }
}

/// The choices of how many runs the grid shows.
pub(crate) const RUN_CHOICES: [u32; 5] = [10, 25, 50, 100, 365];

impl GridPage {
    fn is_runs(&self, n: &u32) -> bool {
        *n == self.runs
    }
}

/// Seconds as the grid and tables show them.
pub(crate) fn dur(seconds: &Option<f64>) -> String {
    seconds.map(time::duration).unwrap_or_default()
}

/// `GET /dags/{dag_id}`: the grid of the last runs (`?runs=`, default 25).
async fn grid_page(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<GridQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let runs = query.runs.unwrap_or(DEFAULT_RUNS).clamp(1, MAX_RUNS);
    let (run_rows, tis) = recent_runs(&state, &dag, runs).await?;
    let task_ids: Vec<String> = dag.tasks.iter().map(|t| t.task_id.clone()).collect();
    let group_of: HashMap<String, String> = dag
        .tasks
        .iter()
        .filter_map(|t| Some((t.task_id.clone(), t.task_group.clone()?)))
        .collect();
    let grid = grid::build(&task_ids, &group_of, run_rows, tis, Utc::now());
    let fragment = crate::views::wants_fragment(query.fragment.as_deref(), "grid")?;
    // A fragment replaces a grid already shown: all of it at once, or its rows would jump.
    let all_rows = fragment || query.rows.as_deref() == Some("all");
    let region = GridRegion {
        eager_rows: if all_rows {
            grid.rows.len()
        } else {
            grid.rows.len().min(EAGER_ROWS)
        },
        all_rows_href: format!("{}?runs={runs}&rows=all", links::dag(&dag_id)),
        run_prefixes: grid
            .runs
            .iter()
            .map(|r| format!("{}/tasks/", links::dag_run(&dag_id, &r.run_id)))
            .collect(),
        task_paths: grid
            .rows
            .iter()
            .map(|r| links::encode(&r.task_id))
            .collect(),
        dag_id: dag_id.clone(),
        grid,
        live: format!("{}?runs={runs}&fragment=grid", links::dag(&dag_id)),
    };
    if fragment {
        return Ok(super::html(&region)?.into_response());
    }
    Ok(super::html(&GridPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "grid"),
        region: region.render()?,
        runs,
    })?
    .into_response())
}

/// An HTML answer, for handlers that also answer other types.
pub(crate) fn page(template: &impl Template) -> Result<Response, UiError> {
    Ok(Html(template.render()?).into_response())
}

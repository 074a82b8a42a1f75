//! The chart tabs of a DAG: Graph (live state colours of one run), Gantt of one run, and the
//! durations of the last runs — SVG laid out in Rust (`crate::svg`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use updraft_model::Dag;
use updraft_rest_api::RestState;
use updraft_store::{DagRun, StoreError, TaskInstance};

use super::{header, load, page, DagHeader};
use crate::grid::{seconds, DEFAULT_RUNS, MAX_RUNS};
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::svg::{durations as durations_svg, gantt as gantt_svg, graph as graph_svg};
use crate::UiError;

/// The states in the charts' legend: (class suffix, label).
pub(crate) const LEGEND: &[(&str, &str)] = &[
    ("queued", "queued"),
    ("running", "running"),
    ("success", "success"),
    ("failed", "failed"),
    ("up_for_retry", "up for retry"),
    ("up_for_reschedule", "up for reschedule"),
    ("deferred", "deferred"),
    ("upstream_failed", "upstream failed"),
    ("skipped", "skipped"),
    ("scheduled", "scheduled"),
    ("removed", "removed"),
    ("none", "no status"),
];

/// How many runs the run pickers offer.
const PICKER_RUNS: u32 = 25;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    run_id: Option<String>,
    runs: Option<u32>,
    fragment: Option<String>,
}

/// A choice of the run picker.
pub(crate) struct RunChoice {
    pub run_id: String,
    pub state: &'static str,
    pub selected: bool,
}

/// A chart with its live region: the page, or the region alone for `?fragment=`.
#[derive(Template)]
#[template(path = "dag/chart_region.html")]
struct ChartRegion {
    name: &'static str,
    live: String,
    svg: String,
    caption: String,
    /// The database id of the run shown (`data-live-runs`), empty for any run.
    runs: String,
}

#[derive(Template)]
#[template(path = "dag/chart.html")]
struct ChartPage {
    page: Page,
    dag: DagHeader,
    title: &'static str,
    choices: Vec<RunChoice>,
    region: String,
    zoom: bool,
    legend: bool,
}

/// The selected run (`?run_id=`, else the newest), its task instances, and the picker's runs.
async fn selected_run(
    state: &RestState,
    dag: &Dag,
    wanted: Option<&str>,
) -> Result<(Option<DagRun>, Vec<TaskInstance>, Vec<RunChoice>), UiError> {
    let runs = state
        .store()
        .query_dag_runs(updraft_store::DagRunQuery {
            dag_ids: Some(vec![dag.dag_id.clone()]),
            sort: vec![updraft_store::Sort {
                field: updraft_store::DagRunSortField::LogicalDate,
                descending: true,
            }],
            window: updraft_store::Window {
                limit: PICKER_RUNS,
                offset: 0,
            },
            ..Default::default()
        })
        .await?
        .items;
    let run = match wanted {
        Some(id) => match state.store().get_dag_run(&dag.dag_id, id).await {
            Ok(run) => Some(run),
            Err(StoreError::NotFound(_)) => {
                return Err(UiError::NotFound(format!(
                    "The DAG `{}` has no run `{id}`.",
                    dag.dag_id
                )))
            }
            Err(e) => return Err(e.into()),
        },
        None => runs.first().cloned(),
    };
    let tis = match &run {
        Some(r) => state.store().task_instances(r.id).await?,
        None => Vec::new(),
    };
    let selected = run.as_ref().map(|r| r.run_id.as_str());
    let choices = runs
        .iter()
        .map(|r| RunChoice {
            run_id: r.run_id.clone(),
            state: r.state.as_str(),
            selected: Some(r.run_id.as_str()) == selected,
        })
        .collect();
    Ok((run, tis, choices))
}

fn live_url(dag_id: &str, tab: &str, run: Option<&DagRun>, fragment: &str) -> String {
    match run {
        Some(r) => format!(
            "{}/{tab}?run_id={}&fragment={fragment}",
            links::dag(dag_id),
            links::encode(&r.run_id)
        ),
        None => format!("{}/{tab}?fragment={fragment}", links::dag(dag_id)),
    }
}

/// `GET /dags/{dag_id}/graph?run_id=`: the DAG laid out left to right, coloured by the run.
pub(crate) async fn graph(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<RunQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let (run, tis, choices) = selected_run(&state, &dag, query.run_id.as_deref()).await?;
    let tasks: Vec<graph_svg::GraphTask> = dag
        .tasks
        .iter()
        .map(|t| {
            let ti = tis.iter().find(|ti| ti.task_id == t.task_id);
            graph_svg::GraphTask {
                task_id: t.task_id.clone(),
                dependencies: t.dependencies.clone(),
                state: ti.map(|ti| ti.state.as_str().to_string()),
                role: t.role,
                href: Some(match (&run, ti) {
                    (Some(r), Some(ti)) => {
                        links::task_try(&dag_id, &r.run_id, &t.task_id, ti.try_number.max(1))
                    }
                    _ => format!(
                        "{}/tasks#task-{}",
                        links::dag(&dag_id),
                        links::encode(&t.task_id)
                    ),
                }),
            }
        })
        .collect();
    let caption = match &run {
        Some(r) => format!("Run {} ({})", r.run_id, r.state.as_str()),
        None => "No runs yet".to_string(),
    };
    let region = ChartRegion {
        name: "graph",
        live: live_url(&dag_id, "graph", run.as_ref(), "graph"),
        svg: graph_svg::render(&tasks, &format!("Graph of the DAG {dag_id}")),
        caption,
        runs: run.as_ref().map(|r| r.id.to_string()).unwrap_or_default(),
    };
    respond(
        &session,
        &record,
        &dag,
        "graph",
        "Graph",
        choices,
        region,
        query.fragment.as_deref(),
        true,
    )
}

/// `GET /dags/{dag_id}/gantt?run_id=`: when each task instance of the run queued and ran.
pub(crate) async fn gantt(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<RunQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let (run, mut tis, choices) = selected_run(&state, &dag, query.run_id.as_deref()).await?;
    let order = |task_id: &str| dag.tasks.iter().position(|t| t.task_id == task_id);
    tis.sort_by(|a, b| {
        let key = |ti: &TaskInstance| {
            (
                ti.queued_at.or(ti.start_date).is_none(),
                ti.queued_at.or(ti.start_date),
            )
        };
        key(a)
            .cmp(&key(b))
            .then(order(&a.task_id).cmp(&order(&b.task_id)))
    });
    let rows: Vec<gantt_svg::GanttRow> = tis
        .iter()
        .map(|ti| gantt_svg::GanttRow {
            task_id: ti.task_id.clone(),
            state: ti.state.as_str().to_string(),
            queued_at: ti.queued_at,
            start: ti.start_date,
            end: ti.end_date,
            href: Some(links::task_try(
                &dag_id,
                &ti.run_id,
                &ti.task_id,
                ti.try_number.max(1),
            )),
        })
        .collect();
    let caption = match &run {
        Some(r) => format!(
            "Run {} ({}): grey while queued, in the state's colour while running",
            r.run_id,
            r.state.as_str()
        ),
        None => "No runs yet".to_string(),
    };
    let region = ChartRegion {
        name: "gantt",
        live: live_url(&dag_id, "gantt", run.as_ref(), "gantt"),
        svg: gantt_svg::render(
            &rows,
            Utc::now(),
            &format!("Gantt chart of a run of {dag_id}"),
        ),
        caption,
        runs: run.as_ref().map(|r| r.id.to_string()).unwrap_or_default(),
    };
    respond(
        &session,
        &record,
        &dag,
        "gantt",
        "Gantt",
        choices,
        region,
        query.fragment.as_deref(),
        false,
    )
}

/// `GET /dags/{dag_id}/durations?runs=`: how long the last runs took.
pub(crate) async fn durations(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<RunQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let limit = query.runs.unwrap_or(DEFAULT_RUNS).clamp(1, MAX_RUNS);
    let mut runs_found = state
        .store()
        .query_dag_runs(updraft_store::DagRunQuery {
            dag_ids: Some(vec![dag_id.clone()]),
            sort: vec![updraft_store::Sort {
                field: updraft_store::DagRunSortField::LogicalDate,
                descending: true,
            }],
            window: updraft_store::Window { limit, offset: 0 },
            ..Default::default()
        })
        .await?
        .items;
    runs_found.reverse();
    let now = Utc::now();
    let bars: Vec<durations_svg::RunBar> = runs_found
        .iter()
        .map(|r| durations_svg::RunBar {
            run_id: r.run_id.clone(),
            state: r.state.as_str().to_string(),
            seconds: seconds(r.start_date, r.end_date, now),
            href: links::dag_run(&dag_id, &r.run_id),
        })
        .collect();
    let region = ChartRegion {
        name: "durations",
        live: format!(
            "{}/durations?runs={limit}&fragment=durations",
            links::dag(&dag_id)
        ),
        svg: durations_svg::render(
            &bars,
            &format!("Durations of the last {} runs of {dag_id}", bars.len()),
        ),
        caption: format!("The last {} runs, oldest left", bars.len()),
        runs: String::new(),
    };
    respond(
        &session,
        &record,
        &dag,
        "durations",
        "Durations",
        Vec::new(),
        region,
        query.fragment.as_deref(),
        false,
    )
}

#[allow(clippy::too_many_arguments)]
fn respond(
    session: &Session,
    record: &updraft_store::DagRecord,
    dag: &Dag,
    tab: &'static str,
    title: &'static str,
    choices: Vec<RunChoice>,
    region: ChartRegion,
    fragment: Option<&str>,
    zoom: bool,
) -> Result<Response, UiError> {
    if crate::views::wants_fragment(fragment, region.name)? {
        return Ok(page(&region)?.into_response());
    }
    page(&ChartPage {
        page: Page::new(session, "dags"),
        dag: header(session, record, dag, tab),
        title,
        choices,
        region: region.render()?,
        zoom,
        legend: tab != "durations",
    })
}

//! `GET/POST /dags/{dag_id}/dagRuns`, `GET/PATCH/DELETE …/dagRuns/{dag_run_id}` and
//! `POST /dags/~/dagRuns/list`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{DagRunState, RunType};
use updraft_store::{DagRun, DagRunQuery, DagRunSortField, Sort, TimeRange};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{
    dag_record, dag_run, like_matches, seconds_between, wildcard, DagVersionResponse, PathParams,
    QueryParams, Versions,
};
use crate::auth::{Access, Action, Resource};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

mod changes;

use changes::{
    __path_delete_dag_run, __path_patch_dag_run, __path_trigger_dag_run, delete_dag_run,
    patch_dag_run, trigger_dag_run,
};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_dag_runs",
        Access::Require(Action::Read, Resource::DagRun),
    ),
    (
        "get_dag_run",
        Access::Require(Action::Read, Resource::DagRun),
    ),
    (
        "trigger_dag_run",
        Access::Require(Action::Create, Resource::DagRun),
    ),
    (
        "patch_dag_run",
        Access::Require(Action::Edit, Resource::DagRun),
    ),
    (
        "delete_dag_run",
        Access::Require(Action::Delete, Resource::DagRun),
    ),
    (
        "get_list_dag_runs_batch",
        Access::Require(Action::Read, Resource::DagRun),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_dag_runs, trigger_dag_run))
        .routes(routes!(get_dag_run, patch_dag_run, delete_dag_run))
        .routes(routes!(get_list_dag_runs_batch))
}

/// Airflow's `DAGRunResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGRunResponse {
    pub dag_run_id: String,
    pub dag_id: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub duration: Option<f64>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    pub run_after: DateTime<Utc>,
    pub last_scheduling_decision: Option<DateTime<Utc>>,
    pub run_type: String,
    pub state: String,
    pub triggered_by: Option<String>,
    pub triggering_user_name: Option<String>,
    #[schema(value_type = Object)]
    pub conf: Option<serde_json::Map<String, serde_json::Value>>,
    pub note: Option<String>,
    pub dag_versions: Vec<DagVersionResponse>,
    pub bundle_version: Option<String>,
    pub dag_display_name: String,
    pub partition_key: Option<String>,
    pub partition_date: Option<DateTime<Utc>>,
}

/// Airflow's `DAGRunCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGRunCollectionResponse {
    pub dag_runs: Vec<DAGRunResponse>,
    pub total_entries: u64,
}

/// Shapes runs, loading each DAG's version records once.
pub(crate) async fn run_responses(
    state: &RestState,
    runs: impl IntoIterator<Item = DagRun>,
) -> Result<Vec<DAGRunResponse>, RestError> {
    let mut versions = Versions::default();
    let mut out = Vec::new();
    for run in runs {
        let version = versions.get(state, &run.dag_id, run.dag_version).await?;
        let dated = run.run_type != RunType::AssetTriggered;
        out.push(DAGRunResponse {
            duration: seconds_between(run.start_date, run.end_date),
            triggered_by: Some(
                match run.run_type {
                    RunType::Scheduled => "timetable",
                    RunType::Backfill => "backfill",
                    RunType::Manual => "rest_api",
                    RunType::AssetTriggered => "asset",
                }
                .to_string(),
            ),
            dag_run_id: run.run_id,
            dag_display_name: run.dag_id.clone(),
            dag_id: run.dag_id,
            // Airflow 3: an asset-triggered run has no logical date nor data interval, only
            // `run_after` (the store keeps run_after as its logical date, for ordering).
            logical_date: dated.then_some(run.logical_date),
            queued_at: Some(run.queued_at),
            start_date: run.start_date,
            end_date: run.end_date,
            data_interval_start: dated.then_some(run.data_interval_start),
            data_interval_end: dated.then_some(run.data_interval_end),
            run_after: run.logical_date,
            last_scheduling_decision: None,
            run_type: run.run_type.as_str().to_string(),
            state: run.state.as_str().to_string(),
            triggering_user_name: None,
            conf: Some(run.conf),
            note: run.note,
            dag_versions: version.into_iter().collect(),
            bundle_version: None,
            partition_key: None,
            partition_date: None,
        });
    }
    Ok(out)
}

pub(crate) async fn run_response(
    state: &RestState,
    run: DagRun,
) -> Result<DAGRunResponse, RestError> {
    let dag_id = run.dag_id.clone();
    run_responses(state, [run])
        .await?
        .pop()
        .ok_or_else(|| super::common::dag_not_found(&dag_id))
}

const RUN_ORDER: &[(&str, DagRunSortField)] = &[
    ("id", DagRunSortField::Id),
    ("dag_id", DagRunSortField::DagId),
    ("run_id", DagRunSortField::RunId),
    ("dag_run_id", DagRunSortField::RunId),
    ("state", DagRunSortField::State),
    ("run_type", DagRunSortField::RunType),
    ("logical_date", DagRunSortField::LogicalDate),
    ("run_after", DagRunSortField::LogicalDate),
    ("queued_at", DagRunSortField::QueuedAt),
    ("start_date", DagRunSortField::StartDate),
    ("end_date", DagRunSortField::EndDate),
    ("data_interval_start", DagRunSortField::DataIntervalStart),
    ("data_interval_end", DagRunSortField::DataIntervalEnd),
];

/// The bounds on one instant of a query, from its `_gte/_gt/_lte/_lt` parameters.
fn range(
    gte: Option<DateTime<Utc>>,
    gt: Option<DateTime<Utc>>,
    lte: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
) -> TimeRange {
    TimeRange { gte, gt, lte, lt }
}

/// Both ranges at once (a run's `run_after` is its logical date).
fn both(a: TimeRange, b: TimeRange) -> TimeRange {
    TimeRange {
        gte: a.gte.max(b.gte),
        gt: a.gt.max(b.gt),
        lte: min_some(a.lte, b.lte),
        lt: min_some(a.lt, b.lt),
    }
}

fn min_some(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_run_states(values: &[String], location: &[&str]) -> Result<Vec<DagRunState>, RestError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<DagRunState>().map_err(|_| {
                RestError::invalid(
                    location,
                    format!(
                        "Input should be 'queued', 'running', 'success' or 'failed', not {v:?}"
                    ),
                )
            })
        })
        .collect()
}

/// The DAGs a `~` path and a `dag_id_pattern` stand for (`None`: every DAG).
async fn dag_ids_for(
    state: &RestState,
    dag_id: &str,
    pattern: Option<&str>,
) -> Result<Option<Vec<String>>, RestError> {
    if let Some(dag_id) = wildcard(dag_id) {
        dag_record(state, dag_id).await?;
        return Ok(Some(vec![dag_id.to_string()]));
    }
    let Some(pattern) = pattern else {
        return Ok(None);
    };
    Ok(Some(
        state
            .store()
            .list_dags()
            .await?
            .into_iter()
            .map(|d| d.dag_id)
            .filter(|id| like_matches(pattern, id))
            .collect(),
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DagRunFilters {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    pub run_after_gte: Option<DateTime<Utc>>,
    pub run_after_gt: Option<DateTime<Utc>>,
    pub run_after_lte: Option<DateTime<Utc>>,
    pub run_after_lt: Option<DateTime<Utc>>,
    pub logical_date_gte: Option<DateTime<Utc>>,
    pub logical_date_gt: Option<DateTime<Utc>>,
    pub logical_date_lte: Option<DateTime<Utc>>,
    pub logical_date_lt: Option<DateTime<Utc>>,
    pub start_date_gte: Option<DateTime<Utc>>,
    pub start_date_gt: Option<DateTime<Utc>>,
    pub start_date_lte: Option<DateTime<Utc>>,
    pub start_date_lt: Option<DateTime<Utc>>,
    pub end_date_gte: Option<DateTime<Utc>>,
    pub end_date_gt: Option<DateTime<Utc>>,
    pub end_date_lte: Option<DateTime<Utc>>,
    pub end_date_lt: Option<DateTime<Utc>>,
    /// `manual`, `scheduled`, `backfill`; repeatable.
    #[serde(default)]
    pub run_type: Vec<String>,
    /// Repeatable.
    #[serde(default)]
    pub state: Vec<String>,
    pub run_id_pattern: Option<String>,
    /// With `~` as the dag_id: only DAGs whose id matches.
    pub dag_id_pattern: Option<String>,
    /// `id` by default; `-` for descending.
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// The runs of a DAG, or of every DAG (`~`).
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns", operation_id = "get_dag_runs", tag = "DagRun",
    params(("dag_id" = String, Path), DagRunFilters),
    responses((status = 200, body = DAGRunCollectionResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_dag_runs(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(f): QueryParams<DagRunFilters>,
) -> Result<Json<DAGRunCollectionResponse>, RestError> {
    let run_types = f
        .run_type
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<RunType>().map_err(|_| {
                RestError::invalid(
                    &["query", "run_type"],
                    format!("Input should be 'manual', 'scheduled' or 'backfill', not {v:?}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sort = order_by(&f.order_by, RUN_ORDER)?;
    if sort.is_empty() {
        sort.push(Sort {
            field: DagRunSortField::Id,
            descending: false,
        });
    }
    // One DAG: whether it exists is asked only when it has no run to show (a run is
    // always of an existing DAG), in the order of the checks as before.
    let one_dag = wildcard(&dag_id).map(str::to_string);
    let dag_ids = match &one_dag {
        Some(one) => Some(vec![one.clone()]),
        None => dag_ids_for(&state, &dag_id, f.dag_id_pattern.as_deref()).await?,
    };
    let states = match parse_run_states(&f.state, &["query", "state"]) {
        Ok(states) => states,
        Err(e) => {
            if let Some(one) = &one_dag {
                dag_record(&state, one).await?;
            }
            return Err(e);
        }
    };
    let mut query = DagRunQuery {
        dag_ids,
        run_id_pattern: f.run_id_pattern.clone(),
        states,
        run_types,
        logical_date: both(
            range(
                f.logical_date_gte,
                f.logical_date_gt,
                f.logical_date_lte,
                f.logical_date_lt,
            ),
            range(
                f.run_after_gte,
                f.run_after_gt,
                f.run_after_lte,
                f.run_after_lt,
            ),
        ),
        start_date: range(
            f.start_date_gte,
            f.start_date_gt,
            f.start_date_lte,
            f.start_date_lt,
        ),
        end_date: range(f.end_date_gte, f.end_date_gt, f.end_date_lte, f.end_date_lt),
        queued_at: TimeRange::default(),
        sort,
        window: Paging {
            limit: f.limit,
            offset: f.offset,
        }
        .window(state.config()),
        known_total: None,
    };
    let page = query_runs_counted(&state, &mut query).await?;
    if page.items.is_empty() {
        if let Some(one) = &one_dag {
            dag_record(&state, one).await?;
        }
    }
    Ok(Json(DAGRunCollectionResponse {
        dag_runs: run_responses(&state, page.items).await?,
        total_entries: page.total,
    }))
}

/// [`BrowseStore::query_dag_runs`](updraft_store::BrowseStore::query_dag_runs), with the
/// total of the same filters reused while no run changed (see [`crate::counts`]).
async fn query_runs_counted(
    state: &RestState,
    query: &mut DagRunQuery,
) -> Result<updraft_store::Page<DagRun>, RestError> {
    let key = format!(
        "{:?}",
        DagRunQuery {
            window: Default::default(),
            known_total: None,
            ..query.clone()
        }
    );
    let counts = state.run_counts();
    let generation = match counts.get(&key) {
        crate::counts::Lookup::Kept(total) => {
            query.known_total = Some(total);
            None
        }
        crate::counts::Lookup::Missing { generation } => Some(generation),
    };
    let page = state.store().query_dag_runs(query.clone()).await?;
    if let Some(generation) = generation {
        counts.put(key, page.total, generation);
    }
    Ok(page)
}

/// One run.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}", operation_id = "get_dag_run", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)),
    responses((status = 200, body = DAGRunResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag_run(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
) -> Result<Json<DAGRunResponse>, RestError> {
    let run = dag_run(&state, &dag_id, &run_id).await?;
    Ok(Json(run_response(&state, run).await?))
}

/// Airflow's `DAGRunsBatchBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DAGRunsBatchBody {
    pub order_by: Option<String>,
    pub page_offset: Option<u64>,
    pub page_limit: Option<u32>,
    pub dag_ids: Option<Vec<String>>,
    pub states: Option<Vec<Option<String>>>,
    pub run_after_gte: Option<DateTime<Utc>>,
    pub run_after_gt: Option<DateTime<Utc>>,
    pub run_after_lte: Option<DateTime<Utc>>,
    pub run_after_lt: Option<DateTime<Utc>>,
    pub logical_date_gte: Option<DateTime<Utc>>,
    pub logical_date_gt: Option<DateTime<Utc>>,
    pub logical_date_lte: Option<DateTime<Utc>>,
    pub logical_date_lt: Option<DateTime<Utc>>,
    pub start_date_gte: Option<DateTime<Utc>>,
    pub start_date_gt: Option<DateTime<Utc>>,
    pub start_date_lte: Option<DateTime<Utc>>,
    pub start_date_lt: Option<DateTime<Utc>>,
    pub end_date_gte: Option<DateTime<Utc>>,
    pub end_date_gt: Option<DateTime<Utc>>,
    pub end_date_lte: Option<DateTime<Utc>>,
    pub end_date_lt: Option<DateTime<Utc>>,
}

/// Runs of several DAGs at once, the filters in the body.
#[utoipa::path(post, path = "/dags/{dag_id}/dagRuns/list", operation_id = "get_list_dag_runs_batch", tag = "DagRun",
    params(("dag_id" = String, Path, description = "`~`, or one DAG")),
    request_body = DAGRunsBatchBody,
    responses((status = 200, body = DAGRunCollectionResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_list_dag_runs_batch(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    body: Result<Json<DAGRunsBatchBody>, JsonRejection>,
) -> Result<Json<DAGRunCollectionResponse>, RestError> {
    let Json(b) = body?;
    let mut dag_ids = dag_ids_for(&state, &dag_id, None).await?;
    if let Some(listed) = b.dag_ids.clone().filter(|ids| !ids.is_empty()) {
        dag_ids = Some(match dag_ids {
            Some(path) => path.into_iter().filter(|id| listed.contains(id)).collect(),
            None => listed,
        });
    }
    let states: Vec<String> = b
        .states
        .clone()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let mut sort = order_by(
        &b.order_by.clone().into_iter().collect::<Vec<_>>(),
        RUN_ORDER,
    )?;
    if sort.is_empty() {
        sort.push(Sort {
            field: DagRunSortField::Id,
            descending: false,
        });
    }
    let query = DagRunQuery {
        dag_ids,
        run_id_pattern: None,
        states: parse_run_states(&states, &["body", "states"])?,
        run_types: Vec::new(),
        logical_date: both(
            range(
                b.logical_date_gte,
                b.logical_date_gt,
                b.logical_date_lte,
                b.logical_date_lt,
            ),
            range(
                b.run_after_gte,
                b.run_after_gt,
                b.run_after_lte,
                b.run_after_lt,
            ),
        ),
        start_date: range(
            b.start_date_gte,
            b.start_date_gt,
            b.start_date_lte,
            b.start_date_lt,
        ),
        end_date: range(b.end_date_gte, b.end_date_gt, b.end_date_lte, b.end_date_lt),
        queued_at: TimeRange::default(),
        sort,
        window: Paging {
            limit: Some(b.page_limit.unwrap_or(100)),
            offset: b.page_offset,
        }
        .window(state.config()),
        known_total: None,
    };
    let page = state.store().query_dag_runs(query).await?;
    Ok(Json(DAGRunCollectionResponse {
        dag_runs: run_responses(&state, page.items).await?,
        total_entries: page.total,
    }))
}

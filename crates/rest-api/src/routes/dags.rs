//! `GET /dags`, `GET /dags/{dag_id}`, `PATCH /dags/{dag_id}`, `PATCH /dags` (pause and
//! unpause, one or many) and `DELETE /dags/{dag_id}`.

use std::collections::HashSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{DagRunState, Schedule};
use updraft_scheduler::DagGraph;
use updraft_store::{DagQuery, DagRecord, DagSortField, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{dag_graph, dag_not_found, dag_record, QueryParams, BUNDLE_NAME};
use crate::auth::{Access, Action, Resource};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    ("get_dags", Access::Require(Action::Read, Resource::Dag)),
    ("get_dag", Access::Require(Action::Read, Resource::Dag)),
    ("patch_dag", Access::Require(Action::Edit, Resource::Dag)),
    ("patch_dags", Access::Require(Action::Edit, Resource::Dag)),
    ("delete_dag", Access::Require(Action::Delete, Resource::Dag)),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_dags, patch_dags))
        .routes(routes!(get_dag, patch_dag, delete_dag))
}

/// Airflow's `DagTagResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagTagResponse {
    pub name: String,
    pub dag_id: String,
    pub dag_display_name: String,
}

/// Airflow's `DAGResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGResponse {
    pub dag_id: String,
    pub dag_display_name: String,
    pub is_paused: bool,
    pub is_stale: bool,
    pub last_parsed_time: Option<DateTime<Utc>>,
    pub last_parse_duration: Option<f64>,
    pub last_expired: Option<DateTime<Utc>>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub relative_fileloc: Option<String>,
    pub fileloc: String,
    pub description: Option<String>,
    pub timetable_summary: Option<String>,
    pub timetable_description: Option<String>,
    pub timetable_periodic: bool,
    pub timetable_partitioned: bool,
    pub tags: Vec<DagTagResponse>,
    pub max_active_tasks: u32,
    pub max_active_runs: Option<u32>,
    pub max_consecutive_failed_dag_runs: u32,
    pub has_task_concurrency_limits: bool,
    pub has_import_errors: bool,
    pub next_dagrun_logical_date: Option<DateTime<Utc>>,
    pub next_dagrun_data_interval_start: Option<DateTime<Utc>>,
    pub next_dagrun_data_interval_end: Option<DateTime<Utc>>,
    pub next_dagrun_run_after: Option<DateTime<Utc>>,
    pub allowed_run_types: Option<Vec<String>>,
    pub is_backfillable: bool,
    pub owners: Vec<String>,
    pub file_token: String,
}

/// Airflow's `DAGCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGCollectionResponse {
    pub dags: Vec<DAGResponse>,
    pub total_entries: u64,
}

/// Airflow's `DAGPatchBody`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DAGPatchBody {
    pub is_paused: bool,
}

impl DAGResponse {
    /// A DAG as Airflow shows it; what updraft has no notion of gets Airflow's defaults.
    pub(crate) fn new(record: &DagRecord, graph: &DagGraph, import_errors: bool) -> Self {
        let dag = &graph.dag;
        let next = next_dagrun(record, graph);
        let periodic = matches!(dag.schedule, Schedule::Cron(_) | Schedule::Every(_));
        DAGResponse {
            dag_id: record.dag_id.clone(),
            dag_display_name: record.dag_id.clone(),
            is_paused: record.is_paused,
            is_stale: !record.is_active,
            last_parsed_time: Some(record.last_parsed_at),
            last_parse_duration: None,
            last_expired: None,
            bundle_name: Some(BUNDLE_NAME.to_string()),
            bundle_version: None,
            relative_fileloc: Some(record.fileloc.clone()),
            fileloc: record.fileloc.clone(),
            description: record.description.clone(),
            timetable_summary: Some(timetable_summary(record, dag)),
            timetable_description: Some(match (&dag.asset_schedule, &dag.schedule) {
                (None, schedule) => timetable_description(schedule),
                (Some(_), Schedule::None) => "Triggered by assets".to_string(),
                (Some(_), schedule) => {
                    format!("Triggered by assets or {}", timetable_description(schedule))
                }
            }),
            timetable_periodic: periodic,
            timetable_partitioned: false,
            tags: record
                .tags
                .iter()
                .map(|name| DagTagResponse {
                    name: name.clone(),
                    dag_id: record.dag_id.clone(),
                    dag_display_name: record.dag_id.clone(),
                })
                .collect(),
            max_active_tasks: dag.max_active_tasks,
            max_active_runs: Some(dag.max_active_runs),
            max_consecutive_failed_dag_runs: dag.max_consecutive_failed_dag_runs,
            has_task_concurrency_limits: dag.tasks.iter().any(|t| {
                t.max_active_tis_per_dag.is_some() || t.max_active_tis_per_dagrun.is_some()
            }),
            has_import_errors: import_errors,
            next_dagrun_logical_date: next,
            next_dagrun_data_interval_start: next,
            next_dagrun_data_interval_end: next,
            next_dagrun_run_after: next,
            allowed_run_types: None,
            is_backfillable: periodic,
            owners: vec!["airflow".to_string()],
            file_token: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(record.fileloc.as_bytes()),
        }
    }
}

/// When the DAG runs next: the scheduler's record, or (before the scheduler computed it)
/// the schedule's next fire time. Runs fire at their logical date, so this is also the data
/// interval and `run_after`.
fn next_dagrun(record: &DagRecord, graph: &DagGraph) -> Option<DateTime<Utc>> {
    if record.is_paused || !record.is_active {
        return None;
    }
    record.next_dagrun.or_else(|| {
        updraft_model::next_fire_times(&graph.dag, Utc::now(), 1)
            .into_iter()
            .next()
    })
}

/// Airflow's summaries: the schedule, `Asset` for a DAG scheduled on assets, `Asset or …`
/// for assets or a time schedule (`AssetOrTimeSchedule`).
fn timetable_summary(record: &DagRecord, dag: &updraft_model::Dag) -> String {
    match (&dag.asset_schedule, &dag.schedule) {
        (None, _) => record.schedule.clone(),
        (Some(_), Schedule::None) => "Asset".to_string(),
        (Some(_), _) => format!("Asset or {}", record.schedule),
    }
}

fn timetable_description(schedule: &Schedule) -> String {
    match schedule {
        Schedule::None => "Never, external triggers only".to_string(),
        Schedule::Once => "Once, as soon as possible".to_string(),
        Schedule::Cron(text) => format!("Cron expression {text}"),
        Schedule::Every(_) => format!("Every {schedule}"),
    }
}

/// The files that failed to import, to answer `has_import_errors`.
pub(crate) async fn import_error_files(state: &RestState) -> Result<HashSet<String>, RestError> {
    Ok(state
        .store()
        .list_import_errors()
        .await?
        .into_iter()
        .map(|e| e.filename)
        .collect())
}

/// Shapes DAG records with their definitions.
async fn responses(
    state: &RestState,
    records: impl IntoIterator<Item = DagRecord>,
) -> Result<Vec<DAGResponse>, RestError> {
    let errors = import_error_files(state).await?;
    let mut out = Vec::new();
    for record in records {
        let has_errors = errors.contains(&record.fileloc);
        out.push(response(state, &record, has_errors).await?);
    }
    Ok(out)
}

/// Shapes a DAG record with its definition.
async fn response(
    state: &RestState,
    record: &DagRecord,
    has_import_errors: bool,
) -> Result<DAGResponse, RestError> {
    let graph = dag_graph(state, &record.dag_id, record.version).await?;
    Ok(DAGResponse::new(record, &graph, has_import_errors))
}

/// The filters `GET /dags` and `PATCH /dags` share.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DagFilters {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Only DAGs with these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// `any` (default) or `all` of `tags`.
    pub tags_match_mode: Option<String>,
    /// Only DAGs of these owners (every updraft DAG is owned by `airflow`).
    #[serde(default)]
    pub owners: Vec<String>,
    /// A case-insensitive substring of the dag_id, with `%` and `_` wildcards.
    pub dag_id_pattern: Option<String>,
    pub dag_display_name_pattern: Option<String>,
    /// Leave out DAGs whose file is gone (default true).
    pub exclude_stale: Option<bool>,
    pub paused: Option<bool>,
    /// Only DAGs whose latest run is in this state.
    pub last_dag_run_state: Option<String>,
    /// `dag_id`, `dag_display_name`, `next_dagrun`, `last_run_state`, `last_run_start_date`
    /// (`-` for descending).
    #[serde(default)]
    pub order_by: Vec<String>,
}

const DAG_ORDER: &[(&str, DagSortField)] = &[
    ("dag_id", DagSortField::DagId),
    ("dag_display_name", DagSortField::DagId),
    ("next_dagrun", DagSortField::NextDagrun),
    ("last_run_state", DagSortField::LastRunState),
    ("state", DagSortField::LastRunState),
    ("last_run_start_date", DagSortField::LastRunStartDate),
    ("start_date", DagSortField::LastRunStartDate),
];

impl DagFilters {
    fn query(&self, state: &RestState) -> Result<Option<DagQuery>, RestError> {
        if !self.owners.is_empty() && !self.owners.iter().any(|o| o == "airflow") {
            return Ok(None);
        }
        let tags_match_all = match self.tags_match_mode.as_deref() {
            None | Some("any") => false,
            Some("all") => true,
            Some(_) => {
                return Err(RestError::invalid(
                    &["query", "tags_match_mode"],
                    "Input should be 'any' or 'all'",
                ))
            }
        };
        let last_dag_run_state = self
            .last_dag_run_state
            .as_deref()
            .map(|s| {
                s.parse::<DagRunState>().map_err(|_| {
                    RestError::invalid(
                        &["query", "last_dag_run_state"],
                        "Input should be 'queued', 'running', 'success' or 'failed'",
                    )
                })
            })
            .transpose()?;
        let mut sort = order_by(&self.order_by, DAG_ORDER)?;
        if sort.is_empty() {
            sort = order_by(&["dag_id".to_string()], DAG_ORDER)?;
        }
        Ok(Some(DagQuery {
            dag_id_pattern: self
                .dag_id_pattern
                .clone()
                .or_else(|| self.dag_display_name_pattern.clone()),
            tags: self.tags.clone(),
            tags_match_all,
            paused: self.paused,
            exclude_stale: self.exclude_stale.unwrap_or(true),
            last_dag_run_state,
            sort,
            window: Paging {
                limit: self.limit,
                offset: self.offset,
            }
            .window(state.config()),
            without_last_run: false,
        }))
    }
}

/// The DAGs matching the filters, one page of them.
#[utoipa::path(get, path = "/dags", operation_id = "get_dags", tag = "DAG",
    params(DagFilters),
    responses((status = 200, body = DAGCollectionResponse),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_dags(
    State(state): State<RestState>,
    QueryParams(filters): QueryParams<DagFilters>,
) -> Result<Json<DAGCollectionResponse>, RestError> {
    let Some(query) = filters.query(&state)? else {
        return Ok(Json(DAGCollectionResponse {
            dags: Vec::new(),
            total_entries: 0,
        }));
    };
    let page = state
        .store()
        .query_dags(DagQuery {
            without_last_run: true,
            ..query
        })
        .await?;
    let mut dags = Vec::with_capacity(page.items.len());
    for summary in &page.items {
        dags.push(response(&state, &summary.dag, summary.has_import_errors).await?);
    }
    Ok(Json(DAGCollectionResponse {
        dags,
        total_entries: page.total,
    }))
}

/// One DAG.
#[utoipa::path(get, path = "/dags/{dag_id}", operation_id = "get_dag", tag = "DAG",
    params(("dag_id" = String, Path)),
    responses((status = 200, body = DAGResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag(
    State(state): State<RestState>,
    super::common::PathParams(dag_id): super::common::PathParams<String>,
) -> Result<Json<DAGResponse>, RestError> {
    let record = dag_record(&state, &dag_id).await?;
    let mut dags = responses(&state, [record]).await?;
    dags.pop().map(Json).ok_or_else(|| dag_not_found(&dag_id))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpdateMask {
    /// The fields of the body to apply; only `is_paused` may be named.
    #[serde(default)]
    pub update_mask: Vec<String>,
}

impl UpdateMask {
    fn check(&self) -> Result<(), RestError> {
        if self.update_mask.iter().any(|field| field != "is_paused") {
            return Err(RestError::bad_request(
                "Only `is_paused` field can be updated through the REST API",
            ));
        }
        Ok(())
    }
}

/// Pauses or unpauses a DAG.
#[utoipa::path(patch, path = "/dags/{dag_id}", operation_id = "patch_dag", tag = "DAG",
    params(("dag_id" = String, Path), UpdateMask),
    request_body = DAGPatchBody,
    responses((status = 200, body = DAGResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_dag(
    State(state): State<RestState>,
    super::common::PathParams(dag_id): super::common::PathParams<String>,
    QueryParams(mask): QueryParams<UpdateMask>,
    body: Result<Json<DAGPatchBody>, JsonRejection>,
) -> Result<Json<DAGResponse>, RestError> {
    mask.check()?;
    let Json(body) = body?;
    dag_record(&state, &dag_id).await?;
    set_paused(&state, &dag_id, body.is_paused).await?;
    state.changed();
    let record = dag_record(&state, &dag_id).await?;
    let mut dags = responses(&state, [record]).await?;
    dags.pop().map(Json).ok_or_else(|| dag_not_found(&dag_id))
}

async fn set_paused(state: &RestState, dag_id: &str, paused: bool) -> Result<(), RestError> {
    match state.store().set_paused(dag_id, paused).await {
        Ok(()) => Ok(()),
        Err(StoreError::NotFound(_)) => Err(dag_not_found(dag_id)),
        Err(e) => Err(e.into()),
    }
}

/// Pauses or unpauses every DAG matching the filters (one page of them, as Airflow does),
/// and answers them as they are now.
#[utoipa::path(patch, path = "/dags", operation_id = "patch_dags", tag = "DAG",
    params(DagFilters, UpdateMask),
    request_body = DAGPatchBody,
    responses((status = 200, body = DAGCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn patch_dags(
    State(state): State<RestState>,
    QueryParams(filters): QueryParams<DagFilters>,
    QueryParams(mask): QueryParams<UpdateMask>,
    body: Result<Json<DAGPatchBody>, JsonRejection>,
) -> Result<Json<DAGCollectionResponse>, RestError> {
    mask.check()?;
    let Json(body) = body?;
    let mut filters = filters;
    if filters.dag_id_pattern.as_deref() == Some("~") {
        filters.dag_id_pattern = None;
    }
    let Some(query) = filters.query(&state)? else {
        return Ok(Json(DAGCollectionResponse {
            dags: Vec::new(),
            total_entries: 0,
        }));
    };
    let page = state.store().query_dags(query).await?;
    let mut records = Vec::new();
    for summary in page.items {
        set_paused(&state, &summary.dag.dag_id, body.is_paused).await?;
        records.push(DagRecord {
            is_paused: body.is_paused,
            ..summary.dag
        });
    }
    if !records.is_empty() {
        state.changed();
    }
    let dags = responses(&state, records).await?;
    Ok(Json(DAGCollectionResponse {
        dags,
        total_entries: page.total,
    }))
}

/// Deletes a DAG's record, versions and runs; it comes back if its file is parsed again.
#[utoipa::path(delete, path = "/dags/{dag_id}", operation_id = "delete_dag", tag = "DAG",
    params(("dag_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_dag(
    State(state): State<RestState>,
    super::common::PathParams(dag_id): super::common::PathParams<String>,
) -> Result<Json<serde_json::Value>, RestError> {
    dag_record(&state, &dag_id).await?;
    match state.store().delete_dag(&dag_id).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(dag_not_found(&dag_id)),
        Err(e) => return Err(e.into()),
    }
    state.changed();
    Ok(Json(serde_json::json!({})))
}

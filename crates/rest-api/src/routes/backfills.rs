//! `/backfills` (Airflow 3): create (and `dry_run`), list, get, pause, unpause, cancel. The
//! schedulers create a backfill's runs; these operations only record what to do, so every
//! write wakes them.
//!
//! Differences from Airflow: `task_id_pattern` and `run_on_latest_version` are not accepted
//! (a backfill runs every task, on the DAG's latest version), `selected_task_ids` is always
//! null, `dag_id` of the listing is optional.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_scheduler::{plan_backfill, BackfillError, BackfillRequest};
use updraft_store::{Backfill, NewBackfill, ReprocessBehavior};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::params::Paging;
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "list_backfills",
        Access::Require(Action::Read, Resource::DagRun),
    ),
    (
        "get_backfill",
        Access::Require(Action::Read, Resource::DagRun),
    ),
    (
        "create_backfill",
        Access::Require(Action::Create, Resource::DagRun),
    ),
    (
        "create_backfill_dry_run",
        Access::Require(Action::Read, Resource::DagRun),
    ),
    (
        "pause_backfill",
        Access::Require(Action::Edit, Resource::DagRun),
    ),
    (
        "unpause_backfill",
        Access::Require(Action::Edit, Resource::DagRun),
    ),
    (
        "cancel_backfill",
        Access::Require(Action::Edit, Resource::DagRun),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(list_backfills, create_backfill))
        .routes(routes!(create_backfill_dry_run))
        .routes(routes!(get_backfill))
        .routes(routes!(pause_backfill))
        .routes(routes!(unpause_backfill))
        .routes(routes!(cancel_backfill))
}

/// Airflow's `BackfillPostBody`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillPostBody {
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    #[serde(default)]
    pub run_backwards: bool,
    #[serde(default)]
    pub dag_run_conf: Option<serde_json::Map<String, serde_json::Value>>,
    /// `none`, `failed` or `completed`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub reprocess_behavior: ReprocessBehavior,
    /// Default 10.
    #[serde(default)]
    pub max_active_runs: Option<u32>,
}

/// Airflow's `BackfillResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackfillResponse {
    pub id: i64,
    pub dag_id: String,
    pub from_date: DateTime<Utc>,
    pub to_date: DateTime<Utc>,
    pub dag_run_conf: serde_json::Map<String, serde_json::Value>,
    pub is_paused: bool,
    pub reprocess_behavior: String,
    pub max_active_runs: u32,
    pub selected_task_ids: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub dag_display_name: String,
}

impl From<Backfill> for BackfillResponse {
    fn from(b: Backfill) -> Self {
        BackfillResponse {
            id: b.id,
            dag_display_name: b.dag_id.clone(),
            dag_id: b.dag_id,
            from_date: b.from_date,
            to_date: b.to_date,
            dag_run_conf: b.dag_run_conf,
            is_paused: b.is_paused,
            reprocess_behavior: b.reprocess_behavior.to_string(),
            max_active_runs: b.max_active_runs,
            selected_task_ids: None,
            created_at: b.created_at,
            completed_at: b.completed_at,
            updated_at: b.updated_at,
        }
    }
}

/// Airflow's `BackfillCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackfillCollectionResponse {
    pub backfills: Vec<BackfillResponse>,
    pub total_entries: u64,
}

/// Airflow's `DryRunBackfillResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRunBackfillResponse {
    pub logical_date: DateTime<Utc>,
}

/// Airflow's `DryRunBackfillCollectionResponse`: the dates the backfill would run.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DryRunBackfillCollectionResponse {
    pub backfills: Vec<DryRunBackfillResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackfillListParams {
    /// Only this DAG's backfills.
    pub dag_id: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

async fn plan(state: &RestState, body: BackfillPostBody) -> Result<NewBackfill, RestError> {
    let request = BackfillRequest {
        dag_id: body.dag_id,
        from_date: body.from_date,
        to_date: body.to_date,
        run_backwards: body.run_backwards,
        dag_run_conf: body.dag_run_conf.unwrap_or_default(),
        reprocess_behavior: body.reprocess_behavior,
        max_active_runs: body.max_active_runs,
    };
    match plan_backfill(state.store().as_ref(), &request, Utc::now()).await {
        Ok(plan) => Ok(plan),
        Err(BackfillError::Invalid(message)) => Err(RestError::invalid(&["body"], message)),
        Err(BackfillError::Store(e)) => Err(e.into()),
    }
}

/// Lists backfills, oldest first.
#[utoipa::path(get, path = "/backfills", operation_id = "list_backfills", tag = "Backfill",
    params(BackfillListParams),
    responses((status = 200, body = BackfillCollectionResponse),
        (status = 422, body = crate::error::ErrorBody)))]
async fn list_backfills(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<BackfillListParams>,
) -> Result<Json<BackfillCollectionResponse>, RestError> {
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let all = state
        .store()
        .list_backfills(params.dag_id.as_deref())
        .await?;
    let total_entries = all.len() as u64;
    let backfills = all
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(BackfillResponse::from)
        .collect();
    Ok(Json(BackfillCollectionResponse {
        backfills,
        total_entries,
    }))
}

/// Creates a backfill; the schedulers create its runs. 409 if the DAG has one running.
#[utoipa::path(post, path = "/backfills", operation_id = "create_backfill", tag = "Backfill",
    request_body = BackfillPostBody,
    responses((status = 200, body = BackfillResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn create_backfill(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<BackfillPostBody>,
) -> Result<Json<BackfillResponse>, RestError> {
    let plan = plan(&state, body).await?;
    let backfill = state.store().create_backfill(plan).await?;
    state.changed();
    Ok(Json(backfill.into()))
}

/// The logical dates a backfill would run, creating nothing.
#[utoipa::path(post, path = "/backfills/dry_run", operation_id = "create_backfill_dry_run",
    tag = "Backfill", request_body = BackfillPostBody,
    responses((status = 200, body = DryRunBackfillCollectionResponse),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn create_backfill_dry_run(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<BackfillPostBody>,
) -> Result<Json<DryRunBackfillCollectionResponse>, RestError> {
    let plan = plan(&state, body).await?;
    let backfills: Vec<_> = plan
        .dates
        .into_iter()
        .filter(|d| d.exception_reason.is_none())
        .map(|d| DryRunBackfillResponse {
            logical_date: d.logical_date,
        })
        .collect();
    Ok(Json(DryRunBackfillCollectionResponse {
        total_entries: backfills.len() as u64,
        backfills,
    }))
}

#[utoipa::path(get, path = "/backfills/{backfill_id}", operation_id = "get_backfill",
    tag = "Backfill", params(("backfill_id" = i64, Path)),
    responses((status = 200, body = BackfillResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_backfill(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<BackfillResponse>, RestError> {
    Ok(Json(state.store().get_backfill(id).await?.into()))
}

async fn set_paused(
    state: &RestState,
    id: i64,
    paused: bool,
) -> Result<Json<BackfillResponse>, RestError> {
    let backfill = state
        .store()
        .set_backfill_paused(id, paused, Utc::now())
        .await?;
    state.changed();
    Ok(Json(backfill.into()))
}

/// Stops creating the backfill's runs until it is unpaused; 409 once it completed.
#[utoipa::path(put, path = "/backfills/{backfill_id}/pause", operation_id = "pause_backfill",
    tag = "Backfill", params(("backfill_id" = i64, Path)),
    responses((status = 200, body = BackfillResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn pause_backfill(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<BackfillResponse>, RestError> {
    set_paused(&state, id, true).await
}

#[utoipa::path(put, path = "/backfills/{backfill_id}/unpause", operation_id = "unpause_backfill",
    tag = "Backfill", params(("backfill_id" = i64, Path)),
    responses((status = 200, body = BackfillResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn unpause_backfill(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<BackfillResponse>, RestError> {
    set_paused(&state, id, false).await
}

/// Ends the backfill: no more runs, its queued runs fail, running ones finish.
#[utoipa::path(put, path = "/backfills/{backfill_id}/cancel", operation_id = "cancel_backfill",
    tag = "Backfill", params(("backfill_id" = i64, Path)),
    responses((status = 200, body = BackfillResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn cancel_backfill(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<BackfillResponse>, RestError> {
    let backfill = state.store().cancel_backfill(id, Utc::now()).await?;
    state.changed();
    Ok(Json(backfill.into()))
}

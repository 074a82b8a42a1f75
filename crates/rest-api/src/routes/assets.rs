//! `/assets` (Airflow 3): assets, their events, recording an external event, the events
//! queued for the DAGs scheduled on them, and materializing an asset (a run of the DAG that
//! produces it).
//!
//! Differences from Airflow: no aliases or watchers (always empty), `only_active` and
//! `order_by` of the asset list are not accepted (assets are listed by id); events order by
//! `timestamp` or `-timestamp` only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{
    AssetEvent, AssetEventQuery, AssetQuery, AssetRecord, NewAssetEvent, QueuedAssetEvent,
    QueuedEventFilter,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::params::Paging;
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    ("get_assets", Access::Require(Action::Read, Resource::Asset)),
    ("get_asset", Access::Require(Action::Read, Resource::Asset)),
    (
        "get_asset_events",
        Access::Require(Action::Read, Resource::Asset),
    ),
    (
        "create_asset_event",
        Access::Require(Action::Create, Resource::Asset),
    ),
    (
        "materialize_asset",
        Access::Require(Action::Create, Resource::DagRun),
    ),
    (
        "get_asset_queued_events",
        Access::Require(Action::Read, Resource::Asset),
    ),
    (
        "delete_asset_queued_events",
        Access::Require(Action::Delete, Resource::Asset),
    ),
    (
        "get_dag_asset_queued_events",
        Access::Require(Action::Read, Resource::Asset),
    ),
    (
        "delete_dag_asset_queued_events",
        Access::Require(Action::Delete, Resource::Asset),
    ),
    (
        "get_dag_asset_queued_event",
        Access::Require(Action::Read, Resource::Asset),
    ),
    (
        "delete_dag_asset_queued_event",
        Access::Require(Action::Delete, Resource::Asset),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_assets))
        .routes(routes!(get_asset_events, create_asset_event))
        .routes(routes!(get_asset))
        .routes(routes!(materialize_asset))
        .routes(routes!(get_asset_queued_events, delete_asset_queued_events))
        .routes(routes!(
            get_dag_asset_queued_events,
            delete_dag_asset_queued_events
        ))
        .routes(routes!(
            get_dag_asset_queued_event,
            delete_dag_asset_queued_event
        ))
}

/// Airflow's `AssetResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetResponse {
    pub id: i64,
    pub name: String,
    pub uri: String,
    pub group: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub scheduled_dags: Vec<DagScheduleAssetReference>,
    pub producing_tasks: Vec<TaskOutletAssetReference>,
    pub consuming_tasks: Vec<TaskOutletAssetReference>,
    pub aliases: Vec<serde_json::Value>,
    pub watchers: Vec<serde_json::Value>,
    pub last_asset_event: LastAssetEventResponse,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagScheduleAssetReference {
    pub dag_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskOutletAssetReference {
    pub dag_id: String,
    pub task_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Airflow's `LastAssetEventResponse`: both null when the asset has no event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastAssetEventResponse {
    pub id: Option<i64>,
    pub timestamp: Option<DateTime<Utc>>,
}

impl From<AssetRecord> for AssetResponse {
    fn from(a: AssetRecord) -> Self {
        AssetResponse {
            id: a.id,
            name: a.name,
            uri: a.uri,
            group: a.group,
            extra: a.extra,
            created_at: a.created_at,
            updated_at: a.updated_at,
            scheduled_dags: a
                .scheduled_dags
                .into_iter()
                .map(|d| DagScheduleAssetReference {
                    dag_id: d.dag_id,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                })
                .collect(),
            producing_tasks: a
                .producing_tasks
                .into_iter()
                .map(|t| TaskOutletAssetReference {
                    dag_id: t.dag_id,
                    task_id: t.task_id,
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                })
                .collect(),
            consuming_tasks: Vec::new(),
            aliases: Vec::new(),
            watchers: Vec::new(),
            last_asset_event: LastAssetEventResponse {
                id: a.last_event.as_ref().map(|e| e.id),
                timestamp: a.last_event.map(|e| e.timestamp),
            },
        }
    }
}

/// Airflow's `AssetCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetCollectionResponse {
    pub assets: Vec<AssetResponse>,
    pub total_entries: i64,
}

/// Airflow's `AssetEventResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetEventResponse {
    pub id: i64,
    pub asset_id: i64,
    pub uri: String,
    pub name: String,
    pub group: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub source_task_id: Option<String>,
    pub source_dag_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_map_index: i64,
    pub created_dagruns: Vec<DagRunAssetReference>,
    pub timestamp: DateTime<Utc>,
}

/// Airflow's `DagRunAssetReference`: a run an event triggered. Asset-triggered runs have
/// no logical date nor data interval (Airflow 3), so those are null.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagRunAssetReference {
    pub run_id: String,
    pub dag_id: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub state: String,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
}

impl From<AssetEvent> for AssetEventResponse {
    fn from(e: AssetEvent) -> Self {
        AssetEventResponse {
            id: e.id,
            asset_id: e.asset_id,
            uri: e.uri,
            name: e.name,
            group: e.group,
            extra: e.extra,
            source_task_id: e.source_task_id,
            source_dag_id: e.source_dag_id,
            source_run_id: e.source_run_id,
            source_map_index: e.source_map_index,
            created_dagruns: e
                .created_dagruns
                .into_iter()
                .map(|r| DagRunAssetReference {
                    run_id: r.run_id,
                    dag_id: r.dag_id,
                    logical_date: None,
                    start_date: r.start_date,
                    end_date: r.end_date,
                    state: r.state,
                    data_interval_start: None,
                    data_interval_end: None,
                })
                .collect(),
            timestamp: e.timestamp,
        }
    }
}

/// Airflow's `AssetEventCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetEventCollectionResponse {
    pub asset_events: Vec<AssetEventResponse>,
    pub total_entries: i64,
}

/// Airflow's `CreateAssetEventsBody`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssetEventsBody {
    pub asset_id: i64,
    #[serde(default)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Airflow's `QueuedEventResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedEventResponse {
    pub dag_id: String,
    pub asset_id: i64,
    pub created_at: DateTime<Utc>,
    pub dag_display_name: String,
}

impl From<QueuedAssetEvent> for QueuedEventResponse {
    fn from(q: QueuedAssetEvent) -> Self {
        QueuedEventResponse {
            dag_display_name: q.dag_id.clone(),
            dag_id: q.dag_id,
            asset_id: q.asset_id,
            created_at: q.created_at,
        }
    }
}

/// Airflow's `QueuedEventCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedEventCollectionResponse {
    pub queued_events: Vec<QueuedEventResponse>,
    pub total_entries: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetListParams {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Part of the name, case-insensitive.
    pub name_pattern: Option<String>,
    /// Part of the URI, case-insensitive.
    pub uri_pattern: Option<String>,
    /// Only assets these DAGs are scheduled on or produce (repeat the parameter).
    #[serde(default)]
    pub dag_ids: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssetEventListParams {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// `timestamp` (default) or `-timestamp`.
    pub order_by: Option<String>,
    pub asset_id: Option<i64>,
    pub source_dag_id: Option<String>,
    pub source_task_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_map_index: Option<i64>,
    pub timestamp_gte: Option<DateTime<Utc>>,
    pub timestamp_lte: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BeforeParams {
    /// Only events queued before this instant.
    pub before: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct DagAssetPath {
    dag_id: String,
    asset_id: i64,
}

fn window(state: &RestState, limit: Option<u32>, offset: Option<u64>) -> (u32, u32) {
    let window = Paging { limit, offset }.window(state.config());
    (
        window.limit,
        u32::try_from(window.offset).unwrap_or(u32::MAX),
    )
}

/// Lists assets, by id.
#[utoipa::path(get, path = "/assets", operation_id = "get_assets", tag = "Asset",
    params(AssetListParams),
    responses((status = 200, body = AssetCollectionResponse),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_assets(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<AssetListParams>,
) -> Result<Json<AssetCollectionResponse>, RestError> {
    let (limit, offset) = window(&state, params.limit, params.offset);
    let (assets, total_entries) = state
        .store()
        .list_assets(AssetQuery {
            limit,
            offset,
            name_pattern: params.name_pattern,
            uri_pattern: params.uri_pattern,
            dag_ids: params.dag_ids,
        })
        .await?;
    Ok(Json(AssetCollectionResponse {
        assets: assets.into_iter().map(AssetResponse::from).collect(),
        total_entries,
    }))
}

#[utoipa::path(get, path = "/assets/{asset_id}", operation_id = "get_asset", tag = "Asset",
    params(("asset_id" = i64, Path)),
    responses((status = 200, body = AssetResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_asset(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<AssetResponse>, RestError> {
    Ok(Json(state.store().get_asset(id).await?.into()))
}

/// Lists asset events, oldest first unless `order_by=-timestamp`.
#[utoipa::path(get, path = "/assets/events", operation_id = "get_asset_events", tag = "Asset",
    params(AssetEventListParams),
    responses((status = 200, body = AssetEventCollectionResponse),
        (status = 400, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn get_asset_events(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<AssetEventListParams>,
) -> Result<Json<AssetEventCollectionResponse>, RestError> {
    let newest_first = match params.order_by.as_deref().map(str::trim) {
        None | Some("") | Some("timestamp") => false,
        Some("-timestamp") => true,
        Some(other) => {
            return Err(RestError::bad_request(format!(
                "Ordering with '{other}' is disallowed or the attribute does not exist on the model"
            )))
        }
    };
    let (limit, offset) = window(&state, params.limit, params.offset);
    let (events, total_entries) = state
        .store()
        .list_asset_events(AssetEventQuery {
            limit,
            offset,
            asset_id: params.asset_id,
            source_dag_id: params.source_dag_id,
            source_task_id: params.source_task_id,
            source_run_id: params.source_run_id,
            source_map_index: params.source_map_index,
            timestamp_gte: params.timestamp_gte,
            timestamp_lte: params.timestamp_lte,
            newest_first,
        })
        .await?;
    Ok(Json(AssetEventCollectionResponse {
        asset_events: events.into_iter().map(AssetEventResponse::from).collect(),
        total_entries,
    }))
}

/// Records an event of an asset (made outside updraft): the DAGs scheduled on it get it
/// queued, and a run once their condition holds.
#[utoipa::path(post, path = "/assets/events", operation_id = "create_asset_event", tag = "Asset",
    request_body = CreateAssetEventsBody,
    responses((status = 200, body = AssetEventResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_asset_event(
    State(state): State<RestState>,
    JsonBody(body): JsonBody<CreateAssetEventsBody>,
) -> Result<Json<AssetEventResponse>, RestError> {
    let event = state
        .store()
        .create_asset_event(NewAssetEvent {
            asset_id: body.asset_id,
            extra: body.extra.unwrap_or_default(),
            now: Utc::now(),
        })
        .await
        .map_err(|e| match e {
            updraft_store::StoreError::NotFound(_) => {
                RestError::not_found(format!("Asset with ID: `{}` was not found", body.asset_id))
            }
            e => e.into(),
        })?;
    state.changed();
    Ok(Json(event.into()))
}

/// Triggers a run of the DAG whose task produces the asset (Airflow 3.1's materialize). 409
/// when no DAG or several DAGs produce it.
#[utoipa::path(post, path = "/assets/{asset_id}/materialize", operation_id = "materialize_asset",
    tag = "Asset", params(("asset_id" = i64, Path)),
    responses((status = 200, body = super::dag_runs::DAGRunResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn materialize_asset(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
) -> Result<Json<super::dag_runs::DAGRunResponse>, RestError> {
    let asset = state.store().get_asset(id).await?;
    let mut dag_ids: Vec<&str> = asset
        .producing_tasks
        .iter()
        .map(|t| t.dag_id.as_str())
        .collect();
    dag_ids.dedup();
    let dag_id = match dag_ids.as_slice() {
        [one] => one.to_string(),
        [] => {
            return Err(RestError::conflict(format!(
                "No DAG produces asset `{}`",
                asset.name
            )))
        }
        _ => {
            return Err(RestError::conflict(format!(
                "More than one DAG produces asset `{}`: {}",
                asset.name,
                dag_ids.join(", ")
            )))
        }
    };
    let (record, graph) = super::common::current_dag(&state, &dag_id).await?;
    let new_run = new_dag_run(
        &graph.dag,
        record.version,
        TriggerRequest::manual(),
        Utc::now(),
        None,
    );
    let run = state.store().create_dag_run(new_run).await?;
    state.changed();
    Ok(Json(super::dag_runs::run_response(&state, run).await?))
}

async fn queued_events(
    state: &RestState,
    filter: QueuedEventFilter,
    missing: String,
) -> Result<Json<QueuedEventCollectionResponse>, RestError> {
    let events = state.store().queued_asset_events(filter).await?;
    if events.is_empty() {
        return Err(RestError::not_found(missing));
    }
    Ok(Json(QueuedEventCollectionResponse {
        total_entries: events.len() as i64,
        queued_events: events.into_iter().map(QueuedEventResponse::from).collect(),
    }))
}

async fn delete_queued(
    state: &RestState,
    filter: QueuedEventFilter,
    missing: String,
) -> Result<StatusCode, RestError> {
    if state.store().delete_queued_asset_events(filter).await? == 0 {
        return Err(RestError::not_found(missing));
    }
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

/// The events of an asset queued for the DAGs scheduled on it; 404 when there are none.
#[utoipa::path(get, path = "/assets/{asset_id}/queuedEvents", operation_id = "get_asset_queued_events",
    tag = "Asset", params(("asset_id" = i64, Path), BeforeParams),
    responses((status = 200, body = QueuedEventCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_asset_queued_events(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<Json<QueuedEventCollectionResponse>, RestError> {
    let filter = QueuedEventFilter {
        dag_id: None,
        asset_id: Some(id),
        before: params.before,
    };
    queued_events(
        &state,
        filter,
        format!("Queue event with asset_id: `{id}` was not found"),
    )
    .await
}

#[utoipa::path(delete, path = "/assets/{asset_id}/queuedEvents", operation_id = "delete_asset_queued_events",
    tag = "Asset", params(("asset_id" = i64, Path), BeforeParams),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_asset_queued_events(
    State(state): State<RestState>,
    PathParams(id): PathParams<i64>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<StatusCode, RestError> {
    let filter = QueuedEventFilter {
        dag_id: None,
        asset_id: Some(id),
        before: params.before,
    };
    delete_queued(
        &state,
        filter,
        format!("Queue event with asset_id: `{id}` was not found"),
    )
    .await
}

/// The events queued for a DAG; 404 when there are none (or no such DAG).
#[utoipa::path(get, path = "/dags/{dag_id}/assets/queuedEvents", operation_id = "get_dag_asset_queued_events",
    tag = "Asset", params(("dag_id" = String, Path), BeforeParams),
    responses((status = 200, body = QueuedEventCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag_asset_queued_events(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<Json<QueuedEventCollectionResponse>, RestError> {
    let missing = format!("Queue event with dag_id: `{dag_id}` was not found");
    let filter = QueuedEventFilter {
        dag_id: Some(dag_id),
        asset_id: None,
        before: params.before,
    };
    queued_events(&state, filter, missing).await
}

#[utoipa::path(delete, path = "/dags/{dag_id}/assets/queuedEvents", operation_id = "delete_dag_asset_queued_events",
    tag = "Asset", params(("dag_id" = String, Path), BeforeParams),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_dag_asset_queued_events(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<StatusCode, RestError> {
    let missing = format!("Queue event with dag_id: `{dag_id}` was not found");
    let filter = QueuedEventFilter {
        dag_id: Some(dag_id),
        asset_id: None,
        before: params.before,
    };
    delete_queued(&state, filter, missing).await
}

/// The event of one asset queued for one DAG.
#[utoipa::path(get, path = "/dags/{dag_id}/assets/{asset_id}/queuedEvents",
    operation_id = "get_dag_asset_queued_event", tag = "Asset",
    params(("dag_id" = String, Path), ("asset_id" = i64, Path), BeforeParams),
    responses((status = 200, body = QueuedEventResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag_asset_queued_event(
    State(state): State<RestState>,
    PathParams(path): PathParams<DagAssetPath>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<Json<QueuedEventResponse>, RestError> {
    let missing = format!(
        "Queued event with dag_id: `{}` and asset_id: `{}` was not found",
        path.dag_id, path.asset_id
    );
    let filter = QueuedEventFilter {
        dag_id: Some(path.dag_id),
        asset_id: Some(path.asset_id),
        before: params.before,
    };
    let event = state
        .store()
        .queued_asset_events(filter)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| RestError::not_found(missing))?;
    Ok(Json(event.into()))
}

#[utoipa::path(delete, path = "/dags/{dag_id}/assets/{asset_id}/queuedEvents",
    operation_id = "delete_dag_asset_queued_event", tag = "Asset",
    params(("dag_id" = String, Path), ("asset_id" = i64, Path), BeforeParams),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_dag_asset_queued_event(
    State(state): State<RestState>,
    PathParams(path): PathParams<DagAssetPath>,
    QueryParams(params): QueryParams<BeforeParams>,
) -> Result<StatusCode, RestError> {
    let missing = format!(
        "Queued event with dag_id: `{}` and asset_id: `{}` was not found",
        path.dag_id, path.asset_id
    );
    let filter = QueuedEventFilter {
        dag_id: Some(path.dag_id),
        asset_id: Some(path.asset_id),
        before: params.before,
    };
    delete_queued(&state, filter, missing).await
}

//! XCom entries of task instances: `GET/POST …/taskInstances/{task_id}/xcomEntries` and
//! `GET/PATCH/DELETE …/xcomEntries/{xcom_key}`. The list takes `~` for the DAG, the run or
//! the task (every one); writes need real ones.
//!
//! Values are JSON in updraft, so `deserialize` changes nothing; `stringify=true` answers
//! the value as JSON text (a string stays as it is), where Airflow answers Python's `str()`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_store::{StoreError, Window, XComEntry, XComKey, XComQuery};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::params::Paging;
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_xcom_entries",
        Access::Require(Action::Read, Resource::XCom),
    ),
    (
        "get_xcom_entry",
        Access::Require(Action::Read, Resource::XCom),
    ),
    (
        "create_xcom_entry",
        Access::Require(Action::Create, Resource::XCom),
    ),
    (
        "update_xcom_entry",
        Access::Require(Action::Edit, Resource::XCom),
    ),
    (
        "delete_xcom_entry",
        Access::Require(Action::Delete, Resource::XCom),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_xcom_entries, create_xcom_entry))
        .routes(routes!(
            get_xcom_entry,
            update_xcom_entry,
            delete_xcom_entry
        ))
}

const ENTRIES: &str = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries";

/// Airflow's `XComResponse` (lists leave the value out).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct XComResponse {
    pub key: String,
    pub timestamp: DateTime<Utc>,
    pub logical_date: Option<DateTime<Utc>>,
    pub map_index: i64,
    pub task_id: String,
    pub dag_id: String,
    pub run_id: String,
    pub dag_display_name: String,
    pub task_display_name: String,
    pub run_after: DateTime<Utc>,
}

/// Airflow's `XComResponseNative` (or `XComResponseString` with `stringify=true`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct XComResponseNative {
    #[serde(flatten)]
    pub entry: XComResponse,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// Airflow's `XComCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct XComCollectionResponse {
    pub xcom_entries: Vec<XComResponse>,
    pub total_entries: u64,
}

/// Airflow's `XComCreateBody`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XComCreateBody {
    pub key: String,
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    #[serde(default = "no_map_index")]
    pub map_index: i64,
}

/// Airflow's `XComUpdateBody`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XComUpdateBody {
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    #[serde(default = "no_map_index")]
    pub map_index: i64,
}

fn no_map_index() -> i64 {
    -1
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct XComListParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// Only this key.
    pub xcom_key: Option<String>,
    /// Only this map index (-1: not mapped).
    pub map_index: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct XComEntryParams {
    /// The map index (default -1: not mapped).
    pub map_index: Option<i64>,
    /// Accepted for compatibility: values are JSON already.
    #[allow(dead_code)]
    pub deserialize: Option<bool>,
    /// Answer the value as text.
    pub stringify: Option<bool>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapIndexParam {
    /// The map index (default -1: not mapped).
    pub map_index: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct EntriesPath {
    dag_id: String,
    dag_run_id: String,
    task_id: String,
}

#[derive(Debug, Deserialize)]
struct EntryPath {
    dag_id: String,
    dag_run_id: String,
    task_id: String,
    xcom_key: String,
}

fn wildcard(id: String) -> Option<String> {
    (id != "~").then_some(id)
}

fn summary(entry: &XComEntry) -> XComResponse {
    XComResponse {
        key: entry.key.clone(),
        timestamp: entry.timestamp.unwrap_or(entry.logical_date),
        logical_date: Some(entry.logical_date),
        map_index: entry.map_index,
        task_id: entry.task_id.clone(),
        dag_id: entry.dag_id.clone(),
        run_id: entry.run_id.clone(),
        dag_display_name: entry.dag_id.clone(),
        task_display_name: entry.task_id.clone(),
        run_after: entry.logical_date,
    }
}

fn native(entry: XComEntry, stringify: bool) -> XComResponseNative {
    let value = match (stringify, &entry.value) {
        (true, serde_json::Value::String(_)) | (false, _) => entry.value.clone(),
        (true, other) => serde_json::Value::String(other.to_string()),
    };
    XComResponseNative {
        entry: summary(&entry),
        value,
    }
}

fn entry_not_found(key: &XComKey) -> RestError {
    RestError::not_found(format!(
        "XCom entry with key: `{}` not found (dag {}, run {}, task {}, map index {})",
        key.key, key.dag_id, key.run_id, key.task_id, key.map_index
    ))
}

/// Writes need real ids: `~` stands for many.
fn no_wildcards(dag_id: &str, run_id: &str, task_id: &str) -> Result<(), RestError> {
    if [dag_id, run_id, task_id].contains(&"~") {
        return Err(RestError::bad_request(
            "`~` lists entries of every DAG, run or task; a write needs real ids",
        ));
    }
    Ok(())
}

async fn find(state: &RestState, key: &XComKey) -> Result<Option<XComEntry>, RestError> {
    let page = state
        .store()
        .query_xcoms(XComQuery {
            dag_id: Some(key.dag_id.clone()),
            run_id: Some(key.run_id.clone()),
            task_id: Some(key.task_id.clone()),
            map_index: Some(key.map_index),
            key: Some(key.key.clone()),
            window: Window {
                limit: 1,
                offset: 0,
            },
        })
        .await?;
    Ok(page.items.into_iter().next())
}

/// The task instance and run must exist to write an entry.
async fn check_task_instance(state: &RestState, key: &XComKey) -> Result<(), RestError> {
    let run = match state.store().get_dag_run(&key.dag_id, &key.run_id).await {
        Ok(run) => run,
        Err(StoreError::NotFound(_)) => {
            return Err(RestError::not_found(format!(
                "The DagRun with dag_id: `{}` and run_id: `{}` was not found",
                key.dag_id, key.run_id
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let exists = state
        .store()
        .task_instances(run.id)
        .await?
        .iter()
        .any(|ti| ti.task_id == key.task_id);
    if !exists {
        return Err(RestError::not_found(format!(
            "Task Instance not found: dag {}, run {}, task {}",
            key.dag_id, key.run_id, key.task_id
        )));
    }
    Ok(())
}

/// XCom entries, without their values.
#[utoipa::path(get, path = ENTRIES, operation_id = "get_xcom_entries", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        XComListParams),
    responses((status = 200, body = XComCollectionResponse),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_xcom_entries(
    State(state): State<RestState>,
    PathParams(path): PathParams<EntriesPath>,
    QueryParams(params): QueryParams<XComListParams>,
) -> Result<Json<XComCollectionResponse>, RestError> {
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let page = state
        .store()
        .query_xcoms(XComQuery {
            dag_id: wildcard(path.dag_id),
            run_id: wildcard(path.dag_run_id),
            task_id: wildcard(path.task_id),
            map_index: params.map_index,
            key: params.xcom_key,
            window,
        })
        .await?;
    Ok(Json(XComCollectionResponse {
        xcom_entries: page.items.iter().map(summary).collect(),
        total_entries: page.total,
    }))
}

/// One XCom entry with its value.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "get_xcom_entry", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("xcom_key" = String, Path), XComEntryParams),
    responses((status = 200, body = XComResponseNative), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_xcom_entry(
    State(state): State<RestState>,
    PathParams(path): PathParams<EntryPath>,
    QueryParams(params): QueryParams<XComEntryParams>,
) -> Result<Json<XComResponseNative>, RestError> {
    let key = XComKey {
        dag_id: path.dag_id,
        run_id: path.dag_run_id,
        task_id: path.task_id,
        map_index: params.map_index.unwrap_or(-1),
        key: path.xcom_key,
    };
    let entry = find(&state, &key)
        .await?
        .ok_or_else(|| entry_not_found(&key))?;
    Ok(Json(native(entry, params.stringify.unwrap_or(false))))
}

/// Creates an entry; 409 if one has the key.
#[utoipa::path(post, path = ENTRIES, operation_id = "create_xcom_entry", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    request_body = XComCreateBody,
    responses((status = 201, body = XComResponseNative), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_xcom_entry(
    State(state): State<RestState>,
    PathParams(path): PathParams<EntriesPath>,
    JsonBody(body): JsonBody<XComCreateBody>,
) -> Result<(StatusCode, Json<XComResponseNative>), RestError> {
    no_wildcards(&path.dag_id, &path.dag_run_id, &path.task_id)?;
    if body.key.is_empty() {
        return Err(RestError::invalid(&["body", "key"], "an XCom needs a key"));
    }
    if body.map_index < -1 {
        return Err(RestError::invalid(
            &["body", "map_index"],
            "at least -1 (-1: not mapped)",
        ));
    }
    let key = XComKey {
        dag_id: path.dag_id,
        run_id: path.dag_run_id,
        task_id: path.task_id,
        map_index: body.map_index,
        key: body.key,
    };
    check_task_instance(&state, &key).await?;
    if find(&state, &key).await?.is_some() {
        return Err(RestError::conflict(format!(
            "The XCom with key: `{}` already exists",
            key.key
        )));
    }
    let entry = state.store().put_xcom(key, body.value, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(native(entry, false))))
}

/// Replaces the value of an existing entry.
#[utoipa::path(patch, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "update_xcom_entry", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("xcom_key" = String, Path)),
    request_body = XComUpdateBody,
    responses((status = 200, body = XComResponseNative), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn update_xcom_entry(
    State(state): State<RestState>,
    PathParams(path): PathParams<EntryPath>,
    JsonBody(body): JsonBody<XComUpdateBody>,
) -> Result<Json<XComResponseNative>, RestError> {
    no_wildcards(&path.dag_id, &path.dag_run_id, &path.task_id)?;
    let key = XComKey {
        dag_id: path.dag_id,
        run_id: path.dag_run_id,
        task_id: path.task_id,
        map_index: body.map_index,
        key: path.xcom_key,
    };
    if find(&state, &key).await?.is_none() {
        return Err(entry_not_found(&key));
    }
    let entry = state.store().put_xcom(key, body.value, Utc::now()).await?;
    Ok(Json(native(entry, false)))
}

/// Deletes an entry.
#[utoipa::path(delete, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/xcomEntries/{xcom_key}",
    operation_id = "delete_xcom_entry", tag = "XCom",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("xcom_key" = String, Path), MapIndexParam),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn delete_xcom_entry(
    State(state): State<RestState>,
    PathParams(path): PathParams<EntryPath>,
    QueryParams(params): QueryParams<MapIndexParam>,
) -> Result<StatusCode, RestError> {
    no_wildcards(&path.dag_id, &path.dag_run_id, &path.task_id)?;
    let key = XComKey {
        dag_id: path.dag_id,
        run_id: path.dag_run_id,
        task_id: path.task_id,
        map_index: params.map_index.unwrap_or(-1),
        key: path.xcom_key,
    };
    if !state.store().delete_xcom(key.clone()).await? {
        return Err(entry_not_found(&key));
    }
    Ok(StatusCode::NO_CONTENT)
}

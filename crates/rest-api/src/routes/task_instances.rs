//! Reading task instances: `GET …/dagRuns/{dag_run_id}/taskInstances` (either id may be
//! `~`), one task instance, its tries, and `POST /dags/~/dagRuns/~/taskInstances/list`.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use updraft_model::TaskState;
use updraft_store::{
    DagRun, Sort, TaskInstance, TaskInstanceQuery, TaskInstanceSortField, TimeRange,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{dag_record, dag_run, wildcard, PathParams, QueryParams};
use super::ti_shape::{
    Shaper, TaskInstanceCollectionResponse, TaskInstanceHistoryCollectionResponse,
    TaskInstanceHistoryResponse, TaskInstanceResponse,
};
use crate::auth::{Access, Action, Resource};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_task_instances",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_task_instance",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_mapped_task_instance",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_mapped_task_instances",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_task_instance_tries",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_task_instance_try_details",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
    (
        "get_task_instances_batch",
        Access::Require(Action::Read, Resource::TaskInstance),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_task_instances))
        .routes(routes!(get_task_instance))
        .routes(routes!(get_mapped_task_instance))
        .routes(routes!(get_mapped_task_instances))
        .routes(routes!(get_task_instance_tries))
        .routes(routes!(get_task_instance_try_details))
        .routes(routes!(get_task_instances_batch))
}

/// A run and one of its task instances (map index -1), or Airflow's 404.
pub(crate) async fn task_instance(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
) -> Result<(DagRun, TaskInstance), RestError> {
    task_instance_at(state, dag_id, run_id, task_id, -1).await
}

/// A run and one of its task instances by map index (-1: a task that is not mapped, or a
/// mapped task not expanded yet), or Airflow's 404.
pub(crate) async fn task_instance_at(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: i64,
) -> Result<(DagRun, TaskInstance), RestError> {
    let run = dag_run(state, dag_id, run_id).await?;
    let ti = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .find(|ti| ti.task_id == task_id && ti.map_index == map_index)
        .ok_or_else(|| {
            RestError::not_found(format!(
                "The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}` and map_index: `{map_index}` was not found"
            ))
        })?;
    Ok((run, ti))
}

const TI_ORDER: &[(&str, TaskInstanceSortField)] = &[
    ("id", TaskInstanceSortField::Id),
    ("dag_id", TaskInstanceSortField::DagId),
    ("run_id", TaskInstanceSortField::RunId),
    ("dag_run_id", TaskInstanceSortField::RunId),
    ("task_id", TaskInstanceSortField::TaskId),
    ("map_index", TaskInstanceSortField::MapIndex),
    ("state", TaskInstanceSortField::State),
    ("try_number", TaskInstanceSortField::TryNumber),
    ("logical_date", TaskInstanceSortField::LogicalDate),
    ("run_after", TaskInstanceSortField::LogicalDate),
    ("start_date", TaskInstanceSortField::StartDate),
    ("end_date", TaskInstanceSortField::EndDate),
    ("duration", TaskInstanceSortField::Duration),
    ("pool", TaskInstanceSortField::Pool),
    ("queue", TaskInstanceSortField::Queue),
    ("priority_weight", TaskInstanceSortField::PriorityWeight),
];

/// Task states from Airflow's names; `no_status` (or an empty value) is "none".
fn parse_ti_states(values: &[String], location: &[&str]) -> Result<Vec<TaskState>, RestError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| match v {
            "" | "none" | "no_status" | "null" => Ok(TaskState::None),
            v => v.parse::<TaskState>().map_err(|_| {
                RestError::invalid(location, format!("{v:?} is not a task instance state"))
            }),
        })
        .collect()
}

fn range(
    gte: Option<DateTime<Utc>>,
    gt: Option<DateTime<Utc>>,
    lte: Option<DateTime<Utc>>,
    lt: Option<DateTime<Utc>>,
) -> TimeRange {
    TimeRange { gte, gt, lte, lt }
}

fn sort_or_default(values: &[String]) -> Result<Vec<Sort<TaskInstanceSortField>>, RestError> {
    let mut sort = order_by(values, TI_ORDER)?;
    if sort.is_empty() {
        sort.push(Sort {
            field: TaskInstanceSortField::MapIndex,
            descending: false,
        });
    }
    Ok(sort)
}

async fn shape_page(
    state: &RestState,
    query: TaskInstanceQuery,
) -> Result<TaskInstanceCollectionResponse, RestError> {
    let page = state.store().query_task_instances(query).await?;
    let mut shaper = Shaper::default();
    let mut task_instances = Vec::with_capacity(page.items.len());
    for row in &page.items {
        task_instances.push(
            shaper
                .instance(state, &row.ti, row.logical_date, row.dag_version)
                .await?,
        );
    }
    Ok(TaskInstanceCollectionResponse {
        task_instances,
        total_entries: page.total,
    })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskInstanceFilters {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Repeatable.
    #[serde(default)]
    pub task_id: Vec<String>,
    pub task_display_name_pattern: Option<String>,
    /// Repeatable; `no_status` for task instances that have none.
    #[serde(default)]
    pub state: Vec<String>,
    /// Repeatable.
    #[serde(default)]
    pub pool: Vec<String>,
    /// Repeatable.
    #[serde(default)]
    pub queue: Vec<String>,
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
    /// Seconds between start and end.
    pub duration_gte: Option<f64>,
    pub duration_lte: Option<f64>,
    /// `map_index` by default; `-` for descending.
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// The task instances of a run, of every run of a DAG (`~` run), or of every DAG (`~`).
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances",
    operation_id = "get_task_instances", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), TaskInstanceFilters),
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_task_instances(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
    QueryParams(f): QueryParams<TaskInstanceFilters>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    // Whether the DAG (or run) exists is asked only when there is nothing to show (a task
    // instance is always of an existing run), in the order of the checks as before.
    let exists = || async {
        match wildcard(&dag_id) {
            Some(dag_id) => match wildcard(&run_id) {
                Some(run_id) => dag_run(&state, dag_id, run_id).await.map(|_| ()),
                None => dag_record(&state, dag_id).await.map(|_| ()),
            },
            None => Ok(()),
        }
    };
    let states = match parse_ti_states(&f.state, &["query", "state"]) {
        Ok(states) => states,
        Err(e) => {
            exists().await?;
            return Err(e);
        }
    };
    let sort = match sort_or_default(&f.order_by) {
        Ok(sort) => sort,
        Err(e) => {
            exists().await?;
            return Err(e);
        }
    };
    let query = TaskInstanceQuery {
        dag_ids: wildcard(&dag_id).map(|d| vec![d.to_string()]),
        run_ids: wildcard(&run_id).map(|r| vec![r.to_string()]),
        task_ids: (!f.task_id.is_empty()).then(|| f.task_id.clone()),
        task_id_pattern: f.task_display_name_pattern.clone(),
        states,
        pools: f.pool.clone(),
        queues: f.queue.clone(),
        logical_date: range(
            f.logical_date_gte,
            f.logical_date_gt,
            f.logical_date_lte,
            f.logical_date_lt,
        ),
        start_date: range(
            f.start_date_gte,
            f.start_date_gt,
            f.start_date_lte,
            f.start_date_lt,
        ),
        end_date: range(f.end_date_gte, f.end_date_gt, f.end_date_lte, f.end_date_lt),
        duration_gte: f.duration_gte,
        duration_lte: f.duration_lte,
        sort,
        id_after: None,
        without_total: false,
        window: Paging {
            limit: f.limit,
            offset: f.offset,
        }
        .window(state.config()),
    };
    let page = shape_page(&state, query).await?;
    if page.task_instances.is_empty() {
        exists().await?;
    }
    Ok(Json(page))
}

/// One task instance.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    operation_id = "get_task_instance", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskInstanceResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_task_instance(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id)): PathParams<(String, String, String)>,
) -> Result<Json<TaskInstanceResponse>, RestError> {
    let (run, ti) = task_instance(&state, &dag_id, &run_id, &task_id).await?;
    Ok(Json(
        Shaper::default()
            .instance(&state, &ti, run.logical_date, run.dag_version)
            .await?,
    ))
}

/// One instance of a mapped task.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    operation_id = "get_mapped_task_instance", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("map_index" = i64, Path)),
    responses((status = 200, body = TaskInstanceResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_mapped_task_instance(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id, map_index)): PathParams<(String, String, String, i64)>,
) -> Result<Json<TaskInstanceResponse>, RestError> {
    let (run, ti) = task_instance_at(&state, &dag_id, &run_id, &task_id, map_index).await?;
    Ok(Json(
        Shaper::default()
            .instance(&state, &ti, run.logical_date, run.dag_version)
            .await?,
    ))
}

/// Every instance of a mapped task in a run, by map index.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/listMapped",
    operation_id = "get_mapped_task_instances", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_mapped_task_instances(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id)): PathParams<(String, String, String)>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    let run = dag_run(&state, &dag_id, &run_id).await?;
    let mut mapped: Vec<TaskInstance> = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .filter(|ti| ti.task_id == task_id)
        .collect();
    if mapped.is_empty() {
        return Err(RestError::not_found(format!(
            "Task id {task_id} not found in run {run_id} of DAG {dag_id}"
        )));
    }
    mapped.retain(|ti| ti.map_index >= 0);
    mapped.sort_by_key(|ti| ti.map_index);
    let mut shaper = Shaper::default();
    let mut task_instances = Vec::with_capacity(mapped.len());
    for ti in &mapped {
        task_instances.push(
            shaper
                .instance(&state, ti, run.logical_date, run.dag_version)
                .await?,
        );
    }
    Ok(Json(TaskInstanceCollectionResponse {
        total_entries: task_instances.len() as u64,
        task_instances,
    }))
}

async fn tries(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
) -> Result<Vec<TaskInstanceHistoryResponse>, RestError> {
    let (run, ti) = task_instance(state, dag_id, run_id, task_id).await?;
    let history = state.store().task_tries(ti.id).await?;
    Shaper::default()
        .tries(state, &ti, &history, run.dag_version)
        .await
}

/// Every try of a task instance, oldest first.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries",
    operation_id = "get_task_instance_tries", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path)),
    responses((status = 200, body = TaskInstanceHistoryCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_task_instance_tries(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id)): PathParams<(String, String, String)>,
) -> Result<Json<TaskInstanceHistoryCollectionResponse>, RestError> {
    let task_instances = tries(&state, &dag_id, &run_id, &task_id).await?;
    Ok(Json(TaskInstanceHistoryCollectionResponse {
        total_entries: task_instances.len() as u64,
        task_instances,
    }))
}

/// One try of a task instance.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/tries/{task_try_number}",
    operation_id = "get_task_instance_try_details", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("task_try_number" = u32, Path)),
    responses((status = 200, body = TaskInstanceHistoryResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_task_instance_try_details(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id, try_number)): PathParams<(String, String, String, u32)>,
) -> Result<Json<TaskInstanceHistoryResponse>, RestError> {
    tries(&state, &dag_id, &run_id, &task_id)
        .await?
        .into_iter()
        .find(|t| t.try_number == try_number)
        .map(Json)
        .ok_or_else(|| {
            RestError::not_found(format!(
                "The Task Instance with dag_id: `{dag_id}`, run_id: `{run_id}`, task_id: `{task_id}`, try_number: `{try_number}` and map_index: `-1` was not found"
            ))
        })
}

/// Airflow's `TaskInstancesBatchBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInstancesBatchBody {
    pub dag_ids: Option<Vec<String>>,
    pub dag_run_ids: Option<Vec<String>>,
    pub task_ids: Option<Vec<String>>,
    pub state: Option<Vec<Option<String>>>,
    pub pool: Option<Vec<String>>,
    pub queue: Option<Vec<String>>,
    #[allow(dead_code)]
    pub executor: Option<Vec<String>>,
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
    pub duration_gte: Option<f64>,
    pub duration_lte: Option<f64>,
    pub order_by: Option<String>,
    pub page_offset: Option<u64>,
    pub page_limit: Option<u32>,
}

/// Task instances across DAGs and runs, the filters in the body.
#[utoipa::path(post, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list",
    operation_id = "get_task_instances_batch", tag = "Task Instance",
    params(("dag_id" = String, Path, description = "`~`"), ("dag_run_id" = String, Path, description = "`~`")),
    request_body = TaskInstancesBatchBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn get_task_instances_batch(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
    body: Result<Json<TaskInstancesBatchBody>, JsonRejection>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    let Json(b) = body?;
    let restrict = |path: &str, listed: Option<Vec<String>>| -> Option<Vec<String>> {
        match (wildcard(path), listed.filter(|l| !l.is_empty())) {
            (Some(one), Some(listed)) => Some(listed.into_iter().filter(|l| l == one).collect()),
            (Some(one), None) => Some(vec![one.to_string()]),
            (None, listed) => listed,
        }
    };
    let states: Vec<String> = b
        .state
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.unwrap_or_else(|| "none".to_string()))
        .collect();
    let query = TaskInstanceQuery {
        dag_ids: restrict(&dag_id, b.dag_ids.clone()),
        run_ids: restrict(&run_id, b.dag_run_ids.clone()),
        task_ids: b.task_ids.clone().filter(|t| !t.is_empty()),
        task_id_pattern: None,
        states: parse_ti_states(&states, &["body", "state"])?,
        pools: b.pool.clone().unwrap_or_default(),
        queues: b.queue.clone().unwrap_or_default(),
        logical_date: {
            let l = range(
                b.logical_date_gte,
                b.logical_date_gt,
                b.logical_date_lte,
                b.logical_date_lt,
            );
            let r = range(
                b.run_after_gte,
                b.run_after_gt,
                b.run_after_lte,
                b.run_after_lt,
            );
            if l.is_empty() {
                r
            } else {
                l
            }
        },
        start_date: range(
            b.start_date_gte,
            b.start_date_gt,
            b.start_date_lte,
            b.start_date_lt,
        ),
        end_date: range(b.end_date_gte, b.end_date_gt, b.end_date_lte, b.end_date_lt),
        duration_gte: b.duration_gte,
        duration_lte: b.duration_lte,
        sort: sort_or_default(&b.order_by.clone().into_iter().collect::<Vec<_>>())?,
        id_after: None,
        without_total: false,
        window: Paging {
            limit: Some(b.page_limit.unwrap_or(100)),
            offset: b.page_offset,
        }
        .window(state.config()),
    };
    Ok(Json(shape_page(&state, query).await?))
}

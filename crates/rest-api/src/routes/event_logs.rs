//! `GET /eventLogs` (the audit log, filtered, sorted, paged) and `GET
//! /eventLogs/{event_log_id}`.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_store::{EventLogQuery, EventLogRecord, EventLogSortField, TimeRange};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{PathParams, QueryParams};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_event_logs",
        Access::Require(Action::Read, Resource::EventLog),
    ),
    (
        "get_event_log",
        Access::Require(Action::Read, Resource::EventLog),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_event_logs))
        .routes(routes!(get_event_log))
}

/// Airflow's `EventLogResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventLogResponse {
    pub event_log_id: i64,
    pub when: DateTime<Utc>,
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    pub event: String,
    pub logical_date: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    /// The parameters of the change, as JSON text with secrets masked.
    pub extra: Option<String>,
    pub dag_display_name: Option<String>,
    pub task_display_name: Option<String>,
}

/// Airflow's `EventLogCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventLogCollectionResponse {
    pub event_logs: Vec<EventLogResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventLogParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `id`/`event_log_id`, `when`/`dttm`, `event`, `owner`, `dag_id`, `run_id`, `task_id`;
    /// `-` for descending; repeatable. By id when absent, as Airflow.
    #[serde(default)]
    pub order_by: Vec<String>,
    pub dag_id: Option<String>,
    pub task_id: Option<String>,
    pub run_id: Option<String>,
    pub map_index: Option<i64>,
    pub try_number: Option<u32>,
    pub owner: Option<String>,
    pub event: Option<String>,
    /// Leave out these events (repeatable, or comma-separated).
    #[serde(default)]
    pub excluded_events: Vec<String>,
    /// Only these events (repeatable, or comma-separated).
    #[serde(default)]
    pub included_events: Vec<String>,
    /// Only events strictly before this instant.
    pub before: Option<DateTime<Utc>>,
    /// Only events strictly after this instant.
    pub after: Option<DateTime<Utc>>,
}

const EVENT_LOG_ORDER: &[(&str, EventLogSortField)] = &[
    ("id", EventLogSortField::Id),
    ("event_log_id", EventLogSortField::Id),
    ("when", EventLogSortField::When),
    ("dttm", EventLogSortField::When),
    ("event", EventLogSortField::Event),
    ("owner", EventLogSortField::Owner),
    ("dag_id", EventLogSortField::DagId),
    ("run_id", EventLogSortField::RunId),
    ("task_id", EventLogSortField::TaskId),
];

fn response(record: EventLogRecord) -> EventLogResponse {
    let event = record.event;
    EventLogResponse {
        event_log_id: record.id,
        when: event.when,
        dag_display_name: event.dag_id.clone(),
        task_display_name: event.task_id.clone(),
        dag_id: event.dag_id,
        task_id: event.task_id,
        run_id: event.run_id,
        map_index: event.map_index,
        try_number: event.try_number,
        event: event.event,
        logical_date: event.logical_date,
        owner: event.owner,
        extra: event.extra,
    }
}

fn split(values: Vec<String>) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// The audit log, filtered, sorted and paged.
#[utoipa::path(get, path = "/eventLogs", operation_id = "get_event_logs", tag = "Event Log",
    params(EventLogParams),
    responses((status = 200, body = EventLogCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_event_logs(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<EventLogParams>,
) -> Result<Json<EventLogCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, EVENT_LOG_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let page = state
        .store()
        .query_event_logs(EventLogQuery {
            dag_id: params.dag_id,
            run_id: params.run_id,
            task_id: params.task_id,
            map_index: params.map_index,
            try_number: params.try_number,
            owner: params.owner,
            event: params.event,
            excluded_events: split(params.excluded_events),
            included_events: split(params.included_events),
            when: TimeRange {
                lt: params.before,
                gt: params.after,
                ..TimeRange::default()
            },
            sort,
            window,
        })
        .await?;
    Ok(Json(EventLogCollectionResponse {
        event_logs: page.items.into_iter().map(response).collect(),
        total_entries: page.total,
    }))
}

/// One event of the audit log.
#[utoipa::path(get, path = "/eventLogs/{event_log_id}", operation_id = "get_event_log",
    tag = "Event Log",
    params(("event_log_id" = i64, Path)),
    responses((status = 200, body = EventLogResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_event_log(
    State(state): State<RestState>,
    PathParams(event_log_id): PathParams<i64>,
) -> Result<Json<EventLogResponse>, RestError> {
    let record = state
        .store()
        .get_event_log(event_log_id)
        .await
        .map_err(|e| match e {
            updraft_store::StoreError::NotFound(_) => {
                RestError::not_found(format!("The Event Log with id: `{event_log_id}` not found"))
            }
            other => other.into(),
        })?;
    Ok(Json(response(record)))
}

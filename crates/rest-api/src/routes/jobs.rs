//! `GET /jobs`: the long-running processes that beat (schedulers, workers, API servers,
//! standalones). A process that shuts down cleanly removes its row, so `end_date` is always
//! null and a job that stopped beating without shutting down shows `is_alive=false`.
//!
//! `job_type` names, Airflow-like: `scheduler` → `SchedulerJob` (as Airflow's),
//! `worker` → `WorkerJob`, `api-server` → `ApiServerJob`, `standalone` → `StandaloneJob`
//! (scheduler, DAG processor and a worker in one process). The filter takes either form.

use std::cmp::Ordering;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_store::{JobKind, JobRecord, TimeRange};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::QueryParams;
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions =
    &[("get_jobs", Access::Require(Action::Read, Resource::Job))];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(get_jobs))
}

/// Airflow's `JobResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobResponse {
    pub id: i64,
    pub dag_id: Option<String>,
    /// `running`, or `draining` for a worker finishing its tasks before it exits.
    pub state: Option<String>,
    pub job_type: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub latest_heartbeat: Option<DateTime<Utc>>,
    pub executor_class: Option<String>,
    pub hostname: Option<String>,
    pub unixname: Option<String>,
    pub dag_display_name: Option<String>,
}

/// Airflow's `JobCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobCollectionResponse {
    pub jobs: Vec<JobResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `id`, `job_type`, `state`/`job_state`, `hostname`, `start_date`, `latest_heartbeat`;
    /// `-` for descending; repeatable.
    #[serde(default)]
    pub order_by: Vec<String>,
    pub job_state: Option<String>,
    /// `SchedulerJob`, `WorkerJob`, `ApiServerJob`, `StandaloneJob` (or `scheduler`, …).
    pub job_type: Option<String>,
    pub hostname: Option<String>,
    /// updraft has no executor classes: any value matches nothing.
    pub executor_class: Option<String>,
    /// Whether the job beat within the scheduler's health threshold.
    pub is_alive: Option<bool>,
    pub start_date_gte: Option<DateTime<Utc>>,
    pub start_date_gt: Option<DateTime<Utc>>,
    pub start_date_lte: Option<DateTime<Utc>>,
    pub start_date_lt: Option<DateTime<Utc>>,
    pub end_date_gte: Option<DateTime<Utc>>,
    pub end_date_gt: Option<DateTime<Utc>>,
    pub end_date_lte: Option<DateTime<Utc>>,
    pub end_date_lt: Option<DateTime<Utc>>,
}

/// The Airflow-like name of a kind of job.
pub fn job_type(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Scheduler => "SchedulerJob",
        JobKind::Worker => "WorkerJob",
        JobKind::ApiServer => "ApiServerJob",
        JobKind::Standalone => "StandaloneJob",
    }
}

fn parse_job_type(name: &str) -> Option<JobKind> {
    [
        JobKind::Scheduler,
        JobKind::Worker,
        JobKind::ApiServer,
        JobKind::Standalone,
    ]
    .into_iter()
    .find(|kind| job_type(*kind).eq_ignore_ascii_case(name) || kind.as_str() == name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobSort {
    Id,
    JobType,
    State,
    Hostname,
    StartDate,
    LatestHeartbeat,
}

const JOB_ORDER: &[(&str, JobSort)] = &[
    ("id", JobSort::Id),
    ("job_type", JobSort::JobType),
    ("state", JobSort::State),
    ("job_state", JobSort::State),
    ("hostname", JobSort::Hostname),
    ("start_date", JobSort::StartDate),
    ("latest_heartbeat", JobSort::LatestHeartbeat),
];

fn within(at: DateTime<Utc>, range: &TimeRange) -> bool {
    range.gte.is_none_or(|b| at >= b)
        && range.gt.is_none_or(|b| at > b)
        && range.lte.is_none_or(|b| at <= b)
        && range.lt.is_none_or(|b| at < b)
}

fn compare(a: &JobRecord, b: &JobRecord, field: JobSort) -> Ordering {
    match field {
        JobSort::Id => a.number.cmp(&b.number),
        JobSort::JobType => job_type(a.kind).cmp(job_type(b.kind)),
        JobSort::State => a.state.cmp(&b.state),
        JobSort::Hostname => a.hostname.cmp(&b.hostname),
        JobSort::StartDate => a.started_at.cmp(&b.started_at),
        JobSort::LatestHeartbeat => a.latest_heartbeat.cmp(&b.latest_heartbeat),
    }
}

/// Jobs, filtered, sorted and paged.
#[utoipa::path(get, path = "/jobs", operation_id = "get_jobs", tag = "Job",
    params(JobParams),
    responses((status = 200, body = JobCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_jobs(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<JobParams>,
) -> Result<Json<JobCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, JOB_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let kind = match params.job_type.as_deref() {
        Some(name) => Some(parse_job_type(name).ok_or_else(|| {
            RestError::invalid(
                &["query", "job_type"],
                format!("unknown job type {name:?}: SchedulerJob, WorkerJob, ApiServerJob or StandaloneJob"),
            )
        })?),
        None => None,
    };
    let start = TimeRange {
        gte: params.start_date_gte,
        gt: params.start_date_gt,
        lte: params.start_date_lte,
        lt: params.start_date_lt,
    };
    let end = TimeRange {
        gte: params.end_date_gte,
        gt: params.end_date_gt,
        lte: params.end_date_lte,
        lt: params.end_date_lt,
    };
    let alive_since = Utc::now()
        - chrono::TimeDelta::from_std(state.config().health.stale_after)
            .unwrap_or(chrono::TimeDelta::MAX);
    let mut jobs: Vec<JobRecord> = state
        .store()
        .list_jobs(kind, DateTime::<Utc>::UNIX_EPOCH)
        .await?
        .into_iter()
        .filter(|job| {
            params.job_state.as_deref().is_none_or(|s| job.state == s)
                && params.hostname.as_deref().is_none_or(|h| job.hostname == h)
                && params
                    .is_alive
                    .is_none_or(|alive| (job.latest_heartbeat >= alive_since) == alive)
                && within(job.started_at, &start)
                // Jobs have no end date, so any bound on it, or on an executor, excludes all.
                && end.is_empty()
                && params.executor_class.is_none()
        })
        .collect();
    jobs.sort_by(|a, b| {
        sort.iter()
            .map(|key| {
                let order = compare(a, b, key.field);
                if key.descending {
                    order.reverse()
                } else {
                    order
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.number.cmp(&b.number))
    });
    let total_entries = jobs.len() as u64;
    let jobs = jobs
        .into_iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(|job| JobResponse {
            id: job.number,
            dag_id: None,
            state: Some(job.state),
            job_type: Some(job_type(job.kind).to_string()),
            start_date: Some(job.started_at),
            end_date: None,
            latest_heartbeat: Some(job.latest_heartbeat),
            executor_class: None,
            hostname: Some(job.hostname),
            unixname: None,
            dag_display_name: None,
        })
        .collect();
    Ok(Json(JobCollectionResponse {
        jobs,
        total_entries,
    }))
}

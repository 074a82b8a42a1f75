//! `POST …/dagRuns/{dag_run_id}/clear` and `GET …/dagRuns/{dag_run_id}/wait` (the run's
//! state as NDJSON until it ends).

use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use updraft_model::TaskState;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{check_note, dag_run, PathParams, QueryParams};
use super::dag_runs::{run_response, DAGRunResponse};
use super::ti_shape::{Shaper, TaskInstanceResponse};
use crate::auth::{Access, Action, Resource};
use crate::{RestError, RestState};

/// The shortest poll of `wait`: a smaller interval would turn one request into a busy loop
/// of database reads.
const MIN_WAIT_INTERVAL_SECS: f64 = 0.5;

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "clear_dag_run",
        Access::Require(Action::Edit, Resource::DagRun),
    ),
    (
        "wait_dag_run_until_finished",
        Access::Require(Action::Read, Resource::DagRun),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(clear_dag_run))
        .routes(routes!(wait_dag_run_until_finished))
}

/// Airflow's `DAGRunClearBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct DAGRunClearBody {
    /// Only answer what would be cleared (default true).
    pub dry_run: Option<bool>,
    /// Only failed (and upstream-failed) task instances.
    pub only_failed: Option<bool>,
    #[allow(dead_code)]
    pub only_new: Option<bool>,
    #[allow(dead_code)]
    pub run_on_latest_version: Option<bool>,
    pub note: Option<String>,
}

/// Airflow's `ClearTaskInstanceCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClearTaskInstanceCollectionResponse {
    pub task_instances: Vec<TaskInstanceResponse>,
    pub total_entries: u64,
}

/// What clearing a run answers: the task instances it would clear (dry run), or the run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ClearDagRunResponse {
    DryRun(ClearTaskInstanceCollectionResponse),
    Run(Box<DAGRunResponse>),
}

/// Clears a run's task instances (all, or only the failed ones) so they run again.
#[utoipa::path(post, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/clear", operation_id = "clear_dag_run",
    tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)),
    request_body = DAGRunClearBody,
    responses((status = 200, body = ClearDagRunResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn clear_dag_run(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
    body: Result<Json<DAGRunClearBody>, JsonRejection>,
) -> Result<Json<ClearDagRunResponse>, RestError> {
    let Json(body) = body?;
    check_note(body.note.as_deref(), &["body", "note"])?;
    let run = dag_run(&state, &dag_id, &run_id).await?;
    let only_failed = body.only_failed.unwrap_or(false);
    let tis: Vec<_> = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .filter(|ti| {
            !only_failed || matches!(ti.state, TaskState::Failed | TaskState::UpstreamFailed)
        })
        .collect();
    if body.dry_run.unwrap_or(true) {
        let mut shaper = Shaper::default();
        let mut task_instances = Vec::new();
        for ti in &tis {
            task_instances.push(
                shaper
                    .instance(&state, ti, run.logical_date, run.dag_version)
                    .await?,
            );
        }
        return Ok(Json(ClearDagRunResponse::DryRun(
            ClearTaskInstanceCollectionResponse {
                total_entries: task_instances.len() as u64,
                task_instances,
            },
        )));
    }
    let task_ids: Vec<String> = tis.iter().map(|ti| ti.task_id.clone()).collect();
    if !task_ids.is_empty() {
        state
            .store()
            .clear_task_instances(run.id, &task_ids, Utc::now())
            .await?;
    }
    if let Some(note) = body.note {
        state.store().set_dag_run_note(run.id, Some(note)).await?;
    }
    state.changed();
    let run = dag_run(&state, &dag_id, &run_id).await?;
    Ok(Json(ClearDagRunResponse::Run(Box::new(
        run_response(&state, run).await?,
    ))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds between two state lines (more than 0).
    pub interval: f64,
    /// Tasks whose return value (XCom `return_value`) to give when the run ends; repeatable.
    #[serde(default)]
    pub result: Vec<String>,
}

/// Streams `{"state": …}` lines, one now and one every `interval` seconds, until the run
/// ends; the last line also has `results`, the return values of the `result` tasks.
#[utoipa::path(get, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/wait",
    operation_id = "wait_dag_run_until_finished", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), WaitQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn wait_dag_run_until_finished(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<WaitQuery>,
) -> Result<Response, RestError> {
    if !(query.interval.is_finite() && query.interval > 0.0) {
        return Err(RestError::invalid(
            &["query", "interval"],
            "Input should be greater than 0",
        ));
    }
    let interval = Duration::from_secs_f64(query.interval.clamp(MIN_WAIT_INTERVAL_SECS, 3600.0));
    // 404 before the stream starts, so a wrong id is an error answer, not a stream.
    dag_run(&state, &dag_id, &run_id).await?;
    struct Waiting {
        state: RestState,
        dag_id: String,
        run_id: String,
        result: Vec<String>,
        first: bool,
        done: bool,
    }
    let waiting = Waiting {
        state,
        dag_id,
        run_id,
        result: query.result,
        first: true,
        done: false,
    };
    let lines = futures_util::stream::unfold(waiting, move |mut w| async move {
        if w.done {
            return None;
        }
        if !w.first {
            tokio::time::sleep(interval).await;
        }
        w.first = false;
        let line = match dag_run(&w.state, &w.dag_id, &w.run_id).await {
            Ok(run) if run.state.is_finished() => {
                w.done = true;
                let mut line = serde_json::json!({ "state": run.state.as_str() });
                if !w.result.is_empty() {
                    let xcoms = w
                        .state
                        .store()
                        .xcoms_for_run(run.id)
                        .await
                        .unwrap_or_default();
                    let results: serde_json::Map<String, serde_json::Value> = w
                        .result
                        .iter()
                        .filter_map(|task_id| {
                            xcoms
                                .iter()
                                .find(|x| &x.task_id == task_id && x.key == "return_value")
                                .map(|x| (task_id.clone(), x.value.clone()))
                        })
                        .collect();
                    line["results"] = serde_json::Value::Object(results);
                }
                line
            }
            Ok(run) => serde_json::json!({ "state": run.state.as_str() }),
            Err(e) => {
                // The run was deleted, or the database failed: say so and end the stream.
                w.done = true;
                serde_json::json!({ "detail": e.detail })
            }
        };
        Some((Ok::<_, std::convert::Infallible>(format!("{line}\n")), w))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response())
}

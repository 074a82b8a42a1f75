//! The changes of DAG runs: trigger (`POST dagRuns`), patch (state, note) and delete.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use updraft_model::DagRunState;
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{DagRun, StoreError};

use super::super::common::{check_note, current_dag, dag_run, PathParams, QueryParams};
use super::{run_response, DAGRunResponse};
use crate::{RestError, RestState};

/// Airflow's `TriggerDAGRunPostBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TriggerDAGRunPostBody {
    pub dag_run_id: Option<String>,
    pub logical_date: Option<DateTime<Utc>>,
    pub run_after: Option<DateTime<Utc>>,
    pub data_interval_start: Option<DateTime<Utc>>,
    pub data_interval_end: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub conf: Option<serde_json::Map<String, serde_json::Value>>,
    pub note: Option<String>,
}

/// Creates a manual run of the DAG's current version; the scheduler starts it at once
/// (or when the DAG is unpaused).
#[utoipa::path(post, path = "/dags/{dag_id}/dagRuns", operation_id = "trigger_dag_run", tag = "DagRun",
    params(("dag_id" = String, Path)),
    request_body = TriggerDAGRunPostBody,
    responses((status = 200, body = DAGRunResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn trigger_dag_run(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    body: Result<Json<TriggerDAGRunPostBody>, JsonRejection>,
) -> Result<Json<DAGRunResponse>, RestError> {
    let Json(body) = body?;
    check_note(body.note.as_deref(), &["body", "note"])?;
    if body.data_interval_start.is_some() != body.data_interval_end.is_some() {
        return Err(RestError::invalid(
            &["body", "data_interval_end"],
            "Either both data_interval_start and data_interval_end must be provided or both must be None",
        ));
    }
    if let (Some(start), Some(end)) = (body.data_interval_start, body.data_interval_end) {
        if start > end {
            return Err(RestError::invalid(
                &["body", "data_interval_start"],
                "data_interval_start must not be after data_interval_end",
            ));
        }
    }
    if body
        .dag_run_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        return Err(RestError::invalid(
            &["body", "dag_run_id"],
            "The run id must not be empty",
        ));
    }
    let (record, graph) = current_dag(&state, &dag_id).await?;
    let conf = body.conf.unwrap_or_default();
    // Airflow refuses a conf that does not fit the DAG's params with 400 and the reason.
    updraft_model::param::resolve(&graph.dag.param_specs(), &conf)
        .map_err(|e| RestError::bad_request(e.to_string()))?;
    let now = Utc::now();
    let mut request = TriggerRequest::manual();
    request.run_id = body.dag_run_id.clone();
    request.logical_date = body.logical_date.or(body.run_after);
    request.conf = conf;
    let mut new_run = new_dag_run(&graph.dag, record.version, request, now, None);
    if let (Some(start), Some(end)) = (body.data_interval_start, body.data_interval_end) {
        new_run.data_interval_start = start;
        new_run.data_interval_end = end;
    }
    let run_id = new_run.run_id.clone();
    let run = match state.store().create_dag_run(new_run).await {
        Ok(run) => run,
        Err(StoreError::AlreadyExists(_)) => {
            return Err(RestError::conflict(format!(
                "A DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` already exists"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let run = match body.note {
        Some(note) => {
            state
                .store()
                .set_dag_run_note(run.id, Some(note.clone()))
                .await?;
            DagRun {
                note: Some(note),
                ..run
            }
        }
        None => run,
    };
    state.changed();
    Ok(Json(run_response(&state, run).await?))
}

/// Airflow's `DAGRunPatchBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DAGRunPatchBody {
    /// `queued`, `success` or `failed`.
    pub state: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunUpdateMask {
    /// The fields of the body to apply (`state`, `note`); default: those present.
    #[serde(default)]
    pub update_mask: Vec<String>,
}

/// Sets a run's state by hand, with Airflow's effect on its task instances, and/or its note.
#[utoipa::path(patch, path = "/dags/{dag_id}/dagRuns/{dag_run_id}", operation_id = "patch_dag_run", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), RunUpdateMask),
    request_body = DAGRunPatchBody,
    responses((status = 200, body = DAGRunResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub(super) async fn patch_dag_run(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
    QueryParams(mask): QueryParams<RunUpdateMask>,
    body: Result<Json<DAGRunPatchBody>, JsonRejection>,
) -> Result<Json<DAGRunResponse>, RestError> {
    let Json(body) = body?;
    let fields: Vec<&str> = mask.update_mask.iter().map(String::as_str).collect();
    if let Some(bad) = fields.iter().find(|f| !matches!(**f, "state" | "note")) {
        return Err(RestError::bad_request(format!(
            "Invalid field `{bad}` in update mask"
        )));
    }
    let apply = |field: &str| fields.is_empty() || fields.contains(&field);
    let new_state = match (&body.state, apply("state")) {
        (Some(s), true) => Some(match s.as_str() {
            "queued" => DagRunState::Queued,
            "success" => DagRunState::Success,
            "failed" => DagRunState::Failed,
            _ => {
                return Err(RestError::invalid(
                    &["body", "state"],
                    "Input should be 'queued', 'success' or 'failed'",
                ))
            }
        }),
        _ => None,
    };
    check_note(body.note.as_deref(), &["body", "note"])?;
    let run = dag_run(&state, &dag_id, &run_id).await?;
    let now = Utc::now();
    if let Some(to) = new_state {
        set_run_state(&state, &run, to, now).await?;
    }
    // Without a mask the fields present apply; with one, exactly the fields it names.
    let note_given = if fields.is_empty() {
        body.note.is_some()
    } else {
        apply("note")
    };
    if note_given {
        state
            .store()
            .set_dag_run_note(run.id, body.note.clone())
            .await?;
    }
    if new_state.is_some() {
        state.changed();
    }
    let run = dag_run(&state, &dag_id, &run_id).await?;
    Ok(Json(run_response(&state, run).await?))
}

/// Airflow's "mark run as" (the store marks the task instances the same way, in the same
/// transaction as the run).
async fn set_run_state(
    state: &RestState,
    run: &DagRun,
    to: DagRunState,
    now: DateTime<Utc>,
) -> Result<(), RestError> {
    state.store().force_dag_run_state(run.id, to, now).await?;
    Ok(())
}

/// Deletes a run with its task instances, tries, XComs and logs.
#[utoipa::path(delete, path = "/dags/{dag_id}/dagRuns/{dag_run_id}", operation_id = "delete_dag_run", tag = "DagRun",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(super) async fn delete_dag_run(
    State(state): State<RestState>,
    PathParams((dag_id, run_id)): PathParams<(String, String)>,
) -> Result<StatusCode, RestError> {
    let run = dag_run(&state, &dag_id, &run_id).await?;
    state.store().delete_dag_run(run.id).await?;
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

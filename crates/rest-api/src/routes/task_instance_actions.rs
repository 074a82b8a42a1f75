//! Changing task instances: `PATCH …/taskInstances/{task_id}` (mark success/failed/skipped,
//! with related task instances; `/dry_run` only answers which) and `POST
//! /dags/{dag_id}/clearTaskInstances`. Why a task is not running is `task_instance_dependencies`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use updraft_model::{setup_teardown, TaskState};
use updraft_scheduler::DagGraph;
use updraft_store::{
    DagRun, MarkTaskInstances, TaskInstance, TaskInstanceQuery, TaskInstanceRow, TimeRange, Window,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{check_note, current_dag, dag_graph, dag_run, PathParams, QueryParams};
use super::task_instances::task_instance_at;
use super::ti_shape::{Shaper, TaskInstanceCollectionResponse};
use crate::auth::{Access, Action, Resource};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "patch_task_instance",
        Access::Require(Action::Edit, Resource::TaskInstance),
    ),
    (
        "patch_mapped_task_instance",
        Access::Require(Action::Edit, Resource::TaskInstance),
    ),
    (
        "patch_task_instance_dry_run",
        Access::Require(Action::Edit, Resource::TaskInstance),
    ),
    (
        "post_clear_task_instances",
        Access::Require(Action::Edit, Resource::TaskInstance),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(patch_task_instance))
        .routes(routes!(patch_task_instance_dry_run))
        .routes(routes!(patch_mapped_task_instance))
        .routes(routes!(post_clear_task_instances))
}

/// `task_ids` plus, transitively, their upstream and/or downstream tasks. Each task is
/// visited once per direction, so this is linear in the DAG's size.
fn related_tasks(
    graph: &DagGraph,
    task_ids: &[String],
    upstream: bool,
    downstream: bool,
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = task_ids.iter().cloned().collect();
    let starts: Vec<usize> = task_ids
        .iter()
        .filter_map(|t| graph.index.get(t).copied())
        .collect();
    let mut walk = |edges: &[Vec<usize>]| {
        let mut seen = vec![false; edges.len()];
        let mut stack = starts.clone();
        while let Some(i) = stack.pop() {
            for &next in &edges[i] {
                if !seen[next] {
                    seen[next] = true;
                    out.insert(graph.dag.tasks[next].task_id.clone());
                    stack.push(next);
                }
            }
        }
    };
    if downstream {
        walk(&graph.downstream);
    }
    if upstream {
        walk(&graph.upstream);
    }
    out
}

/// Which runs of a DAG a change reaches.
enum RunScope {
    /// One run and, with `future`/`past`, the runs with later/earlier (or equal) logical dates.
    Around {
        run: DagRun,
        future: bool,
        past: bool,
    },
    /// Runs whose logical date is in the range.
    Between(TimeRange),
}

/// How many task instances one read of a selection takes: a change over thousands of runs
/// reads them in pages instead of one query per run.
const SELECT_PAGE: u32 = 1000;

/// The task instances of `dag_id`'s runs in `scope` whose task is in `tasks` and that pass
/// `keep`, in id order.
async fn select(
    state: &RestState,
    dag_id: &str,
    scope: &RunScope,
    tasks: Option<&BTreeSet<String>>,
    keep: impl Fn(&TaskInstance) -> bool,
) -> Result<Vec<TaskInstanceRow>, RestError> {
    let mut query = TaskInstanceQuery {
        dag_ids: Some(vec![dag_id.to_string()]),
        task_ids: tasks.map(|t| t.iter().cloned().collect()),
        window: Window {
            limit: SELECT_PAGE,
            offset: 0,
        },
        // In id order, each page after the last id of the one before, uncounted.
        without_total: true,
        ..TaskInstanceQuery::default()
    };
    match scope {
        RunScope::Around { run, future, past } => match (future, past) {
            (false, false) => query.run_ids = Some(vec![run.run_id.clone()]),
            (true, true) => {}
            (true, false) => query.logical_date.gte = Some(run.logical_date),
            (false, true) => query.logical_date.lte = Some(run.logical_date),
        },
        RunScope::Between(range) => query.logical_date = *range,
    }
    let mut out = Vec::new();
    loop {
        let page = state.store().query_task_instances(query.clone()).await?;
        let full = page.items.len() as u32 == SELECT_PAGE;
        query.id_after = page.items.last().map(|row| row.ti.id);
        out.extend(page.items.into_iter().filter(|row| keep(&row.ti)));
        if !full {
            return Ok(out);
        }
    }
}

async fn shape(
    state: &RestState,
    selected: &[TaskInstanceRow],
) -> Result<TaskInstanceCollectionResponse, RestError> {
    let mut shaper = Shaper::default();
    let mut task_instances = Vec::new();
    for row in selected {
        task_instances.push(
            shaper
                .instance(state, &row.ti, row.logical_date, row.dag_version)
                .await?,
        );
    }
    Ok(TaskInstanceCollectionResponse {
        total_entries: task_instances.len() as u64,
        task_instances,
    })
}

/// Airflow's `PatchTaskInstanceBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTaskInstanceBody {
    /// `success`, `failed` or `skipped`.
    pub new_state: Option<String>,
    pub note: Option<String>,
    pub include_upstream: Option<bool>,
    pub include_downstream: Option<bool>,
    pub include_future: Option<bool>,
    pub include_past: Option<bool>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatchQuery {
    /// The instance of a mapped task (default -1: a task that is not mapped).
    pub map_index: Option<i64>,
    /// The fields of the body to apply (`new_state`, `note`); default: those present.
    #[serde(default)]
    pub update_mask: Vec<String>,
}

/// What a patch changes: the task instances whose state it sets, and whether to set the note.
struct PatchPlan {
    to: Option<TaskState>,
    affected: Vec<TaskInstanceRow>,
    note: Option<Option<String>>,
    ti: TaskInstance,
}

async fn plan_patch(
    state: &RestState,
    (dag_id, run_id, task_id): (String, String, String),
    query: &PatchQuery,
    body: &PatchTaskInstanceBody,
) -> Result<PatchPlan, RestError> {
    let map_index = query.map_index.unwrap_or(-1);
    let mask: Vec<&str> = query.update_mask.iter().map(String::as_str).collect();
    if let Some(bad) = mask.iter().find(|f| !matches!(**f, "new_state" | "note")) {
        return Err(RestError::bad_request(format!(
            "Invalid field `{bad}` in update mask"
        )));
    }
    let apply = |field: &str| mask.is_empty() || mask.contains(&field);
    let to = match body.new_state.as_deref().filter(|_| apply("new_state")) {
        None => None,
        Some("success") => Some(TaskState::Success),
        Some("failed") => Some(TaskState::Failed),
        Some("skipped") => Some(TaskState::Skipped),
        Some(_) => {
            return Err(RestError::invalid(
                &["body", "new_state"],
                "Input should be 'success', 'failed' or 'skipped'",
            ))
        }
    };
    check_note(body.note.as_deref(), &["body", "note"])?;
    let (run, ti) = task_instance_at(state, &dag_id, &run_id, &task_id, map_index).await?;
    let affected = match to {
        Some(to) => {
            let graph = dag_graph(state, &run.dag_id, run.dag_version).await?;
            let tasks = related_tasks(
                &graph,
                std::slice::from_ref(&task_id),
                body.include_upstream.unwrap_or(false),
                body.include_downstream.unwrap_or(false),
            );
            let scope = RunScope::Around {
                future: body.include_future.unwrap_or(false),
                past: body.include_past.unwrap_or(false),
                run,
            };
            // One instance of a mapped task: only that index of it (its relatives whole).
            select(state, &dag_id, &scope, Some(&tasks), |t| {
                t.state != to && (t.task_id != task_id || t.map_index == map_index)
            })
            .await?
        }
        None => Vec::new(),
    };
    let note = if (mask.is_empty() && body.note.is_some()) || (!mask.is_empty() && apply("note")) {
        Some(body.note.clone())
    } else {
        None
    };
    Ok(PatchPlan {
        to,
        affected,
        note,
        ti,
    })
}

/// Sets a task instance's state by hand (and, on request, its upstream/downstream tasks'
/// and those of later/earlier runs), and/or its note. A running one loses its claim, so its
/// worker kills it. Answers the task instances whose state changed.
#[utoipa::path(patch, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}",
    operation_id = "patch_task_instance", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), PatchQuery),
    request_body = PatchTaskInstanceBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_task_instance(
    State(state): State<RestState>,
    PathParams(ids): PathParams<(String, String, String)>,
    QueryParams(query): QueryParams<PatchQuery>,
    body: Result<Json<PatchTaskInstanceBody>, JsonRejection>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    let Json(body) = body?;
    let plan = plan_patch(&state, ids, &query, &body).await?;
    let now = Utc::now();
    if let Some(note) = plan.note.clone() {
        state
            .store()
            .set_task_instance_note(plan.ti.id, note)
            .await?;
    }
    let mut changed = Vec::new();
    if let Some(to) = plan.to {
        if !plan.affected.is_empty() {
            let marked = state
                .store()
                .mark_task_instances(MarkTaskInstances {
                    ti_ids: plan.affected.iter().map(|row| row.ti.id).collect(),
                    state: to,
                    now,
                })
                .await?;
            let affected: HashMap<i64, &TaskInstanceRow> =
                plan.affected.iter().map(|row| (row.ti.id, row)).collect();
            for ti in marked {
                if let Some(row) = affected.get(&ti.id) {
                    changed.push(TaskInstanceRow {
                        ti,
                        logical_date: row.logical_date,
                        dag_version: row.dag_version,
                    });
                }
            }
            state.changed();
        }
    } else {
        // Only the note changed: answer the task instance itself, as Airflow does.
        let run = dag_run(&state, &plan.ti.dag_id, &plan.ti.run_id).await?;
        let ti = task_instance_at(
            &state,
            &run.dag_id,
            &run.run_id,
            &plan.ti.task_id,
            plan.ti.map_index,
        )
        .await?
        .1;
        changed.push(TaskInstanceRow {
            ti,
            logical_date: run.logical_date,
            dag_version: run.dag_version,
        });
    }
    Ok(Json(shape(&state, &changed).await?))
}

/// [`patch_task_instance`] for one instance of a mapped task.
#[utoipa::path(patch, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}",
    operation_id = "patch_mapped_task_instance", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path),
        ("map_index" = i64, Path), PatchQuery),
    request_body = PatchTaskInstanceBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_mapped_task_instance(
    State(state): State<RestState>,
    PathParams((dag_id, run_id, task_id, map_index)): PathParams<(String, String, String, i64)>,
    QueryParams(mut query): QueryParams<PatchQuery>,
    body: Result<Json<PatchTaskInstanceBody>, JsonRejection>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    query.map_index = Some(map_index);
    patch_task_instance(
        State(state),
        PathParams((dag_id, run_id, task_id)),
        QueryParams(query),
        body,
    )
    .await
}

/// The task instances a `PATCH` with this body would change; changes nothing.
#[utoipa::path(patch, path = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/dry_run",
    operation_id = "patch_task_instance_dry_run", tag = "Task Instance",
    params(("dag_id" = String, Path), ("dag_run_id" = String, Path), ("task_id" = String, Path), PatchQuery),
    request_body = PatchTaskInstanceBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn patch_task_instance_dry_run(
    State(state): State<RestState>,
    PathParams(ids): PathParams<(String, String, String)>,
    QueryParams(query): QueryParams<PatchQuery>,
    body: Result<Json<PatchTaskInstanceBody>, JsonRejection>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    let Json(body) = body?;
    let plan = plan_patch(&state, ids, &query, &body).await?;
    Ok(Json(shape(&state, &plan.affected).await?))
}

/// A task of `task_ids` in a clear request: a task id, or Airflow's `[task_id, map_index]`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ClearTaskId {
    Task(String),
    Mapped(String, i64),
}

/// Airflow's `ClearTaskInstancesBody`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ClearTaskInstancesBody {
    /// Only answer what would be cleared (default true).
    pub dry_run: Option<bool>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// Only failed task instances (default true).
    pub only_failed: Option<bool>,
    pub only_running: Option<bool>,
    #[allow(dead_code)]
    pub reset_dag_runs: Option<bool>,
    pub task_ids: Option<Vec<ClearTaskId>>,
    pub dag_run_id: Option<String>,
    pub include_upstream: Option<bool>,
    pub include_downstream: Option<bool>,
    pub include_future: Option<bool>,
    pub include_past: Option<bool>,
    #[allow(dead_code)]
    pub run_on_latest_version: Option<bool>,
    #[allow(dead_code)]
    pub prevent_running_task: Option<bool>,
    pub note: Option<String>,
}

/// Clears task instances of a DAG so they run again; answers the ones cleared (or, with
/// `dry_run`, the ones that would be).
#[utoipa::path(post, path = "/dags/{dag_id}/clearTaskInstances", operation_id = "post_clear_task_instances",
    tag = "Task Instance",
    params(("dag_id" = String, Path)),
    request_body = ClearTaskInstancesBody,
    responses((status = 200, body = TaskInstanceCollectionResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn post_clear_task_instances(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    body: Result<Json<ClearTaskInstancesBody>, JsonRejection>,
) -> Result<Json<TaskInstanceCollectionResponse>, RestError> {
    let Json(body) = body?;
    check_note(body.note.as_deref(), &["body", "note"])?;
    let (_, graph) = current_dag(&state, &dag_id).await?;
    let future = body.include_future.unwrap_or(false);
    let past = body.include_past.unwrap_or(false);
    let scope = match &body.dag_run_id {
        Some(run_id) => RunScope::Around {
            run: dag_run(&state, &dag_id, run_id).await?,
            future,
            past,
        },
        None => RunScope::Between(TimeRange {
            gte: body.start_date,
            lte: body.end_date,
            ..TimeRange::default()
        }),
    };
    // Tasks named with map indexes: only those instances of them (a task also named alone is
    // cleared whole), as Airflow's `[task_id, map_index]`.
    let mut only_indexes: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let tasks = match &body.task_ids {
        Some(ids) if !ids.is_empty() => {
            let mut names = Vec::new();
            let mut whole = BTreeSet::new();
            for id in ids {
                match id {
                    ClearTaskId::Task(t) | ClearTaskId::Mapped(t, -1) => {
                        whole.insert(t.clone());
                        names.push(t.clone());
                    }
                    ClearTaskId::Mapped(t, i) => {
                        only_indexes.entry(t.clone()).or_default().insert(*i);
                        names.push(t.clone());
                    }
                }
            }
            only_indexes.retain(|t, _| !whole.contains(t));
            // With their setups and teardowns, as Airflow clears them.
            Some(BTreeSet::from_iter(setup_teardown::clear_selection(
                &graph.dag,
                &names,
                body.include_upstream.unwrap_or(false),
                body.include_downstream.unwrap_or(false),
            )))
        }
        _ => None,
    };
    let only_failed = body.only_failed.unwrap_or(true);
    let only_running = body.only_running.unwrap_or(false);
    let selected = select(&state, &dag_id, &scope, tasks.as_ref(), |ti| {
        (!only_failed || matches!(ti.state, TaskState::Failed | TaskState::UpstreamFailed))
            && (!only_running || ti.state == TaskState::Running)
            && only_indexes
                .get(&ti.task_id)
                .is_none_or(|indexes| indexes.contains(&ti.map_index))
    })
    .await?;
    // Markers among them clear their external tasks too (Airflow's recursive clear).
    let marked = super::external_markers::marked(&state, &selected).await?;
    let answered: Vec<TaskInstanceRow> = selected.iter().chain(&marked.rows).cloned().collect();
    let answer = shape(&state, &answered).await?;
    if body.dry_run.unwrap_or(true) {
        return Ok(Json(answer));
    }
    let mut by_run: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut instances_by_run: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for row in &selected {
        if only_indexes.contains_key(&row.ti.task_id) {
            instances_by_run
                .entry(row.ti.dag_run_id)
                .or_default()
                .push((row.ti.task_id.clone(), row.ti.map_index));
        } else {
            by_run
                .entry(row.ti.dag_run_id)
                .or_default()
                .push(row.ti.task_id.clone());
        }
    }
    let now = Utc::now();
    for (run_id, task_ids) in &by_run {
        state
            .store()
            .clear_task_instances(*run_id, task_ids, now)
            .await?;
    }
    for (run_id, instances) in &instances_by_run {
        state
            .store()
            .clear_mapped_task_instances(*run_id, instances, now)
            .await?;
    }
    for clear in &marked.clears {
        state
            .store()
            .clear_task_instances(clear.run.id, &clear.task_ids, now)
            .await?;
    }
    if !by_run.is_empty() || !instances_by_run.is_empty() || !marked.clears.is_empty() {
        state.changed();
    }
    Ok(Json(answer))
}

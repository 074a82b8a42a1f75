//! `GET /dags/{dag_id}/runs/{run_id}/tasks/{task_id}?try=N&map_index=M`: a task instance — the
//! log of each try (followed live through the API's NDJSON stream while the try runs), its
//! command, XComs, tries, why it is not running, and the actions on it; and the log as a
//! download. A mapped task's page shows one instance, with a selector of the others.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use updraft_model::{Operator, TaskState};
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{read_try_log, StoreError, TaskInstance, TaskTry, Window, XComQuery};

use super::run::get_run;
use super::{dur, header, load, page, DagHeader};
use crate::grid::seconds;
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

/// XComs shown; a task rarely pushes more.
const XCOM_ROWS: u32 = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TryQuery {
    #[serde(rename = "try")]
    try_number: Option<u32>,
    fragment: Option<String>,
    /// The instance of a mapped task (default: its first).
    map_index: Option<i64>,
}

/// An instance in the map index selector of a mapped task.
pub(crate) struct MapIndexOption {
    pub map_index: i64,
    pub state: &'static str,
    pub selected: bool,
}

/// A try in the list of tries.
pub(crate) struct TryRow {
    pub try_number: u32,
    pub href: String,
    pub state: &'static str,
    pub current: bool,
    pub start: Option<Moment>,
    pub duration: String,
    pub hostname: Option<String>,
}

#[derive(Template)]
#[template(path = "dag/task_instance_region.html")]
struct TiRegion {
    live: String,
    /// The run's database id, for `data-live-runs`.
    run_db_id: i64,
    state: &'static str,
    try_number: u32,
    tries: Vec<TryRow>,
    /// Set once the shown try has started: where its whole log is read from, for a page that
    /// was opened before the try started (and so shows nothing yet).
    follow_from_start: Option<String>,
}

#[derive(Template)]
#[template(path = "dag/task_instance.html")]
struct TiPage {
    page: Page,
    dag: DagHeader,
    run_id: String,
    run_href: String,
    task_id: String,
    region: String,
    shown_try: u32,
    /// The log's lines, numbered from 1.
    lines: Vec<String>,
    /// Set while the shown try runs: the API URL the script follows the rest of the log from.
    follow: Option<String>,
    /// The shown try has not started: the script reads its log once the live region says it has.
    awaits_try: bool,
    can_read_log: bool,
    download: String,
    command: Option<String>,
    /// The command as the worker rendered it for the shown try (from its log).
    rendered: Option<String>,
    xcoms: Vec<(String, String)>,
    deps_api: String,
    ti_api: String,
    clear_api: String,
    clear_task: Option<String>,
    /// With `clear_task`: clear only this instance of the mapped task.
    clear_map_index: Option<i64>,
    can_edit: bool,
    /// The shown instance's map index (-1: not mapped).
    map_index: i64,
    /// Every instance of a mapped task, for the selector (empty for a task that is not).
    map_indexes: Vec<MapIndexOption>,
}

/// The run, the instance of `task_id` asked for (by default the task's only one, or a mapped
/// task's first), and every instance of the task by map index.
async fn task_instance(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
    task_id: &str,
    map_index: Option<i64>,
) -> Result<(updraft_store::DagRun, TaskInstance, Vec<TaskInstance>), UiError> {
    let run = get_run(state, dag_id, run_id).await?;
    let mut all: Vec<TaskInstance> = state
        .store()
        .task_instances(run.id)
        .await?
        .into_iter()
        .filter(|ti| ti.task_id == task_id)
        .collect();
    all.sort_by_key(|ti| ti.map_index);
    let ti = match map_index {
        Some(index) => all.iter().find(|ti| ti.map_index == index).ok_or_else(|| {
            UiError::NotFound(format!(
                "The run `{run_id}` has no instance {index} of task `{task_id}`."
            ))
        })?,
        None => all.first().ok_or_else(|| {
            UiError::NotFound(format!("The run `{run_id}` has no task `{task_id}`."))
        })?,
    }
    .clone();
    Ok((run, ti, all))
}

fn is_live(ti: &TaskInstance, try_number: u32) -> bool {
    ti.try_number == try_number
        && matches!(
            ti.state,
            TaskState::Queued | TaskState::Running | TaskState::Restarting
        )
}

/// The text of a try's log and whether it can still grow; `None` when nothing is there yet.
async fn log_text(
    state: &RestState,
    ti: &TaskInstance,
    try_number: u32,
) -> Result<Option<String>, UiError> {
    let log = read_try_log(
        state.store().as_ref(),
        &state.config().base_log_folder,
        ti,
        try_number,
        0,
    )
    .await?;
    Ok(log.text().map(str::to_string))
}

pub(crate) async fn page_route(
    State(state): State<RestState>,
    session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    QueryParams(query): QueryParams<TryQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let (run, ti, all) = task_instance(&state, &dag_id, &run_id, &task_id, query.map_index).await?;
    let map_index = ti.map_index;
    let latest = ti.try_number.max(1);
    let shown_try = query.try_number.unwrap_or(latest).clamp(1, latest);
    let tries: Vec<TaskTry> = state.store().task_tries(ti.id).await?;
    let now = Utc::now();
    let tz = dag.timezone;
    let mut try_rows: Vec<TryRow> = tries
        .iter()
        .map(|t| TryRow {
            try_number: t.try_number,
            href: links::task_try_at(&dag_id, &run_id, &task_id, map_index, t.try_number),
            state: t.state.as_str(),
            current: t.try_number == shown_try,
            start: t.start_date.map(|s| Moment::in_dag_tz(s, tz)),
            duration: dur(&seconds(t.start_date, t.end_date, now)),
            hostname: t.hostname.clone(),
        })
        .collect();
    if !try_rows.iter().any(|t| t.try_number == ti.try_number) && ti.try_number > 0 {
        try_rows.push(TryRow {
            try_number: ti.try_number,
            href: links::task_try_at(&dag_id, &run_id, &task_id, map_index, ti.try_number),
            state: ti.state.as_str(),
            current: ti.try_number == shown_try,
            start: ti.start_date.map(|s| Moment::in_dag_tz(s, tz)),
            duration: dur(&seconds(ti.start_date, ti.end_date, now)),
            hostname: ti.hostname.clone(),
        });
    }
    let can_read_log = session.allows(Action::Read, Resource::TaskLog, Some(&dag_id));
    let live = is_live(&ti, shown_try);
    let started = ti.try_number > 0 && ti.try_number >= shown_try;
    let api_ti = format!(
        "/api/v2/dags/{}/dagRuns/{}/taskInstances/{}",
        links::encode(&dag_id),
        links::encode(&run_id),
        links::encode(&task_id)
    );
    // The API names one instance of a mapped task by its map index.
    let (instance_api, index_query) = if map_index >= 0 {
        (
            format!("{api_ti}/{map_index}"),
            format!("&map_index={map_index}"),
        )
    } else {
        (api_ti.clone(), String::new())
    };
    let follow_from = |offset: u64| {
        format!(
            "{api_ti}/logs/{shown_try}?token={}{index_query}",
            updraft_rest_api::log_continuation_token(offset)
        )
    };
    let region = TiRegion {
        follow_from_start: (started && can_read_log).then(|| follow_from(0)),
        live: format!(
            "{}&fragment=ti",
            links::task_try_at(&dag_id, &run_id, &task_id, map_index, shown_try)
        ),
        run_db_id: run.id,
        state: ti.state.as_str(),
        try_number: ti.try_number,
        tries: try_rows,
    };
    if crate::views::wants_fragment(query.fragment.as_deref(), "ti")? {
        return Ok(page(&region)?.into_response());
    }
    let text = if can_read_log && ti.try_number > 0 {
        log_text(&state, &ti, shown_try).await?.unwrap_or_default()
    } else {
        String::new()
    };
    // While the try runs, show its complete lines; the script follows from there.
    let shown = if live {
        text.rfind('\n').map_or("", |i| &text[..=i])
    } else {
        text.as_str()
    };
    let follow = (live && can_read_log).then(|| follow_from(shown.len() as u64));
    let xcoms = if session.allows(Action::Read, Resource::XCom, Some(&dag_id)) {
        state
            .store()
            .query_xcoms(XComQuery {
                dag_id: Some(dag_id.clone()),
                run_id: Some(run_id.clone()),
                task_id: Some(task_id.clone()),
                map_index: Some(map_index),
                window: Window {
                    limit: XCOM_ROWS,
                    offset: 0,
                },
                ..Default::default()
            })
            .await?
            .items
            .into_iter()
            .map(|x| (x.key, x.value.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    // A version always exists for a run; if it is gone, there is no command to show, but a
    // failing store is an error, not an empty section.
    let definition = match state.dags().get(&dag_id, run.dag_version).await {
        Ok(graph) => Some(graph),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let command = definition
        .and_then(|g| g.dag.task(&task_id).map(|t| t.operator.clone()))
        .and_then(|op| match op {
            Operator::Bash { bash_command } => Some(bash_command),
            Operator::Python {
                python_callable, ..
            } => Some(python_callable),
            Operator::Empty => None,
            Operator::Http(call) => Some(call.summary()),
            Operator::Docker(run) => Some(run.summary()),
            Operator::TriggerDagRun(trigger) => Some(trigger.summary()),
            Operator::ExternalTaskMarker(marker) => Some(marker.summary()),
            other => other.wait_summary(),
        });
    page(&TiPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "runs"),
        run_href: links::dag_run(&dag_id, &run_id),
        region: region.render()?,
        shown_try,
        lines: shown.lines().map(str::to_string).collect(),
        follow,
        awaits_try: !started,
        can_read_log,
        download: format!(
            "{}/tasks/{}/log?try={shown_try}{index_query}",
            links::dag_run(&dag_id, &run_id),
            links::encode(&task_id)
        ),
        command,
        rendered: rendered_command(&text),
        xcoms,
        deps_api: format!("{instance_api}/dependencies"),
        ti_api: instance_api,
        clear_api: format!("/api/v2/dags/{}/clearTaskInstances", links::encode(&dag_id)),
        clear_task: Some(task_id.clone()),
        clear_map_index: (map_index >= 0).then_some(map_index),
        can_edit: session.allows(Action::Edit, Resource::TaskInstance, Some(&dag_id)),
        map_index,
        map_indexes: all
            .iter()
            .filter(|t| t.map_index >= 0)
            .map(|t| MapIndexOption {
                map_index: t.map_index,
                state: t.state.as_str(),
                selected: t.map_index == map_index,
            })
            .collect(),
        run_id,
        task_id,
    })
}

/// The command as rendered for a try: the worker logs it as `{updraft} running: <command>`
/// (secrets already masked) before it starts the process.
/// A command of several lines continues on lines indented to match.
fn rendered_command(log: &str) -> Option<String> {
    let mut lines = log.lines();
    let first = lines.find_map(|line| line.split_once("{updraft} running: ").map(|(_, c)| c))?;
    let mut command = first.to_string();
    for line in lines {
        match line.split_once("{updraft}          ") {
            Some((_, rest)) => {
                command.push('\n');
                command.push_str(rest);
            }
            None => break,
        }
    }
    Some(command)
}

/// `GET …/tasks/{task_id}/log?try=N`: the try's log as a text file.
pub(crate) async fn download_log(
    State(state): State<RestState>,
    session: Session,
    Path((dag_id, run_id, task_id)): Path<(String, String, String)>,
    QueryParams(query): QueryParams<TryQuery>,
) -> Result<Response, UiError> {
    session.require(Action::Read, Resource::TaskLog)?;
    let (_, ti, _) = task_instance(&state, &dag_id, &run_id, &task_id, query.map_index).await?;
    let try_number = query
        .try_number
        .unwrap_or(ti.try_number)
        .clamp(1, ti.try_number.max(1));
    let text = log_text(&state, &ti, try_number).await?.unwrap_or_default();
    let instance = if ti.map_index >= 0 {
        format!("{task_id}-{}", ti.map_index)
    } else {
        task_id.clone()
    };
    let name: String = format!("{dag_id}-{run_id}-{instance}-{try_number}.log")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        text,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::rendered_command;

    #[test]
    fn the_rendered_command_is_read_from_the_log_header() {
        let log = "[t] {updraft} running: echo a\n[t] {updraft}          echo b\n[t] {updraft} started process 1\n[t] {stdout} a\n";
        assert_eq!(rendered_command(log).as_deref(), Some("echo a\necho b"));
        assert_eq!(rendered_command("[t] {stdout} running: x\n"), None);
    }
}

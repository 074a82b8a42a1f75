//! Home (`/`): what needs attention now — failed and running runs and tasks, the health of
//! the database and of each kind of process, pool usage, import errors and recent failures
//! with a link to their log. The status part is a live region (`?fragment=status`).

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use updraft_model::{DagRunState, TaskState};
use updraft_rest_api::RestState;
use updraft_store::{
    DagQuery, DagRunQuery, DagRunSortField, ImportErrorSortField, JobKind, JobRecord, Sort,
    TaskInstanceQuery, TaskInstanceSortField, Window,
};

use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::state_label::StateLabel;
use crate::time::{ago, Moment};
use crate::UiError;

/// How many rows each list shows.
const LIST_LIMIT: u32 = 10;
/// How many import errors are listed.
const IMPORT_ERROR_LIMIT: u32 = 20;
/// The longest the database may take to answer the health check.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    fragment: Option<String>,
}

/// A run in a list.
pub struct RunRow {
    pub dag_id: String,
    pub run_id: String,
    pub href: String,
    pub dag_href: String,
    pub state: StateLabel,
    pub when: Option<Moment>,
}

/// A task instance in a list, with the link to its log.
pub struct TaskRow {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub try_number: u32,
    pub log_href: String,
    pub state: StateLabel,
    pub when: Option<Moment>,
    pub hostname: String,
}

/// One kind of process and how it is.
pub struct Component {
    pub name: &'static str,
    pub alive: usize,
    pub known: usize,
    pub newest: Option<Moment>,
    pub ago: String,
    pub healthy: bool,
}

pub struct PoolRow {
    pub name: String,
    pub slots: u32,
    pub running: u32,
    pub queued: u32,
    pub scheduled: u32,
    pub open: i64,
}

/// One problem of an import error.
pub struct Problem {
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

pub struct ImportErrorRow {
    pub filename: String,
    pub problems: Vec<Problem>,
    pub when: Moment,
}

/// What the status region shows.
pub struct Status {
    pub dag_count: u64,
    pub failed_runs: Vec<RunRow>,
    pub failed_run_total: u64,
    pub running_runs: Vec<RunRow>,
    pub running_run_total: u64,
    pub running_tasks: Vec<TaskRow>,
    pub running_task_total: u64,
    pub failed_tasks: Vec<TaskRow>,
    pub failed_task_total: u64,
    pub database_healthy: bool,
    pub database_error: String,
    pub components: Vec<Component>,
    pub pools: Vec<PoolRow>,
    pub import_errors: Vec<ImportErrorRow>,
    pub import_error_total: u64,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Page,
    status: Status,
}

#[derive(Template)]
#[template(path = "home/status.html")]
struct StatusFragment {
    status: Status,
}

/// `GET /` (`?fragment=status`: the live region only).
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<HomeQuery>,
) -> Result<Response, UiError> {
    let status = status(&state).await?;
    match query.fragment.as_deref() {
        Some("status") => Ok(super::html(&StatusFragment { status })?.into_response()),
        Some(other) => Err(UiError::BadRequest(format!("no fragment {other:?}"))),
        None => Ok(super::html(&HomePage {
            page: Page::new(&session, "home"),
            status,
        })?
        .into_response()),
    }
}

async fn status(state: &RestState) -> Result<Status, UiError> {
    let store = state.store();
    let now = Utc::now();
    let window = Window {
        limit: LIST_LIMIT,
        offset: 0,
    };
    let runs = |run_state: DagRunState, field: DagRunSortField| DagRunQuery {
        states: vec![run_state],
        sort: vec![Sort {
            field,
            descending: true,
        }],
        window,
        ..Default::default()
    };
    let tasks = |task_state: TaskState, field: TaskInstanceSortField| TaskInstanceQuery {
        states: vec![task_state],
        sort: vec![Sort {
            field,
            descending: true,
        }],
        window,
        ..Default::default()
    };
    let (dags, failed_runs, running_runs, running_tasks, failed_tasks) = tokio::try_join!(
        store.query_dags(DagQuery {
            exclude_stale: true,
            window: Window {
                limit: 1,
                offset: 0
            },
            ..Default::default()
        }),
        store.query_dag_runs(runs(DagRunState::Failed, DagRunSortField::EndDate)),
        store.query_dag_runs(runs(DagRunState::Running, DagRunSortField::StartDate)),
        store.query_task_instances(tasks(TaskState::Running, TaskInstanceSortField::StartDate)),
        store.query_task_instances(tasks(TaskState::Failed, TaskInstanceSortField::EndDate)),
    )?;
    let (pools, usage, import_errors) = tokio::try_join!(
        store.list_pools(),
        store.pool_usage(),
        store.query_import_errors(
            vec![Sort {
                field: ImportErrorSortField::Timestamp,
                descending: true,
            }],
            Window {
                limit: IMPORT_ERROR_LIMIT,
                offset: 0,
            },
        ),
    )?;
    let database = match tokio::time::timeout(PING_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {PING_TIMEOUT:?}")),
    };
    // Processes that beat within the last day: older records are of processes long gone.
    let jobs = store
        .list_jobs(None, now - chrono::Duration::days(1))
        .await?;
    let stale_after = state.config().health.stale_after;
    Ok(Status {
        dag_count: dags.total,
        failed_run_total: failed_runs.total,
        failed_runs: failed_runs.items.into_iter().map(run_row).collect(),
        running_run_total: running_runs.total,
        running_runs: running_runs.items.into_iter().map(run_row).collect(),
        running_task_total: running_tasks.total,
        running_tasks: running_tasks
            .items
            .into_iter()
            .map(|row| task_row(row.ti, false))
            .collect(),
        failed_task_total: failed_tasks.total,
        failed_tasks: failed_tasks
            .items
            .into_iter()
            .map(|row| task_row(row.ti, true))
            .collect(),
        database_healthy: database.is_ok(),
        database_error: database.err().unwrap_or_default(),
        components: components(&jobs, now, stale_after),
        pools: pool_rows(pools, usage),
        import_error_total: import_errors.total,
        import_errors: import_errors
            .items
            .into_iter()
            .map(|e| ImportErrorRow {
                problems: problems(&e.error),
                filename: e.filename,
                when: Moment::new(e.timestamp),
            })
            .collect(),
    })
}

fn run_row(run: updraft_store::DagRun) -> RunRow {
    RunRow {
        href: links::dag_run(&run.dag_id, &run.run_id),
        dag_href: links::dag(&run.dag_id),
        state: run.state.into(),
        when: run.end_date.or(run.start_date).map(Moment::new),
        dag_id: run.dag_id,
        run_id: run.run_id,
    }
}

fn task_row(ti: updraft_store::TaskInstance, finished: bool) -> TaskRow {
    let when = if finished { ti.end_date } else { ti.start_date };
    TaskRow {
        log_href: links::task_try(&ti.dag_id, &ti.run_id, &ti.task_id, ti.try_number),
        state: ti.state.into(),
        when: when.map(Moment::new),
        hostname: ti.hostname.unwrap_or_default(),
        try_number: ti.try_number,
        dag_id: ti.dag_id,
        run_id: ti.run_id,
        task_id: ti.task_id,
    }
}

/// Schedulers, API servers and workers from the job records. A `standalone` process is all
/// three.
pub fn components(jobs: &[JobRecord], now: DateTime<Utc>, stale_after: Duration) -> Vec<Component> {
    let stale_after = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
    let kinds: [(&'static str, JobKind); 3] = [
        ("Schedulers", JobKind::Scheduler),
        ("API servers", JobKind::ApiServer),
        ("Workers", JobKind::Worker),
    ];
    kinds
        .into_iter()
        .map(|(name, kind)| {
            let of_kind: Vec<&JobRecord> = jobs
                .iter()
                .filter(|j| j.kind == kind || j.kind == JobKind::Standalone)
                .collect();
            let alive = of_kind
                .iter()
                .filter(|j| now - j.latest_heartbeat <= stale_after)
                .count();
            let newest = of_kind.iter().map(|j| j.latest_heartbeat).max();
            Component {
                name,
                alive,
                known: of_kind.len(),
                newest: newest.map(Moment::new),
                ago: newest.map(|at| ago(at, now)).unwrap_or_default(),
                healthy: alive > 0,
            }
        })
        .collect()
}

fn pool_rows(
    pools: Vec<updraft_store::PoolRecord>,
    usage: HashMap<String, updraft_store::PoolUsage>,
) -> Vec<PoolRow> {
    pools
        .into_iter()
        .map(|pool| {
            let used = usage.get(&pool.name).copied().unwrap_or_default();
            PoolRow {
                open: i64::from(pool.slots) - i64::from(used.running) - i64::from(used.queued),
                name: pool.name,
                slots: pool.slots,
                running: used.running,
                queued: used.queued,
                scheduled: used.scheduled,
            }
        })
        .collect()
}

/// The problems of an import error's text: one per line, `line L, column C: message` when
/// the loader knew where.
pub fn problems(error: &str) -> Vec<Problem> {
    let found: Vec<Problem> = error
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let located = line.strip_prefix("line ").and_then(|rest| {
                let (position, message) = rest.split_once(": ")?;
                let (line, column) = position.split_once(", column ")?;
                Some(Problem {
                    line: Some(line.trim().parse().ok()?),
                    column: Some(column.trim().parse().ok()?),
                    message: message.to_string(),
                })
            });
            located.unwrap_or_else(|| Problem {
                line: None,
                column: None,
                message: line.to_string(),
            })
        })
        .collect();
    if found.is_empty() {
        return vec![Problem {
            line: None,
            column: None,
            message: error.to_string(),
        }];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_error_lines_are_split_into_positions_and_messages() {
        let found = problems("line 3, column 5: unknown key `oops`\nthe DAG has a cycle: a -> a\n");
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[0].column), (Some(3), Some(5)));
        assert_eq!(found[0].message, "unknown key `oops`");
        assert_eq!(found[1].line, None);
        assert_eq!(found[1].message, "the DAG has a cycle: a -> a");
    }
}

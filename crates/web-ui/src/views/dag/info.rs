//! The informational tabs of a DAG: Code (a stored version, with a diff against another),
//! Details, the Runs and Tasks tables and the audit log.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use updraft_model::{Operator, Param};
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{
    DagRun, DagRunQuery, DagRunSortField, EventLogQuery, EventLogRecord, EventLogSortField, Sort,
    StoreError, Window,
};

use super::{dur, header, load, page, DagHeader};
use crate::code::{self, Hunk};
use crate::grid::seconds;
use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::time::Moment;
use crate::UiError;

/// Rows per page of the Runs table and the audit log.
const PAGE_ROWS: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CodeQuery {
    version: Option<i64>,
    diff: Option<i64>,
}

#[derive(Template)]
#[template(path = "dag/code.html")]
struct CodePage {
    page: Page,
    dag: DagHeader,
    version: i64,
    versions: Vec<(i64, Moment)>,
    diff: Option<i64>,
    lines: Vec<String>,
    hunks: Vec<Hunk>,
}

/// `GET /dags/{dag_id}/code?version=&diff=`: the file as stored for a version, or the
/// changes from version `diff` to it.
pub(crate) async fn code(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<CodeQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let version = query.version.unwrap_or(record.version);
    let text = source(&state, &dag_id, version).await?;
    let versions = state
        .store()
        .dag_versions(
            &dag_id,
            Window {
                limit: 100,
                offset: 0,
            },
        )
        .await?
        .items
        .into_iter()
        .map(|v| (v.version, Moment::new(v.created_at)))
        .collect();
    let hunks = match query.diff {
        Some(other) => code::diff(&source(&state, &dag_id, other).await?, &text),
        None => Vec::new(),
    };
    page(&CodePage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "code"),
        version,
        versions,
        diff: query.diff,
        lines: code::lines(&text).into_iter().map(str::to_string).collect(),
        hunks,
    })
}

impl CodePage {
    fn is_version(&self, v: &i64) -> bool {
        *v == self.version
    }

    fn is_diff(&self, v: &i64) -> bool {
        self.diff == Some(*v)
    }
}

async fn source(state: &RestState, dag_id: &str, version: i64) -> Result<String, UiError> {
    match state.store().dag_source(dag_id, version).await {
        Ok(s) => Ok(s),
        Err(StoreError::NotFound(_)) => Err(UiError::NotFound(format!(
            "The DAG `{dag_id}` has no version {version}."
        ))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "dag/details.html")]
struct DetailsPage {
    page: Page,
    dag: DagHeader,
    def: std::sync::Arc<updraft_model::Dag>,
    fileloc: String,
    version: i64,
    last_parsed: Moment,
    fire_times: Vec<Moment>,
    params: Vec<Param>,
}

impl DetailsPage {
    fn moment(&self, at: &Option<chrono::DateTime<Utc>>) -> String {
        at.map(|t| Moment::in_dag_tz(t, self.def.timezone).to_string())
            .unwrap_or_else(|| "none".to_string())
    }
}

/// A value as the file would write it: a string without quotes, anything else as JSON.
pub(crate) fn plain_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// JSON text of a param's default, for the details table.
pub(crate) fn json_text(value: &Option<serde_json::Value>) -> String {
    match value {
        Some(v) => v.to_string(),
        None => "(none: required)".to_string(),
    }
}

/// `GET /dags/{dag_id}/details`: schedule, the next five fire times, params and settings.
pub(crate) async fn details(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let fire_times = updraft_model::next_fire_times(&dag, Utc::now(), 5)
        .into_iter()
        .map(|t| Moment::in_dag_tz(t, dag.timezone))
        .collect();
    page(&DetailsPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "details"),
        params: dag.param_specs(),
        fileloc: record.fileloc.clone(),
        version: record.version,
        last_parsed: Moment::new(record.last_parsed_at),
        fire_times,
        def: dag,
    })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    page: Option<u64>,
}

impl PageQuery {
    /// The page asked for, counted from 0 (pages count from 1 in addresses, as on the DAG
    /// list and the Admin lists).
    fn index(&self) -> u64 {
        self.page.unwrap_or(1).max(1) - 1
    }

    /// The rows of that page.
    fn window(&self) -> Window {
        Window {
            limit: PAGE_ROWS,
            offset: self.index().saturating_mul(u64::from(PAGE_ROWS)),
        }
    }
}

/// A row of the Runs table.
pub(crate) struct RunRow {
    pub run_id: String,
    pub href: String,
    pub state: &'static str,
    pub run_type: &'static str,
    pub logical_date: Moment,
    pub start: Option<Moment>,
    pub end: Option<Moment>,
    pub duration: String,
    pub note: Option<String>,
}

pub(crate) fn run_row(run: &DagRun, tz: chrono_tz::Tz) -> RunRow {
    RunRow {
        run_id: run.run_id.clone(),
        href: links::dag_run(&run.dag_id, &run.run_id),
        state: run.state.as_str(),
        run_type: run.run_type.as_str(),
        logical_date: Moment::in_dag_tz(run.logical_date, tz),
        start: run.start_date.map(|t| Moment::in_dag_tz(t, tz)),
        end: run.end_date.map(|t| Moment::in_dag_tz(t, tz)),
        duration: dur(&seconds(run.start_date, run.end_date, Utc::now())),
        note: run.note.clone(),
    }
}

/// Links to the previous and next pages of a table.
pub(crate) struct Pager {
    pub previous: Option<String>,
    pub next: Option<String>,
    pub summary: String,
}

/// The pager of page `page` (counted from 0 here, from 1 in links).
fn pager(base: &str, page: u64, shown: usize, total: u64) -> Pager {
    let first = page.saturating_mul(u64::from(PAGE_ROWS));
    Pager {
        previous: (page > 0).then(|| match page {
            1 => base.to_string(),
            _ => format!("{base}?page={page}"),
        }),
        next: (first.saturating_add(shown as u64) < total)
            .then(|| format!("{base}?page={}", page.saturating_add(2))),
        summary: if shown == 0 {
            format!("0 of {total}")
        } else {
            format!(
                "{}–{} of {total}",
                first + 1,
                first.saturating_add(shown as u64)
            )
        },
    }
}

#[derive(Template)]
#[template(path = "dag/runs.html")]
struct RunsPage {
    page: Page,
    dag: DagHeader,
    rows: Vec<RunRow>,
    pager: Pager,
}

/// `GET /dags/{dag_id}/runs?page=`: every run, newest first.
pub(crate) async fn runs(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let n = query.index();
    let found = state
        .store()
        .query_dag_runs(DagRunQuery {
            dag_ids: Some(vec![dag_id.clone()]),
            sort: vec![Sort {
                field: DagRunSortField::LogicalDate,
                descending: true,
            }],
            window: query.window(),
            ..Default::default()
        })
        .await?;
    let rows: Vec<RunRow> = found
        .items
        .iter()
        .map(|r| run_row(r, dag.timezone))
        .collect();
    page(&RunsPage {
        page: Page::new(&session, "dags"),
        pager: pager(
            &format!("{}/runs", links::dag(&dag_id)),
            n,
            rows.len(),
            found.total,
        ),
        rows,
        dag: header(&session, &record, &dag, "runs"),
    })
}

/// A row of the Tasks table.
pub(crate) struct TaskRow {
    pub task_id: String,
    pub operator: &'static str,
    pub command: Option<String>,
    pub dependencies: String,
    pub trigger_rule: &'static str,
    pub retries: u32,
    pub pool: String,
    pub queue: String,
    pub priority_weight: i64,
    pub timeout: String,
}

#[derive(Template)]
#[template(path = "dag/tasks.html")]
struct TasksPage {
    page: Page,
    dag: DagHeader,
    rows: Vec<TaskRow>,
}

/// `GET /dags/{dag_id}/tasks`: the tasks of the current version and their settings.
pub(crate) async fn tasks(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
) -> Result<Response, UiError> {
    let (record, dag) = load(&state, &dag_id).await?;
    let rows = dag
        .tasks
        .iter()
        .map(|t| TaskRow {
            task_id: t.task_id.clone(),
            operator: t.operator.kind(),
            command: match &t.operator {
                Operator::Bash { bash_command } => Some(bash_command.clone()),
                Operator::Python {
                    python_callable, ..
                } => Some(python_callable.clone()),
                Operator::Empty => None,
                Operator::Http(call) => Some(call.summary()),
                Operator::Docker(run) => Some(run.summary()),
                Operator::TriggerDagRun(trigger) => Some(trigger.summary()),
                Operator::ExternalTaskMarker(marker) => Some(marker.summary()),
                other => other.wait_summary(),
            },
            dependencies: t.dependencies.join(", "),
            trigger_rule: t.trigger_rule.as_str(),
            retries: t.retries,
            pool: t.pool.clone(),
            queue: t.queue.clone(),
            priority_weight: t.priority_weight,
            timeout: t
                .execution_timeout
                .map(|d| crate::time::duration(d.as_secs_f64()))
                .unwrap_or_else(|| "none".to_string()),
        })
        .collect();
    page(&TasksPage {
        page: Page::new(&session, "dags"),
        dag: header(&session, &record, &dag, "tasks"),
        rows,
    })
}

#[derive(Template)]
#[template(path = "dag/audit.html")]
struct AuditPage {
    page: Page,
    dag: DagHeader,
    events: Vec<(Moment, EventLogRecord)>,
    pager: Pager,
}

/// `GET /dags/{dag_id}/audit?page=`: the audit log of this DAG, newest first.
pub(crate) async fn audit(
    State(state): State<RestState>,
    session: Session,
    Path(dag_id): Path<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, UiError> {
    session.require(Action::Read, Resource::EventLog)?;
    let (record, dag) = load(&state, &dag_id).await?;
    let n = query.index();
    let found = state
        .store()
        .query_event_logs(EventLogQuery {
            dag_id: Some(dag_id.clone()),
            sort: vec![Sort {
                field: EventLogSortField::When,
                descending: true,
            }],
            window: query.window(),
            ..Default::default()
        })
        .await?;
    let events: Vec<(Moment, EventLogRecord)> = found
        .items
        .into_iter()
        .map(|e| (Moment::new(e.event.when), e))
        .collect();
    page(&AuditPage {
        page: Page::new(&session, "dags"),
        pager: pager(
            &format!("{}/audit", links::dag(&dag_id)),
            n,
            events.len(),
            found.total,
        ),
        events,
        dag: header(&session, &record, &dag, "audit"),
    })
}

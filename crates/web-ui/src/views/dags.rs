//! The DAGs list (`/dags`): search, tag filter, active/paused/failed filters, sorting and
//! pages, each DAG with its schedule, next run, latest runs as coloured squares, a pause
//! switch and a trigger button (for the roles that may). One bounded query for the page of
//! DAGs and one small query per DAG shown for its latest runs.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::future::try_join_all;
use serde::Deserialize;
use updraft_model::DagRunState;
use updraft_rest_api::auth::{Action, Resource};
use updraft_rest_api::RestState;
use updraft_store::{
    DagQuery, DagRunQuery, DagRunSortField, DagSortField, DagSummary, Sort, Window,
};

use crate::layout::Page;
use crate::links;
use crate::query::QueryParams;
use crate::session::Session;
use crate::state_label::StateLabel;
use crate::time::Moment;
use crate::UiError;

/// DAGs per page unless the query asks otherwise, and the most it may ask.
const PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;
/// Latest runs shown per DAG.
const RECENT_RUNS: u32 = 10;

#[derive(Debug, Default, Deserialize)]
pub struct DagsQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    tags: Vec<String>,
    /// `all` (default), `active`, `paused` or `failed`.
    #[serde(default)]
    status: String,
    /// A sort key, `-` in front for descending: `dag_id`, `next_run`, `last_run`.
    #[serde(default)]
    sort: String,
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    fragment: Option<String>,
}

/// A run square.
pub struct RunSquare {
    pub href: String,
    pub state: StateLabel,
    pub title: String,
}

pub struct DagRow {
    pub dag_id: String,
    pub href: String,
    pub trigger_href: String,
    pub description: String,
    pub tags: Vec<(String, String)>,
    pub schedule: String,
    pub next_run: Option<Moment>,
    pub is_paused: bool,
    pub runs: Vec<RunSquare>,
}

/// A link of the filter bar or the pager, and whether it is the current one.
pub struct Choice {
    pub label: String,
    pub href: String,
    pub current: bool,
}

pub struct SortLink {
    pub href: String,
    /// `ascending`, `descending` or `none` (for `aria-sort`).
    pub aria: &'static str,
}

pub struct DagTable {
    pub rows: Vec<DagRow>,
    pub total: u64,
    pub first: u64,
    pub last: u64,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub fragment_href: String,
    pub can_pause: bool,
    pub can_trigger: bool,
    pub sort_dag_id: SortLink,
    pub sort_next_run: SortLink,
    pub sort_last_run: SortLink,
}

#[derive(Template)]
#[template(path = "dags.html")]
struct DagsPage {
    page: Page,
    search: String,
    sort: String,
    selected_tags: Vec<String>,
    tags: Vec<String>,
    statuses: Vec<Choice>,
    table: DagTable,
}

#[derive(Template)]
#[template(path = "dags/table.html")]
struct TableFragment {
    table: DagTable,
}

/// `GET /dags` (`?fragment=table`: the live table only).
pub async fn page(
    State(state): State<RestState>,
    session: Session,
    QueryParams(query): QueryParams<DagsQuery>,
) -> Result<Response, UiError> {
    let store = state.store();
    let limit = query.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let page_number = query.page.unwrap_or(1).max(1);
    let (sort_field, descending) = sort_of(&query.sort)?;
    let mut dag_query = DagQuery {
        dag_id_pattern: Some(query.search.trim().to_string()).filter(|s| !s.is_empty()),
        tags: query.tags.clone(),
        exclude_stale: true,
        sort: vec![Sort {
            field: sort_field,
            descending,
        }],
        window: Window {
            limit,
            offset: (page_number - 1).saturating_mul(u64::from(limit)),
        },
        ..Default::default()
    };
    match query.status.as_str() {
        "" | "all" => {}
        "active" => dag_query.paused = Some(false),
        "paused" => dag_query.paused = Some(true),
        "failed" => dag_query.last_dag_run_state = Some(DagRunState::Failed),
        other => {
            return Err(UiError::BadRequest(format!(
                "unknown status filter {other:?}"
            )))
        }
    }
    let dags = store.query_dags(dag_query).await?;
    let recent = try_join_all(dags.items.iter().map(|summary| {
        store.query_dag_runs(DagRunQuery {
            dag_ids: Some(vec![summary.dag.dag_id.clone()]),
            sort: vec![Sort {
                field: DagRunSortField::LogicalDate,
                descending: true,
            }],
            window: Window {
                limit: RECENT_RUNS,
                offset: 0,
            },
            ..Default::default()
        })
    }))
    .await?;
    let mut rows = Vec::with_capacity(dags.items.len());
    for (summary, runs) in dags.items.into_iter().zip(recent) {
        rows.push(dag_row(&state, summary, runs.items).await);
    }
    let shown = rows.len() as u64;
    let offset = (page_number - 1).saturating_mul(u64::from(limit));
    let table = DagTable {
        total: dags.total,
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset.saturating_add(shown),
        previous: (page_number > 1).then(|| href(&query, |q| q.page = Some(page_number - 1))),
        next: (offset.saturating_add(shown) < dags.total)
            .then(|| href(&query, |q| q.page = Some(page_number.saturating_add(1)))),
        fragment_href: href(&query, |q| q.fragment = Some("table".into())),
        can_pause: session.allows(Action::Edit, Resource::Dag, None),
        can_trigger: session.allows(Action::Create, Resource::DagRun, None),
        sort_dag_id: sort_link(&query, "dag_id"),
        sort_next_run: sort_link(&query, "next_run"),
        sort_last_run: sort_link(&query, "last_run"),
        rows,
    };
    if let Some(fragment) = query.fragment.as_deref() {
        if fragment != "table" {
            return Err(UiError::BadRequest(format!("no fragment {fragment:?}")));
        }
        return Ok(super::html(&TableFragment { table })?.into_response());
    }
    let tags = store
        .dag_tags(
            None,
            Window {
                limit: 200,
                offset: 0,
            },
        )
        .await?
        .items;
    let statuses = ["all", "active", "paused", "failed"]
        .into_iter()
        .map(|status| Choice {
            label: status.to_string(),
            href: href(&query, |q| {
                q.status = status.into();
                q.page = None;
            }),
            current: query.status == status || (query.status.is_empty() && status == "all"),
        })
        .collect();
    let page = DagsPage {
        page: Page::new(&session, "dags"),
        search: query.search.clone(),
        sort: query.sort.clone(),
        selected_tags: query.tags.clone(),
        tags,
        statuses,
        table,
    };
    Ok(super::html(&page)?.into_response())
}

async fn dag_row(
    state: &RestState,
    summary: DagSummary,
    runs: Vec<updraft_store::DagRun>,
) -> DagRow {
    let dag = summary.dag;
    // The DAG's time zone, for the "DAG's time zone" choice; UTC when its version cannot be
    // read (the list still shows).
    let tz = match state.dags().get(&dag.dag_id, dag.version).await {
        Ok(graph) => graph.dag.timezone,
        Err(e) => {
            tracing::debug!(dag_id = %dag.dag_id, error = %e, "no time zone for the DAG list");
            chrono_tz::UTC
        }
    };
    let squares = runs
        .iter()
        .rev()
        .map(|run| RunSquare {
            href: links::dag_run(&run.dag_id, &run.run_id),
            state: run.state.into(),
            title: format!(
                "{} · {} · {}",
                run.run_id,
                run.state.as_str(),
                run.logical_date.format("%Y-%m-%d %H:%M UTC")
            ),
        })
        .collect();
    DagRow {
        href: links::dag(&dag.dag_id),
        trigger_href: links::trigger(&dag.dag_id),
        description: dag.description.clone().unwrap_or_default(),
        tags: dag
            .tags
            .iter()
            .map(|tag| (tag.clone(), format!("/dags?tags={}", links::encode(tag))))
            .collect(),
        schedule: if dag.schedule.is_empty() {
            "None".to_string()
        } else {
            dag.schedule.clone()
        },
        next_run: dag.next_dagrun.map(|at| Moment::in_dag_tz(at, tz)),
        is_paused: dag.is_paused,
        runs: squares,
        dag_id: dag.dag_id,
    }
}

fn sort_of(sort: &str) -> Result<(DagSortField, bool), UiError> {
    let (descending, key) = match sort.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, sort),
    };
    let field = match key {
        "" | "dag_id" => DagSortField::DagId,
        "next_run" => DagSortField::NextDagrun,
        "last_run" => DagSortField::LastRunStartDate,
        other => return Err(UiError::BadRequest(format!("unknown sort key {other:?}"))),
    };
    Ok((field, descending))
}

/// The link that sorts by `key`: ascending first, then toggling.
fn sort_link(query: &DagsQuery, key: &str) -> SortLink {
    let current = query.sort.trim_start_matches('-');
    let is_current = current == key || (current.is_empty() && key == "dag_id");
    let descending = query.sort.starts_with('-');
    let next = if is_current && !descending {
        format!("-{key}")
    } else {
        key.to_string()
    };
    SortLink {
        href: href(query, |q| {
            q.sort = next;
            q.page = None;
        }),
        aria: match (is_current, descending) {
            (false, _) => "none",
            (true, false) => "ascending",
            (true, true) => "descending",
        },
    }
}

/// `/dags` with the query's parameters as `change` leaves them (without the fragment
/// unless it sets one).
fn href(query: &DagsQuery, change: impl FnOnce(&mut DagsQuery)) -> String {
    let mut q = DagsQuery {
        search: query.search.clone(),
        tags: query.tags.clone(),
        status: query.status.clone(),
        sort: query.sort.clone(),
        page: query.page,
        limit: query.limit,
        fragment: None,
    };
    change(&mut q);
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !q.search.is_empty() {
        pairs.push(("search", q.search.clone()));
    }
    for tag in &q.tags {
        pairs.push(("tags", tag.clone()));
    }
    if !q.status.is_empty() && q.status != "all" {
        pairs.push(("status", q.status.clone()));
    }
    if !q.sort.is_empty() {
        pairs.push(("sort", q.sort.clone()));
    }
    if let Some(page) = q.page.filter(|p| *p > 1) {
        pairs.push(("page", page.to_string()));
    }
    if let Some(limit) = q.limit {
        pairs.push(("limit", limit.to_string()));
    }
    if let Some(fragment) = q.fragment {
        pairs.push(("fragment", fragment));
    }
    if pairs.is_empty() {
        return "/dags".to_string();
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", links::encode(v)))
        .collect();
    format!("/dags?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_other_parameters_and_reset_the_page() {
        let query = DagsQuery {
            search: "etl job".into(),
            tags: vec!["a".into(), "b&c".into()],
            status: "paused".into(),
            page: Some(3),
            ..Default::default()
        };
        assert_eq!(
            sort_link(&query, "next_run").href,
            "/dags?search=etl%20job&tags=a&tags=b%26c&status=paused&sort=next_run"
        );
        assert_eq!(sort_link(&query, "dag_id").aria, "ascending");
        assert_eq!(href(&DagsQuery::default(), |_| {}), "/dags");
    }
}

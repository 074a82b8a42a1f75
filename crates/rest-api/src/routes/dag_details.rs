//! What else there is to read about a DAG: `GET /dags/{dag_id}/details`, `GET /dagTags`,
//! `GET /dagSources/{dag_id}`, `GET /dags/{dag_id}/dagVersions[/{version_number}]` and
//! `GET /dagStats`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::DagRunState;
use updraft_store::{DagVersionRecord, StoreError, Window};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::common::{current_dag, dag_record, DagVersionResponse, PathParams, QueryParams};
use super::dags::{import_error_files, DAGResponse};
use crate::auth::{Access, Action, Resource};
use crate::params::Paging;
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_dag_details",
        Access::Require(Action::Read, Resource::Dag),
    ),
    ("get_dag_tags", Access::Require(Action::Read, Resource::Dag)),
    (
        "get_dag_source",
        Access::Require(Action::Read, Resource::Dag),
    ),
    (
        "get_dag_versions",
        Access::Require(Action::Read, Resource::Dag),
    ),
    (
        "get_dag_version",
        Access::Require(Action::Read, Resource::Dag),
    ),
    (
        "get_dag_stats",
        Access::Require(Action::Read, Resource::DagRun),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_dag_details))
        .routes(routes!(get_dag_tags))
        .routes(routes!(get_dag_source))
        .routes(routes!(get_dag_versions))
        .routes(routes!(get_dag_version))
        .routes(routes!(get_dag_stats))
}

/// Airflow's `DAGDetailsResponse`: a `DAGResponse` and the rest of the definition.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGDetailsResponse {
    #[serde(flatten)]
    pub dag: DAGResponse,
    pub catchup: bool,
    pub dag_run_timeout: Option<String>,
    pub asset_expression: Option<serde_json::Value>,
    pub doc_md: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub is_paused_upon_creation: Option<bool>,
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    pub render_template_as_native_obj: bool,
    pub template_search_path: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub last_parsed: Option<DateTime<Utc>>,
    pub default_args: Option<serde_json::Value>,
    pub owner_links: Option<serde_json::Value>,
    pub is_favorite: bool,
    pub active_runs_count: u64,
    pub concurrency: u32,
    pub latest_dag_version: Option<DagVersionResponse>,
    pub rerun_with_latest_version: Option<bool>,
}

/// The definition of a DAG in full.
#[utoipa::path(get, path = "/dags/{dag_id}/details", operation_id = "get_dag_details", tag = "DAG",
    params(("dag_id" = String, Path)),
    responses((status = 200, body = DAGDetailsResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag_details(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
) -> Result<Json<DAGDetailsResponse>, RestError> {
    let (record, graph) = current_dag(&state, &dag_id).await?;
    let errors = import_error_files(&state).await?;
    let counts = state
        .store()
        .dag_run_counts(Some(vec![dag_id.clone()]))
        .await?;
    let active_runs_count = counts
        .iter()
        .flat_map(|c| c.counts.iter())
        .filter(|(s, _)| *s == DagRunState::Running)
        .map(|(_, n)| *n)
        .sum();
    let latest_dag_version = all_versions(&state, &dag_id)
        .await?
        .into_iter()
        .find(|v| v.version == record.version)
        .map(|v| DagVersionResponse::from_record(&v));
    let dag = &graph.dag;
    Ok(Json(DAGDetailsResponse {
        catchup: dag.catchup,
        dag_run_timeout: dag.dagrun_timeout.map(iso_duration),
        asset_expression: dag.asset_schedule.as_ref().map(|c| c.expression()),
        doc_md: None,
        start_date: dag.start_date,
        end_date: dag.end_date,
        is_paused_upon_creation: None,
        params: dag
            .param_specs()
            .iter()
            .map(|p| (p.name.clone(), p.to_api_json()))
            .collect(),
        render_template_as_native_obj: false,
        template_search_path: None,
        timezone: Some(dag.timezone.to_string()),
        last_parsed: Some(record.last_parsed_at),
        default_args: None,
        owner_links: None,
        is_favorite: false,
        active_runs_count,
        concurrency: dag.max_active_tasks,
        latest_dag_version,
        rerun_with_latest_version: None,
        dag: DAGResponse::new(&record, &graph, errors.contains(&record.fileloc)),
    }))
}

/// Airflow's `DAGTagCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGTagCollectionResponse {
    pub tags: Vec<String>,
    pub total_entries: u64,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagQuery {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// A case-insensitive substring of the tag, with `%` and `_` wildcards.
    pub tag_name_pattern: Option<String>,
    /// `name` or `-name`.
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// Every tag of the active DAGs, sorted.
#[utoipa::path(get, path = "/dagTags", operation_id = "get_dag_tags", tag = "DAG",
    params(TagQuery),
    responses((status = 200, body = DAGTagCollectionResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn get_dag_tags(
    State(state): State<RestState>,
    QueryParams(query): QueryParams<TagQuery>,
) -> Result<Json<DAGTagCollectionResponse>, RestError> {
    let sort = crate::params::order_by(&query.order_by, &[("name", ())])?;
    let descending = sort.first().is_some_and(|s| s.descending);
    let window = Paging {
        limit: query.limit,
        offset: query.offset,
    }
    .window(state.config());
    let page = if descending {
        // The store pages in ascending order: reverse the whole list, then page.
        let all = state
            .store()
            .dag_tags(
                query.tag_name_pattern.clone(),
                Window {
                    limit: u32::MAX,
                    offset: 0,
                },
            )
            .await?;
        let tags = all
            .items
            .into_iter()
            .rev()
            .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
            .take(window.limit as usize)
            .collect();
        updraft_store::Page {
            items: tags,
            total: all.total,
        }
    } else {
        state
            .store()
            .dag_tags(query.tag_name_pattern, window)
            .await?
    };
    Ok(Json(DAGTagCollectionResponse {
        tags: page.items,
        total_entries: page.total,
    }))
}

/// Airflow's `DAGSourceResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGSourceResponse {
    pub content: Option<String>,
    pub dag_id: String,
    pub version_number: Option<i64>,
    pub dag_display_name: String,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourceQuery {
    /// The version whose file to show (default: the current one).
    pub version_number: Option<i64>,
}

/// The text of the DAG's file as it was published in a version: JSON, or the bare text
/// with `Accept: text/plain`.
#[utoipa::path(get, path = "/dagSources/{dag_id}", operation_id = "get_dag_source", tag = "DagSource",
    params(("dag_id" = String, Path), SourceQuery),
    responses((status = 200, body = DAGSourceResponse, content_type = "application/json"),
        (status = 200, body = String, content_type = "text/plain"),
        (status = 404, body = crate::error::ErrorBody), (status = 406, body = crate::error::ErrorBody)))]
async fn get_dag_source(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(query): QueryParams<SourceQuery>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let record = dag_record(&state, &dag_id).await?;
    let version = query.version_number.unwrap_or(record.version);
    let content = match state.store().dag_source(&dag_id, version).await {
        Ok(text) => text,
        Err(StoreError::NotFound(_)) => {
            return Err(RestError::not_found(format!(
                "The source code of the Dag {dag_id}, version_number {version} was not found"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if accept.contains("text/plain") && !accept.contains("application/json") {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], content).into_response());
    }
    if !(accept.contains("application/json") || accept.contains("*/*") || accept.is_empty()) {
        return Err(RestError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "Content not available for Accept header",
        ));
    }
    Ok(Json(DAGSourceResponse {
        content: Some(content),
        dag_display_name: dag_id.clone(),
        dag_id,
        version_number: Some(version),
    })
    .into_response())
}

/// Airflow's `DAGVersionCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DAGVersionCollectionResponse {
    pub dag_versions: Vec<DagVersionResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    pub version_number: Option<i64>,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    /// `id`, `version_number`, `bundle_name`, `bundle_version` (`-` for descending).
    #[serde(default)]
    pub order_by: Vec<String>,
}

/// Every version of a DAG (a DAG has few, so they are read whole and paged here).
async fn all_versions(state: &RestState, dag_id: &str) -> Result<Vec<DagVersionRecord>, RestError> {
    Ok(state
        .store()
        .dag_versions(
            dag_id,
            Window {
                limit: u32::MAX,
                offset: 0,
            },
        )
        .await?
        .items)
}

/// The published versions of a DAG.
#[utoipa::path(get, path = "/dags/{dag_id}/dagVersions", operation_id = "get_dag_versions", tag = "DagVersion",
    params(("dag_id" = String, Path), VersionQuery),
    responses((status = 200, body = DAGVersionCollectionResponse), (status = 404, body = crate::error::ErrorBody)))]
async fn get_dag_versions(
    State(state): State<RestState>,
    PathParams(dag_id): PathParams<String>,
    QueryParams(query): QueryParams<VersionQuery>,
) -> Result<Json<DAGVersionCollectionResponse>, RestError> {
    let sort = crate::params::order_by(
        &query.order_by,
        &[
            ("id", ()),
            ("version_number", ()),
            ("bundle_name", ()),
            ("bundle_version", ()),
        ],
    )?;
    let dag_ids: Vec<String> = match dag_id.as_str() {
        "~" => state
            .store()
            .list_dags()
            .await?
            .into_iter()
            .map(|d| d.dag_id)
            .collect(),
        _ => vec![dag_record(&state, &dag_id).await?.dag_id],
    };
    let mut versions = Vec::new();
    for dag_id in &dag_ids {
        versions.extend(all_versions(&state, dag_id).await?);
    }
    versions.retain(|v| {
        query.version_number.is_none_or(|n| v.version == n)
            && query
                .bundle_name
                .as_deref()
                .is_none_or(|b| b == super::common::BUNDLE_NAME)
            && query.bundle_version.is_none()
    });
    versions.sort_by(|a, b| (&a.dag_id, a.version).cmp(&(&b.dag_id, b.version)));
    if sort.first().is_some_and(|s| s.descending) {
        versions.reverse();
    }
    let total = versions.len() as u64;
    let window = Paging {
        limit: query.limit,
        offset: query.offset,
    }
    .window(state.config());
    let page = versions
        .iter()
        .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
        .take(window.limit as usize)
        .map(DagVersionResponse::from_record)
        .collect();
    Ok(Json(DAGVersionCollectionResponse {
        dag_versions: page,
        total_entries: total,
    }))
}

/// One published version of a DAG.
#[utoipa::path(get, path = "/dags/{dag_id}/dagVersions/{version_number}", operation_id = "get_dag_version",
    tag = "DagVersion",
    params(("dag_id" = String, Path), ("version_number" = i64, Path)),
    responses((status = 200, body = DagVersionResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_dag_version(
    State(state): State<RestState>,
    PathParams((dag_id, version_number)): PathParams<(String, i64)>,
) -> Result<Json<DagVersionResponse>, RestError> {
    all_versions(&state, &dag_id)
        .await?
        .into_iter()
        .find(|v| v.version == version_number)
        .map(|v| Json(DagVersionResponse::from_record(&v)))
        .ok_or_else(|| {
            RestError::not_found(format!(
                "The DagVersion with dag_id: `{dag_id}` and version_number: `{version_number}` was not found"
            ))
        })
}

/// Airflow's `DagStatsStateResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagStatsStateResponse {
    pub state: String,
    pub count: u64,
}

/// Airflow's `DagStatsResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagStatsResponse {
    pub dag_id: String,
    pub dag_display_name: String,
    pub stats: Vec<DagStatsStateResponse>,
}

/// Airflow's `DagStatsCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagStatsCollectionResponse {
    pub dags: Vec<DagStatsResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The DAGs to count (default: every DAG with runs).
    #[serde(default)]
    pub dag_ids: Vec<String>,
}

const RUN_STATES: [DagRunState; 4] = [
    DagRunState::Queued,
    DagRunState::Running,
    DagRunState::Success,
    DagRunState::Failed,
];

/// How many runs of each DAG are in each state; every state is listed, zeros included.
#[utoipa::path(get, path = "/dagStats", operation_id = "get_dag_stats", tag = "DagStats",
    params(StatsQuery),
    responses((status = 200, body = DagStatsCollectionResponse), (status = 422, body = crate::error::ErrorBody)))]
async fn get_dag_stats(
    State(state): State<RestState>,
    QueryParams(query): QueryParams<StatsQuery>,
) -> Result<Json<DagStatsCollectionResponse>, RestError> {
    let dag_ids = (!query.dag_ids.is_empty()).then_some(query.dag_ids);
    let counts = state.store().dag_run_counts(dag_ids).await?;
    let dags: Vec<DagStatsResponse> = counts
        .into_iter()
        .map(|c| DagStatsResponse {
            dag_display_name: c.dag_id.clone(),
            stats: RUN_STATES
                .iter()
                .map(|s| DagStatsStateResponse {
                    state: s.as_str().to_string(),
                    count: c
                        .counts
                        .iter()
                        .filter(|(state, _)| state == s)
                        .map(|(_, n)| *n)
                        .sum(),
                })
                .collect(),
            dag_id: c.dag_id,
        })
        .collect();
    Ok(Json(DagStatsCollectionResponse {
        total_entries: dags.len() as u64,
        dags,
    }))
}

/// A duration as pydantic writes a `timedelta` in JSON (ISO 8601: `PT1H`, `P1DT30M`, `PT1.5S`).
fn iso_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, minutes, seconds) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let micros = d.subsec_micros();
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || micros > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if micros > 0 {
            let fraction = format!("{micros:06}");
            out.push_str(&format!("{seconds}.{}S", fraction.trim_end_matches('0')));
        } else if seconds > 0 || (hours == 0 && minutes == 0) {
            out.push_str(&format!("{seconds}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_are_written_as_pydantic_writes_timedeltas() {
        for (secs, text) in [
            (0.0, "PT0S"),
            (90.0, "PT1M30S"),
            (3600.0, "PT1H"),
            (86_400.0 + 1800.0, "P1DT30M"),
            (86_400.0, "P1D"),
            (1.5, "PT1.5S"),
        ] {
            assert_eq!(super::iso_duration(Duration::from_secs_f64(secs)), text);
        }
    }
}

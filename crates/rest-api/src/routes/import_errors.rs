//! `GET /importErrors` and `GET /importErrors/{import_error_id}`: DAG files that failed to
//! parse, as the DAG processor last saw them.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_store::{ImportErrorRow, ImportErrorSortField, StoreError};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{PathParams, QueryParams};
use crate::params::{order_by, Paging};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_import_errors",
        Access::Require(Action::Read, Resource::ImportError),
    ),
    (
        "get_import_error",
        Access::Require(Action::Read, Resource::ImportError),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_import_errors))
        .routes(routes!(get_import_error))
}

/// Airflow's `ImportErrorResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportErrorResponse {
    pub import_error_id: i64,
    pub timestamp: DateTime<Utc>,
    pub filename: String,
    /// updraft has one DAG folder, no bundles.
    pub bundle_name: Option<String>,
    pub stack_trace: String,
}

/// Airflow's `ImportErrorCollectionResponse`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportErrorCollectionResponse {
    pub import_errors: Vec<ImportErrorResponse>,
    pub total_entries: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportErrorParams {
    /// How many to answer.
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
    /// `id`/`import_error_id`, `timestamp`, `filename`; `-` for descending; repeatable.
    #[serde(default)]
    pub order_by: Vec<String>,
}

const IMPORT_ERROR_ORDER: &[(&str, ImportErrorSortField)] = &[
    ("id", ImportErrorSortField::Id),
    ("import_error_id", ImportErrorSortField::Id),
    ("timestamp", ImportErrorSortField::Timestamp),
    ("filename", ImportErrorSortField::Filename),
];

fn response(row: ImportErrorRow) -> ImportErrorResponse {
    ImportErrorResponse {
        import_error_id: row.id,
        timestamp: row.timestamp,
        filename: row.filename,
        bundle_name: None,
        stack_trace: row.error,
    }
}

/// Import errors, sorted and paged.
#[utoipa::path(get, path = "/importErrors", operation_id = "get_import_errors",
    tag = "Import Error", params(ImportErrorParams),
    responses((status = 200, body = ImportErrorCollectionResponse),
        (status = 400, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_import_errors(
    State(state): State<RestState>,
    QueryParams(params): QueryParams<ImportErrorParams>,
) -> Result<Json<ImportErrorCollectionResponse>, RestError> {
    let sort = order_by(&params.order_by, IMPORT_ERROR_ORDER)?;
    let window = Paging {
        limit: params.limit,
        offset: params.offset,
    }
    .window(state.config());
    let page = state.store().query_import_errors(sort, window).await?;
    Ok(Json(ImportErrorCollectionResponse {
        import_errors: page.items.into_iter().map(response).collect(),
        total_entries: page.total,
    }))
}

/// One import error.
#[utoipa::path(get, path = "/importErrors/{import_error_id}", operation_id = "get_import_error",
    tag = "Import Error", params(("import_error_id" = i64, Path)),
    responses((status = 200, body = ImportErrorResponse), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn get_import_error(
    State(state): State<RestState>,
    PathParams(import_error_id): PathParams<i64>,
) -> Result<Json<ImportErrorResponse>, RestError> {
    match state.store().get_import_error(import_error_id).await {
        Ok(row) => Ok(Json(response(row))),
        Err(StoreError::NotFound(_)) => Err(RestError::not_found(format!(
            "The ImportError with import_error_id: `{import_error_id}` was not found"
        ))),
        Err(e) => Err(e.into()),
    }
}

//! `GET /version`.

use axum::Json;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::RestState;

pub(crate) const PERMISSIONS: super::Permissions = &[(
    "get_version",
    Access::Require(Action::Read, Resource::Website),
)];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(get_version))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: String,
    pub git_version: Option<String>,
}

/// The version of updraft serving the request.
#[utoipa::path(get, path = "/version", operation_id = "get_version", tag = "Version",
    responses((status = 200, body = VersionInfo)))]
async fn get_version() -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        // Set by release builds (`UPDRAFT_GIT_VERSION=$(git rev-parse HEAD) cargo build`).
        git_version: option_env!("UPDRAFT_GIT_VERSION").map(str::to_string),
    })
}

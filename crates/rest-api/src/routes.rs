//! The operations of `/api/v2` and `/auth`, one module per resource. Each module has a
//! `routes()` with its handlers and a `PERMISSIONS` table naming the access each of its
//! operations (by operation id) needs.

mod auth;
mod version;

use utoipa_axum::router::OpenApiRouter;

use crate::auth::Access;
use crate::RestState;

/// An operation id and the access it needs.
pub(crate) type Permissions = &'static [(&'static str, Access)];

/// Every module's table; [`crate::router`] refuses to build if an operation is missing.
pub(crate) const PERMISSIONS: &[Permissions] = &[auth::PERMISSIONS, version::PERMISSIONS];

/// The routes under `/api/v2`.
pub(crate) fn api_v2() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().merge(version::routes())
}

/// The routes outside `/api/v2` (logging in and out).
pub(crate) fn auth() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().merge(auth::routes())
}

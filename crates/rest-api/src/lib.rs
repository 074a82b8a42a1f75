//! The public REST API: Airflow 3's `/api/v2` for everything updraft has, served by
//! `standalone` and by every `api-server`, with users, roles and tokens, and an OpenAPI 3.1
//! document generated from the handlers' own types.
//!
//! - [`router`] builds the routes; every operation has an entry in its module's
//!   `PERMISSIONS` table, and `auth::authorize` decides every request from it, so a route
//!   without a permission cannot be served (the router refuses to build).
//! - Handlers are thin: they parse Airflow's parameters (`params`), call the store and
//!   shape Airflow's JSON. What they change is written to the audit log ([`audit`]).
//! - The server keeps no state of its own: tokens are signed with the shared
//!   `api.jwt_secret`; revocations and failed logins live in the database.

pub mod audit;
pub mod auth;
mod cors;
mod counts;
mod error;
mod extract;
pub mod openapi;
mod params;
mod routes;
mod state;
mod versions;

pub use error::{method_not_allowed, route_not_found, ApiError, RestError};
pub use openapi::{openapi_document, router};
pub use routes::config::{hide_config_secrets, HIDDEN};
pub use routes::logs::log_continuation_token;
pub use routes::monitor::{HealthConfig, HeartbeatSource, Heartbeats};
pub use state::{Notifier, RestConfig, RestState};

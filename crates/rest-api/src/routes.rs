//! The operations of `/api/v2` and `/auth`, one module per resource. Each module has a
//! `routes()` with its handlers and a `PERMISSIONS` table naming the access each of its
//! operations (by operation id) needs.

mod assets;
mod auth;
mod backfills;
pub(crate) mod bulk;
mod common;
pub(crate) mod config;
mod connections;
mod dag_details;
mod dag_run_actions;
mod dag_runs;
mod dags;
mod event_logs;
mod external_markers;
mod import_errors;
mod jobs;
pub(crate) mod logs;
pub(crate) mod monitor;
mod pools;
mod task_instance_actions;
mod task_instance_dependencies;
mod task_instances;
mod tasks;
mod ti_run_dependencies;
mod ti_shape;
mod variables;
mod version;
mod xcom;

use utoipa_axum::router::OpenApiRouter;

use crate::auth::Access;
use crate::RestState;

/// An operation id and the access it needs.
pub(crate) type Permissions = &'static [(&'static str, Access)];

/// Every module's table; [`crate::router`] refuses to build if an operation is missing.
pub(crate) const PERMISSIONS: &[Permissions] = &[
    auth::PERMISSIONS,
    version::PERMISSIONS,
    pools::PERMISSIONS,
    event_logs::PERMISSIONS,
    import_errors::PERMISSIONS,
    jobs::PERMISSIONS,
    config::PERMISSIONS,
    monitor::PERMISSIONS,
    xcom::PERMISSIONS,
    dags::PERMISSIONS,
    dag_details::PERMISSIONS,
    tasks::PERMISSIONS,
    dag_runs::PERMISSIONS,
    dag_run_actions::PERMISSIONS,
    backfills::PERMISSIONS,
    assets::PERMISSIONS,
    task_instances::PERMISSIONS,
    task_instance_actions::PERMISSIONS,
    task_instance_dependencies::PERMISSIONS,
    logs::PERMISSIONS,
    connections::PERMISSIONS,
    variables::PERMISSIONS,
];

/// The routes under `/api/v2`.
pub(crate) fn api_v2() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .merge(version::routes())
        .merge(pools::routes())
        .merge(event_logs::routes())
        .merge(import_errors::routes())
        .merge(jobs::routes())
        .merge(config::routes())
        .merge(monitor::routes())
        .merge(xcom::routes())
        .merge(dags::routes())
        .merge(dag_details::routes())
        .merge(tasks::routes())
        .merge(dag_runs::routes())
        .merge(dag_run_actions::routes())
        .merge(backfills::routes())
        .merge(assets::routes())
        .merge(task_instances::routes())
        .merge(task_instance_actions::routes())
        .merge(task_instance_dependencies::routes())
        .merge(logs::routes())
        .merge(connections::routes())
        .merge(variables::routes())
}

/// The routes outside `/api/v2` (logging in and out).
pub(crate) fn auth() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().merge(auth::routes())
}

//! Contract tests of the public REST API against a real server on a SQLite file.

mod assets;
mod auth;
mod backfills;
mod config;
mod connections;
mod dag_runs;
mod dags;
mod event_logs;
mod external_markers;
mod fixture;
mod import_errors;
mod jobs;
mod logs;
mod monitor;
mod openapi_file;
mod permissions;
mod pools;
mod task_instances;
mod variables;
mod version;
mod world;
mod xcom;

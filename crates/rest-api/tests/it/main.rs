//! Contract tests of the public REST API against a real server on a SQLite file.

mod config;
mod event_logs;
mod fixture;
mod import_errors;
mod jobs;
mod monitor;
mod permissions;
mod pools;
mod version;
mod xcom;

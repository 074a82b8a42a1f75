//! Contract tests of the public REST API against a real server on a SQLite file.

mod dag_runs;
mod dags;
mod fixture;
mod logs;
mod permissions;
mod task_instances;
mod version;
mod world;

//! End-to-end tests of the `updraft` binary: real processes, a real SQLite file, real tasks.

mod assets;
mod audit;
mod backfill;
mod cli;
mod cluster;
mod crash;
mod dag_folder;
mod docker_tasks;
mod fixture;
mod http_tasks;
mod mapped_groups;
mod mapping;
mod operations;
mod python;
mod python_dags;
mod python_fork_server;
mod rest_clients;
mod run_dependencies;
mod secrets;
mod setup_teardown;
mod standalone;
mod start_slots;
mod task_dev;
mod ui;
mod users;

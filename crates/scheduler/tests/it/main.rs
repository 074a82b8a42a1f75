//! Integration tests of the scheduler: a real `Scheduler` on a SQLite store in a temporary
//! file, driven pass by pass under a fake clock, with the tests acting as the worker.

mod active_active;
mod assets;
mod clear;
mod concurrency;
mod fixture;
mod notifications;
mod retries;
mod robustness;
mod run_dependencies;
mod run_loop;
mod schedule;
mod versions;

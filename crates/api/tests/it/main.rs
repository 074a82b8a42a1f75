//! Integration tests of the task-execution API: the real server on 127.0.0.1, a real SQLite
//! store in a temporary directory, spoken to with raw HTTP (reqwest) and with
//! [`HttpExecution`](updraft_api::HttpExecution), the client remote workers use. They assert
//! status codes, bodies and what ends up in the store.

mod auth;
mod bad_requests;
mod claims;
mod dag_runs;
mod failover;
mod fixture;
mod fuzz_corpus;
mod logs;
mod long_poll;

//! Tests of the benchmark harness, run against the real `updraft` binary.

mod postgres_cluster;
mod quick;
mod soak;

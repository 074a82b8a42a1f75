//! Tests of the benchmark harness, run against the real `updraft` binary.

mod quick;

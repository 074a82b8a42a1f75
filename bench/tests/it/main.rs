//! Tests of the benchmark harness, run against the real `updraft` binary.

mod postgres_cluster;
mod quick;
mod soak;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Held by every test that runs the harness, so that one runs at a time: each harness
/// reclaims the databases and homes of the harnesses that died, which would take a killed
/// harness's leftovers away before its test looks at them. `cargo test` runs this binary's
/// tests as threads of one process; cargo-nextest runs each in a process of its own, and its
/// `bench-harness` test group (`.config/nextest.toml`) keeps them apart there.
pub fn one_harness_at_a_time() -> MutexGuard<'static, ()> {
    static HARNESS: Mutex<()> = Mutex::new(());
    HARNESS.lock().unwrap_or_else(PoisonError::into_inner)
}

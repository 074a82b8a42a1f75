//! A mapped task expanded again after it was cleared (Airflow's revision of map indexes): when
//! an instance that ran before is ready once more, the values it maps over may have changed
//! (its upstream cleared and run again). Instances past the new length are `removed`, and
//! instance 0 brings the missing ones, as Airflow revises them when they are scheduled.

use updraft_model::Mapping;
use updraft_store::TaskInstance;

use super::{expansion, Expand, MapInputs};
use updraft_model::Task;

/// What a ready instance of a mapped task becomes.
pub(super) enum Revise {
    /// Runs as it is.
    Keep,
    NeedsXcoms,
    /// Past the new length.
    Remove,
    /// Runs, and the task grows to this many instances.
    Grow(usize),
    Fails(String),
}

/// `instances`: how many instances the task has now.
pub(super) fn revise(
    task: &Task,
    mapping: &Mapping,
    ti: &TaskInstance,
    instances: usize,
    inputs: MapInputs<'_>,
) -> Revise {
    // Only an instance that ran before may have been cleared; a literal never changes.
    if ti.try_number == 0 || !mapping.reads_upstream() {
        return Revise::Keep;
    }
    let Ok(index) = usize::try_from(ti.map_index) else {
        return Revise::Keep;
    };
    match expansion(task, mapping, inputs) {
        Expand::NeedsXcoms => Revise::NeedsXcoms,
        Expand::Fails(message) => Revise::Fails(message),
        Expand::To(n) if index >= n => Revise::Remove,
        Expand::To(n) if index == 0 && n > instances => Revise::Grow(n),
        Expand::To(_) => Revise::Keep,
    }
}

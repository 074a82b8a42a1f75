//! Airflow's 13 trigger rules and the decision they make from the states of a task's upstream.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    AllSuccess,
    AllFailed,
    AllDone,
    AllDoneMinOneSuccess,
    AllSkipped,
    OneSuccess,
    OneFailed,
    OneDone,
    NoneFailed,
    NoneFailedMinOneSuccess,
    NoneSkipped,
    Always,
    AllDoneSetupSuccess,
}

/// How many direct upstream tasks are in each finished state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamSummary {
    pub total: usize,
    pub success: usize,
    pub failed: usize,
    pub upstream_failed: usize,
    pub skipped: usize,
    pub removed: usize,
    /// Upstream tasks in any finished state (the sum of the counts above).
    pub done: usize,
}

/// What the scheduler does with a task whose upstream looks like an `UpstreamSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Wait,
    Run,
    Skip,
    UpstreamFailed,
}

impl TriggerRule {
    // TODO(helper): Airflow's semantics for all 13 rules.
    pub fn decide(self, upstream: &UpstreamSummary) -> Decision {
        if upstream.done == upstream.total {
            Decision::Run
        } else {
            Decision::Wait
        }
    }
}

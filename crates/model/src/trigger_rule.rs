//! Airflow's 13 trigger rules and the decision they make from the states of a task's upstream.
//!
//! The behaviour is Airflow's `TriggerRuleDep` for direct upstream tasks, as the scheduler runs it
//! (with `flag_upstream_failed`): first a rule may settle the task as `skipped` or
//! `upstream_failed` without waiting for the rest of its upstream (this is how skips and failures
//! propagate downstream), otherwise the task runs once the rule is met, or waits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::{TaskState, UnknownState};

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
    /// Of `total`, the setup tasks, and those of them that succeeded or were skipped (what
    /// `all_done_setup_success` looks at).
    pub setups: usize,
    pub setup_success: usize,
    pub setup_skipped: usize,
}

/// What the scheduler does with a task whose upstream looks like an `UpstreamSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Wait,
    Run,
    Skip,
    UpstreamFailed,
}

/// The Airflow names of [`TRIGGER_RULES`], in the same order.
pub const TRIGGER_RULE_NAMES: [&str; TRIGGER_RULES.len()] = {
    let mut names = [""; TRIGGER_RULES.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = TRIGGER_RULES[i].1;
        i += 1;
    }
    names
};

/// Every rule with its Airflow name, in Airflow's documentation order.
pub const TRIGGER_RULES: [(TriggerRule, &str); 13] = [
    (TriggerRule::AllSuccess, "all_success"),
    (TriggerRule::AllFailed, "all_failed"),
    (TriggerRule::AllDone, "all_done"),
    (
        TriggerRule::AllDoneMinOneSuccess,
        "all_done_min_one_success",
    ),
    (TriggerRule::AllSkipped, "all_skipped"),
    (TriggerRule::OneSuccess, "one_success"),
    (TriggerRule::OneFailed, "one_failed"),
    (TriggerRule::OneDone, "one_done"),
    (TriggerRule::NoneFailed, "none_failed"),
    (
        TriggerRule::NoneFailedMinOneSuccess,
        "none_failed_min_one_success",
    ),
    (TriggerRule::NoneSkipped, "none_skipped"),
    (TriggerRule::Always, "always"),
    (TriggerRule::AllDoneSetupSuccess, "all_done_setup_success"),
];

impl UpstreamSummary {
    /// Counts the states of a task's direct upstream task instances; unfinished states count
    /// towards `total` only.
    pub fn from_states(states: impl IntoIterator<Item = TaskState>) -> Self {
        let mut summary = UpstreamSummary::default();
        for state in states {
            summary.total += 1;
            let count = match state {
                TaskState::Success => &mut summary.success,
                TaskState::Failed => &mut summary.failed,
                TaskState::UpstreamFailed => &mut summary.upstream_failed,
                TaskState::Skipped => &mut summary.skipped,
                TaskState::Removed => &mut summary.removed,
                _ => continue,
            };
            *count += 1;
            summary.done += 1;
        }
        summary
    }
}

impl TriggerRule {
    pub fn as_str(self) -> &'static str {
        TRIGGER_RULES
            .iter()
            .find(|(rule, _)| *rule == self)
            .map(|(_, name)| *name)
            .unwrap_or("all_success")
    }

    /// Airflow's decision for a task with this rule, given its direct upstream.
    ///
    /// - A task without upstream (`total` = 0, or only removed upstream tasks) runs, whatever
    ///   its rule.
    /// - Upstream tasks in `removed` no longer belong to the DAG and are left out: they count
    ///   neither in `total` nor as done. `done` is derived from the per-state counts.
    /// - `upstream_failed` counts as a failure wherever Airflow counts it (`all_failed`,
    ///   `one_failed`, the `none_failed*` rules, `all_success`), but not as "done with an
    ///   outcome" for `one_done`, which needs a success or a failure.
    /// - `all_done_setup_success` (a teardown's rule): runs once every upstream task is done,
    ///   if at least one upstream setup succeeded; skipped when every upstream setup was
    ///   skipped, upstream-failed when none succeeded. Without setup upstream, `all_done`.
    pub fn decide(self, upstream: &UpstreamSummary) -> Decision {
        let total = upstream.total.saturating_sub(upstream.removed);
        if total == 0 {
            return Decision::Run;
        }
        let success = upstream.success;
        let skipped = upstream.skipped;
        // Failures as Airflow's rules count them: failed or upstream_failed.
        let failures = upstream.failed + upstream.upstream_failed;
        let done = success + failures + skipped;
        let all_done = done >= total;

        if let Some(settled) = self.settle(upstream, total, all_done) {
            return settled;
        }
        let met = match self {
            TriggerRule::AllSuccess => success >= total,
            TriggerRule::AllFailed => failures >= total,
            TriggerRule::AllDone | TriggerRule::AllDoneSetupSuccess => all_done,
            TriggerRule::AllDoneMinOneSuccess => skipped == 0 && all_done && success > 0,
            TriggerRule::AllSkipped => skipped >= total,
            TriggerRule::OneSuccess => success > 0,
            TriggerRule::OneFailed => failures > 0,
            TriggerRule::OneDone => success + upstream.failed > 0,
            TriggerRule::NoneFailed | TriggerRule::NoneFailedMinOneSuccess => {
                success + skipped >= total
            }
            TriggerRule::NoneSkipped => all_done && skipped == 0,
            TriggerRule::Always => true,
        };
        if met {
            Decision::Run
        } else {
            Decision::Wait
        }
    }

    /// Whether the upstream already settles the task as skipped or upstream_failed, without
    /// waiting for the remaining upstream tasks (Airflow's `flag_upstream_failed` branch).
    fn settle(self, upstream: &UpstreamSummary, total: usize, all_done: bool) -> Option<Decision> {
        let success = upstream.success;
        let failed = upstream.failed;
        let skipped = upstream.skipped;
        let failures = failed + upstream.upstream_failed;
        let done = success + failures + skipped;
        let settled = match self {
            TriggerRule::AllSuccess if failures > 0 => Decision::UpstreamFailed,
            TriggerRule::AllSuccess if skipped > 0 => Decision::Skip,
            TriggerRule::AllFailed if success > 0 || skipped > 0 => Decision::Skip,
            TriggerRule::AllDoneMinOneSuccess if skipped > 0 => Decision::Skip,
            TriggerRule::AllDoneMinOneSuccess if all_done && success == 0 => {
                Decision::UpstreamFailed
            }
            TriggerRule::AllSkipped if success > 0 || failures > 0 => Decision::Skip,
            TriggerRule::OneSuccess if all_done && done == skipped => Decision::Skip,
            TriggerRule::OneSuccess if all_done && success == 0 => Decision::UpstreamFailed,
            TriggerRule::OneFailed if all_done && failures == 0 => Decision::Skip,
            TriggerRule::OneDone if all_done && failed == 0 && success == 0 => Decision::Skip,
            TriggerRule::NoneFailed if failures > 0 => Decision::UpstreamFailed,
            TriggerRule::NoneFailedMinOneSuccess if failures > 0 => Decision::UpstreamFailed,
            TriggerRule::NoneFailedMinOneSuccess if skipped >= total => Decision::Skip,
            TriggerRule::NoneSkipped if skipped > 0 => Decision::Skip,
            TriggerRule::AllDoneSetupSuccess
                if all_done && upstream.setups > 0 && upstream.setup_skipped >= upstream.setups =>
            {
                Decision::Skip
            }
            TriggerRule::AllDoneSetupSuccess
                if all_done && upstream.setups > 0 && upstream.setup_success == 0 =>
            {
                Decision::UpstreamFailed
            }
            _ => return None,
        };
        Some(settled)
    }
}

impl FromStr for TriggerRule {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TRIGGER_RULES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(rule, _)| *rule)
            .ok_or_else(|| UnknownState {
                kind: "trigger rule",
                value: s.to_string(),
            })
    }
}

impl fmt::Display for TriggerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;

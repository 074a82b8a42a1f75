//! The states of runs and task instances as the UI shows them: Airflow's colours (in
//! `app.css`, by class `state-<name>`) always with the state's name as text or label, so
//! colour is never the only cue.

use updraft_model::{DagRunState, TaskState};

/// A state to show: its name (also the CSS class suffix) and its readable label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateLabel {
    pub name: &'static str,
}

impl StateLabel {
    /// The CSS class (`state-success`, …).
    pub fn class(&self) -> String {
        format!("state-{}", self.name)
    }

    /// The name for people: "up for retry" rather than `up_for_retry`.
    pub fn label(&self) -> String {
        self.name.replace('_', " ")
    }
}

impl From<TaskState> for StateLabel {
    fn from(state: TaskState) -> Self {
        StateLabel {
            name: state.as_str(),
        }
    }
}

impl From<DagRunState> for StateLabel {
    fn from(state: DagRunState) -> Self {
        StateLabel {
            name: state.as_str(),
        }
    }
}

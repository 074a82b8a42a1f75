//! A task that marks a task of another DAG as depending on it (Airflow's
//! `ExternalTaskMarker`): it runs nothing, but clearing it with its downstream clears that
//! task, and its downstream, in the other DAG's run of the same logical date.

use serde::{Deserialize, Serialize};

/// Airflow's default `logical_date` of a marker: the marker run's own logical date.
pub const DEFAULT_MARKER_LOGICAL_DATE: &str = "{{ logical_date.isoformat() }}";

/// Airflow's default `recursion_depth`.
pub const DEFAULT_RECURSION_DEPTH: u32 = 10;

/// Which task of which DAG a clear follows to. `external_dag_id`, `external_task_id` and
/// `logical_date` are templates, rendered with the marker's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalTaskMarker {
    pub external_dag_id: String,
    pub external_task_id: String,
    /// The logical date of the other DAG's run, once rendered.
    #[serde(default = "default_logical_date")]
    pub logical_date: String,
    /// How many markers deep a clear may follow (at least 1): a clear that would go deeper
    /// is refused, which also stops a cycle of markers.
    #[serde(default = "default_recursion_depth")]
    pub recursion_depth: u32,
}

fn default_logical_date() -> String {
    DEFAULT_MARKER_LOGICAL_DATE.to_owned()
}

fn default_recursion_depth() -> u32 {
    DEFAULT_RECURSION_DEPTH
}

impl ExternalTaskMarker {
    /// `marks <dag>.<task>`, as a task's command is shown.
    pub fn summary(&self) -> String {
        format!("marks {}.{}", self.external_dag_id, self.external_task_id)
    }
}

//! Clears that reach other DAGs through `ExternalTaskMarker`s (Airflow's recursive clear):
//! the task instances a selection's markers add, for the answer and for the clear itself.

use std::collections::BTreeMap;

use updraft_scheduler::{marked_clears, ClearedRun, MarkedClear, MarkerError};
use updraft_store::TaskInstanceRow;

use super::common::dag_graph;
use crate::{RestError, RestState};

/// What the markers among a selection add: the rows to answer and the clears to make.
#[derive(Default)]
pub(super) struct Marked {
    pub(super) rows: Vec<TaskInstanceRow>,
    pub(super) clears: Vec<MarkedClear>,
}

/// The other DAGs' task instances that the markers among `selected` reach. A marker whose
/// recursion goes too deep, or whose fields do not render, refuses the clear (400).
pub(super) async fn marked(
    state: &RestState,
    selected: &[TaskInstanceRow],
) -> Result<Marked, RestError> {
    let mut by_run: BTreeMap<i64, (i64, Vec<String>)> = BTreeMap::new();
    for row in selected {
        let entry = by_run
            .entry(row.ti.dag_run_id)
            .or_insert_with(|| (row.dag_version, Vec::new()));
        if !entry.1.contains(&row.ti.task_id) {
            entry.1.push(row.ti.task_id.clone());
        }
    }
    let mut runs = Vec::new();
    for (run_id, (version, task_ids)) in by_run {
        let Some(first) = selected.iter().find(|r| r.ti.dag_run_id == run_id) else {
            continue;
        };
        let graph = dag_graph(state, &first.ti.dag_id, version).await?;
        let has_marker = task_ids.iter().any(|t| {
            graph.dag.task(t).is_some_and(|t| {
                matches!(t.operator, updraft_model::Operator::ExternalTaskMarker(_))
            })
        });
        if !has_marker {
            continue;
        }
        let run = state.store().get_dag_run_by_id(run_id).await?;
        runs.push((graph, run, task_ids));
    }
    if runs.is_empty() {
        return Ok(Marked::default());
    }
    let cleared: Vec<ClearedRun<'_>> = runs
        .iter()
        .map(|(graph, run, task_ids)| ClearedRun {
            dag: &graph.dag,
            run,
            task_ids,
        })
        .collect();
    let clears = marked_clears(state.store().as_ref(), &cleared)
        .await
        .map_err(|e| match e {
            MarkerError::Store(e) => e.into(),
            other => RestError::bad_request(other.to_string()),
        })?;
    let mut rows = Vec::new();
    for clear in &clears {
        for ti in state.store().task_instances(clear.run.id).await? {
            if clear.task_ids.contains(&ti.task_id) {
                rows.push(TaskInstanceRow {
                    ti,
                    logical_date: clear.run.logical_date,
                    dag_version: clear.run.dag_version,
                });
            }
        }
    }
    Ok(Marked { rows, clears })
}

//! What a clear reaches through `ExternalTaskMarker`s (Airflow's recursive clear): a cleared
//! marker clears its external task, with that task's downstream, in the external DAG's runs
//! of the rendered logical date; markers among those are followed in turn, at most the
//! first marker's `recursion_depth` hops deep. Shared by the REST API's clears (and so the
//! UI's) and `tasks clear`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use updraft_model::{setup_teardown, Dag, ExternalTaskMarker, Operator};
use updraft_store::{DagRun, Store, StoreError};
use updraft_template::Renderer;

/// Task instances of one run that a clear takes along.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkedClear {
    pub run: DagRun,
    /// The external task and its downstream (with their setups and teardowns), in the
    /// definition of the run's version.
    pub task_ids: Vec<String>,
}

/// Why the markers of a clear cannot be followed; the clear is refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// More hops than the first marker's `recursion_depth` (Airflow's message).
    #[error(
        "Maximum recursion depth {depth} reached for ExternalTaskMarker {task_id}. Attempted \
         to clear too many tasks or there may be a cyclic dependency."
    )]
    TooDeep { depth: u32, task_id: String },
    /// A templated field of a marker did not render, or is not what it must be.
    #[error("ExternalTaskMarker {task_id} of DAG {dag_id}: {message}")]
    Field {
        dag_id: String,
        task_id: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One run's selected tasks whose markers a clear follows.
pub struct ClearedRun<'a> {
    pub dag: &'a Dag,
    pub run: &'a DagRun,
    pub task_ids: &'a [String],
}

/// Every other DAG's task instances that the markers among `cleared` reach, recursively,
/// each run once, in the order they are found. Runs of the cleared selection itself are not
/// repeated.
pub async fn marked_clears(
    store: &dyn Store,
    cleared: &[ClearedRun<'_>],
) -> Result<Vec<MarkedClear>, MarkerError> {
    let renderer = Renderer::new();
    let mut max_depth: Option<u32> = None;
    let mut visited: HashSet<(String, String, String)> = HashSet::new();
    let mut found: Vec<MarkedClear> = Vec::new();
    // (dag definition, run, tasks, depth): the level the markers are in.
    let mut level: Vec<(Arc<Dag>, DagRun, Vec<String>)> = cleared
        .iter()
        .map(|c| (Arc::new(c.dag.clone()), c.run.clone(), c.task_ids.to_vec()))
        .collect();
    let mut depth: u32 = 0;
    while !level.is_empty() {
        let mut next = Vec::new();
        for (dag, run, task_ids) in &level {
            for task_id in task_ids {
                let Some(task) = dag.task(task_id) else {
                    continue;
                };
                let Operator::ExternalTaskMarker(marker) = &task.operator else {
                    continue;
                };
                let limit = *max_depth.get_or_insert(marker.recursion_depth);
                if depth + 1 > limit {
                    return Err(MarkerError::TooDeep {
                        depth: limit,
                        task_id: task_id.clone(),
                    });
                }
                let target = render_marker(&renderer, dag, task, marker, run)?;
                for external in store.list_dag_runs(&target.dag_id).await? {
                    if external.logical_date != target.logical_date {
                        continue;
                    }
                    let key = (
                        external.dag_id.clone(),
                        external.run_id.clone(),
                        target.task_id.clone(),
                    );
                    if !visited.insert(key) {
                        continue;
                    }
                    let external_dag = store
                        .get_dag_version(&external.dag_id, external.dag_version)
                        .await?;
                    if external_dag.task(&target.task_id).is_none() {
                        continue;
                    }
                    let selection = setup_teardown::clear_selection(
                        &external_dag,
                        std::slice::from_ref(&target.task_id),
                        false,
                        true,
                    );
                    merge(&mut found, &external, &selection);
                    next.push((external_dag, external, selection));
                }
            }
        }
        level = next;
        depth += 1;
    }
    Ok(found)
}

/// Adds `task_ids` of `run` to `found`, into the entry of that run when there is one.
fn merge(found: &mut Vec<MarkedClear>, run: &DagRun, task_ids: &[String]) {
    match found.iter_mut().find(|f| f.run.id == run.id) {
        Some(entry) => {
            let mut all: BTreeSet<String> = entry.task_ids.drain(..).collect();
            all.extend(task_ids.iter().cloned());
            entry.task_ids = all.into_iter().collect();
        }
        None => found.push(MarkedClear {
            run: run.clone(),
            task_ids: task_ids.to_vec(),
        }),
    }
}

/// A marker's fields rendered with its run.
struct Target {
    dag_id: String,
    task_id: String,
    logical_date: chrono::DateTime<chrono::Utc>,
}

fn render_marker(
    renderer: &Renderer,
    dag: &Dag,
    task: &updraft_model::Task,
    marker: &ExternalTaskMarker,
    run: &DagRun,
) -> Result<Target, MarkerError> {
    let field_error = |message: String| MarkerError::Field {
        dag_id: dag.dag_id.clone(),
        task_id: task.task_id.clone(),
        message,
    };
    let ctx = crate::run_context::run_context(dag, task, run);
    let render = |field: &str, template: &str| {
        renderer
            .render(template, &ctx)
            .map_err(|e| field_error(format!("cannot render {field}: {e}")))
    };
    let dag_id = render("external_dag_id", &marker.external_dag_id)?;
    let task_id = render("external_task_id", &marker.external_task_id)?;
    let date = render("logical_date", &marker.logical_date)?;
    let logical_date = updraft_model::trigger_dag_run::parse_instant(&date)
        .ok_or_else(|| field_error(format!("logical_date {date:?} is not a date or a time")))?;
    Ok(Target {
        dag_id,
        task_id,
        logical_date,
    })
}

//! The template context the scheduler renders a task's fields with when it decides the task
//! itself (an `ExternalTaskMarker` followed by a clear, an `ExternalTaskSensor`'s poke): the
//! run's dates, ids, conf and params, without variables, connections or XComs.

use updraft_model::{Dag, Task};
use updraft_store::DagRun;
use updraft_template::TemplateContext;

pub(crate) fn run_context(dag: &Dag, task: &Task, run: &DagRun) -> TemplateContext {
    TemplateContext {
        dag_id: dag.dag_id.clone(),
        run_id: run.run_id.clone(),
        task_id: task.task_id.clone(),
        try_number: 0,
        map_index: -1,
        run_type: run.run_type.to_string(),
        logical_date: run.logical_date,
        data_interval_start: run.data_interval_start,
        data_interval_end: run.data_interval_end,
        conf: run.conf.clone(),
        dag_params: dag.param_defaults(),
        task: serde_json::to_value(task).unwrap_or_default(),
        variables: Default::default(),
        xcoms: Default::default(),
        connections: Default::default(),
        triggering_asset_events: serde_json::Value::Object(Default::default()),
    }
}

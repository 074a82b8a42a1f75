//! The context a try's templates are rendered with: Airflow's template variables, with XComs,
//! variables and connections loaded only when a template mentions them, and the secrets the
//! log must mask.

use updraft_model::{Dag, Task};
use updraft_store::ClaimedTask;
use updraft_template::{
    is_template, needs_connections, needs_variables, needs_xcoms, TemplateContext,
};

use super::super::LocalWorker;
use updraft_secrets::Masker;

impl LocalWorker {
    /// `t` rendered with `ctx`; an error names the field (`what`) that did not render.
    pub(in crate::local) fn render_field(
        &self,
        ctx: &TemplateContext,
        what: &str,
        t: &str,
    ) -> Result<String, String> {
        self.renderer
            .render(t, ctx)
            .map_err(|e| format!("cannot render {what}: {e}"))
    }

    /// The template context of `claimed`'s try of `task`, for the operator's own templates
    /// (`templates`) and the task's `env` and `cwd`, and the masker for the secrets it read.
    pub(in crate::local) async fn template_context<'a>(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &'a Task,
        templates: impl Iterator<Item = &'a str>,
    ) -> Result<(TemplateContext, Option<Masker>), String> {
        let ti = &claimed.ti;
        let run = &claimed.dag_run;
        let templates = templates
            .chain(task.env.values().map(String::as_str))
            .chain(task.cwd.as_deref());
        let (mut any_template, mut want_xcoms, mut want_vars, mut want_conns) =
            (false, false, false, false);
        for t in templates {
            any_template |= is_template(t);
            want_xcoms |= needs_xcoms(t);
            want_vars |= needs_variables(t);
            want_conns |= needs_connections(t);
        }
        let mut ctx = TemplateContext {
            dag_id: ti.dag_id.clone(),
            run_id: ti.run_id.clone(),
            task_id: ti.task_id.clone(),
            try_number: ti.try_number,
            map_index: ti.map_index,
            run_type: run.run_type.to_string(),
            logical_date: run.logical_date,
            data_interval_start: run.data_interval_start,
            data_interval_end: run.data_interval_end,
            conf: run.conf.clone(),
            dag_params: dag.param_defaults(),
            // Only a template can read it; most commands have none, and this is per try.
            task: if any_template {
                serde_json::to_value(task).unwrap_or_default()
            } else {
                serde_json::Value::Null
            },
            variables: Default::default(),
            xcoms: Default::default(),
            connections: Default::default(),
            triggering_asset_events: serde_json::Value::Object(Default::default()),
        };
        if run.run_type == updraft_model::RunType::AssetTriggered {
            let events = self
                .execution
                .triggering_asset_events(run.id)
                .await
                .map_err(|e| e.to_string())?;
            ctx.triggering_asset_events = updraft_store::triggering_events_json(&events);
        }
        if want_xcoms {
            let xcoms = self
                .execution
                .xcoms_for_run(run.id)
                .await
                .map_err(|e| e.to_string())?;
            ctx.xcoms = updraft_store::XCom::as_seen_downstream(xcoms)
                .into_iter()
                .map(|x| ((x.task_id, x.key), x.value))
                .collect();
        }
        if want_vars {
            let vars = self
                .execution
                .variables()
                .await
                .map_err(|e| e.to_string())?;
            ctx.variables = vars.into_iter().collect();
        }
        if want_conns {
            ctx.connections = crate::secrets::template_connections(self.execution.as_ref())
                .await
                .map_err(|e| e.to_string())?;
        }
        let mask = if want_vars || want_conns {
            crate::secrets::log_masker(
                &self.config.sensitive_names,
                &ctx.variables,
                &ctx.connections,
            )
        } else {
            None
        };
        Ok((ctx, mask))
    }
}

//! Preparing a try: the task's templates rendered with Airflow's context (loading XComs,
//! variables and connections only when a template mentions them), and the secrets the log
//! must mask.

use std::path::PathBuf;

use updraft_model::{Dag, Operator, Task};
use updraft_store::ClaimedTask;
use updraft_template::{
    identity_env, is_template, needs_connections, needs_variables, needs_xcoms, TemplateContext,
};

use super::LocalWorker;
use crate::process::TaskLaunch;

impl LocalWorker {
    /// Renders the task's templates. `Ok(None)`: nothing to run (the empty operator).
    pub(super) async fn prepare(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        log_path: PathBuf,
    ) -> Result<Option<TaskLaunch>, String> {
        let Operator::Bash { bash_command } = &task.operator else {
            return Ok(None);
        };
        let ti = &claimed.ti;
        let run = &claimed.dag_run;
        let templates = std::iter::once(bash_command.as_str())
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
        };
        if want_xcoms {
            let xcoms = self
                .execution
                .xcoms_for_run(run.id)
                .await
                .map_err(|e| e.to_string())?;
            ctx.xcoms = xcoms
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
        let render = |what: &str, t: &str| {
            self.renderer
                .render(t, &ctx)
                .map_err(|e| format!("cannot render {what}: {e}"))
        };
        let command = render("bash_command", bash_command)?;
        let mut env = identity_env(&ctx);
        env.push(("UPDRAFT_CLAIM_ID".into(), claimed.claim_id.clone()));
        for (key, value) in &task.env {
            env.push((key.clone(), render(&format!("env {key}"), value)?));
        }
        let cwd = task
            .cwd
            .as_deref()
            .map(|c| render("cwd", c))
            .transpose()?
            .map(PathBuf::from);
        Ok(Some(TaskLaunch {
            command,
            env,
            cwd,
            timeout: task.execution_timeout,
            skip_exit_codes: task.skip_on_exit_code.clone(),
            log_path,
            capture_xcom: task.do_xcom_push,
            kill_grace: self.config.kill_grace,
            direct_exec: self.config.direct_exec,
            mask,
        }))
    }
}

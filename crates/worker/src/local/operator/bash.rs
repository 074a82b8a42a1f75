//! `BashOperator`: the command runs as a process under `bash -c` (or directly when it needs
//! no shell), with the task's rendered `env` and `cwd`.

use std::path::PathBuf;

use updraft_model::{Dag, Task};
use updraft_store::ClaimedTask;
use updraft_template::identity_env;

use super::super::LocalWorker;
use crate::process::TaskLaunch;

impl LocalWorker {
    /// Renders the command and the task's `env` and `cwd` into what the process runs with.
    pub(super) async fn prepare_bash(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        bash_command: &str,
        log_path: PathBuf,
    ) -> Result<TaskLaunch, String> {
        let (ctx, mask) = self
            .template_context(claimed, dag, task, std::iter::once(bash_command))
            .await?;
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);
        let command = render("bash_command", bash_command)?;
        let mut env = identity_env(&ctx);
        env.push(("UPDRAFT_CLAIM_ID".into(), claimed.claim_id.clone()));
        env.extend(self.traceparent(claimed));
        for (key, value) in &task.env {
            env.push((key.clone(), render(&format!("env {key}"), value)?));
        }
        let cwd = task
            .cwd
            .as_deref()
            .map(|c| render("cwd", c))
            .transpose()?
            .map(PathBuf::from);
        Ok(TaskLaunch {
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
            fork_server: None,
        })
    }
}

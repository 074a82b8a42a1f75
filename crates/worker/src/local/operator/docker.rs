//! `DockerOperator`: the try is a `docker run` process under the usual process machinery (its
//! output the log, its exit code the outcome, the last output line the XCom, timeout and cancel
//! killing it), and the container, which the daemon runs outside the process group, is killed by
//! its name whenever the try did not end by itself.

use std::path::PathBuf;

use updraft_model::docker::{container_name, CLAIM_LABEL};
use updraft_model::{AutoRemove, Dag, DockerCommand, DockerRun, Task};
use updraft_store::ClaimedTask;

use super::super::LocalWorker;
use crate::process::{kill_containers, FailureReason, TaskLaunch, TaskOutcome, CLAIM_ID_ENV};

/// A prepared Docker try: the `docker run` process and the container it starts.
pub(in crate::local) struct DockerTry {
    pub launch: TaskLaunch,
    pub container: Container,
    /// The rendered templated fields, as `tasks render` shows them.
    fields: Vec<(String, String)>,
}

/// The container of one try, killed when the try is dropped before [`Container::finish`].
pub(in crate::local) struct Container {
    pub name: String,
    pub docker_url: Option<String>,
    auto_remove: AutoRemove,
    finished: bool,
}

impl Container {
    /// After the `docker run` process ended: a container whose process was stopped (timeout,
    /// cancel, lost) is killed; a successful one is removed under `auto_remove: success`.
    pub async fn finish(mut self, outcome: &TaskOutcome) {
        self.finished = true;
        let exited_by_itself = matches!(
            outcome,
            TaskOutcome::Success { .. }
                | TaskOutcome::Skipped { .. }
                | TaskOutcome::Failed {
                    reason: FailureReason::ExitCode(_)
                }
        );
        let name = self.name.clone();
        let url = self.docker_url.clone();
        let remove = self.auto_remove == AutoRemove::Success
            && matches!(outcome, TaskOutcome::Success { .. });
        let _ = tokio::task::spawn_blocking(move || {
            if !exited_by_itself {
                kill_containers(std::slice::from_ref(&name), url.as_deref());
            }
            if remove {
                let removed = crate::process::docker_cli(url.as_deref())
                    .args(["rm", &name])
                    .output();
                if let Err(e) = removed {
                    tracing::warn!(container = %name, error = %e, "cannot remove the container");
                }
            }
        })
        .await;
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.finished {
            // The try was abandoned mid-run (its future dropped): the container must not run on.
            let name = self.name.clone();
            let url = self.docker_url.clone();
            std::thread::spawn(move || kill_containers(&[name], url.as_deref()));
        }
    }
}

impl DockerTry {
    /// The rendered fields of a try that is not run (so its container needs no kill).
    pub(in crate::local) fn fields(mut self) -> Vec<(String, String)> {
        self.container.finished = true;
        std::mem::take(&mut self.fields)
    }
}

impl LocalWorker {
    /// Renders the image, command and environment into the `docker run` command of the try.
    pub(in crate::local) async fn prepare_docker(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        run: &DockerRun,
        log_path: PathBuf,
    ) -> Result<DockerTry, String> {
        let mut templates: Vec<&str> = vec![&run.image];
        match &run.command {
            Some(DockerCommand::Line(line)) => templates.push(line),
            Some(DockerCommand::Args(args)) => templates.extend(args.iter().map(String::as_str)),
            None => {}
        }
        templates.extend(run.environment.values().map(String::as_str));
        let (ctx, mask) = self
            .template_context(claimed, dag, task, templates.into_iter())
            .await?;
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);
        let image = render("image", &run.image)?;
        let command = match &run.command {
            None => Vec::new(),
            Some(DockerCommand::Line(line)) => {
                let line = render("command", line)?;
                shlex::split(&line)
                    .ok_or_else(|| format!("cannot split the command into words: {line:?}"))?
            }
            Some(DockerCommand::Args(args)) => args
                .iter()
                .map(|a| render("command", a))
                .collect::<Result<_, _>>()?,
        };
        let mut environment = Vec::with_capacity(run.environment.len());
        for (key, value) in &run.environment {
            environment.push((key.clone(), render(&format!("environment {key}"), value)?));
        }
        // The container's code joins the try's span, as a process's does; a task's own
        // TRACEPARENT wins.
        environment.extend(
            self.traceparent(claimed)
                .filter(|(key, _)| !run.environment.contains_key(key)),
        );
        let name = container_name(&claimed.claim_id);
        let mut args: Vec<String> = vec!["docker".into(), "run".into(), "--name".into()];
        args.push(name.clone());
        args.push("--label".into());
        args.push(format!("{CLAIM_LABEL}={}", claimed.claim_id));
        // Which try it is, for whoever lists the daemon's containers.
        let ti = &claimed.ti;
        for (key, value) in [
            ("dag_id", &ti.dag_id),
            ("run_id", &ti.run_id),
            ("task_id", &ti.task_id),
        ] {
            args.push("--label".into());
            args.push(format!("updraft.{key}={value}"));
        }
        if run.auto_remove == AutoRemove::Force {
            args.push("--rm".into());
        }
        for (key, value) in &environment {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        for mount in &run.mounts {
            let mut spec = format!("type={}", mount.r#type);
            if let Some(source) = mount.source.as_deref().filter(|s| !s.is_empty()) {
                spec.push_str(&format!(",source={source}"));
            }
            spec.push_str(&format!(",target={}", mount.target));
            if mount.read_only {
                spec.push_str(",readonly");
            }
            args.push("--mount".into());
            args.push(spec);
        }
        let options = [
            ("--workdir", run.working_dir.as_deref()),
            ("--user", run.user.as_deref()),
            ("--network", run.network_mode.as_deref()),
            ("--memory", run.mem_limit.as_deref()),
        ];
        for (flag, value) in options {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                args.push(flag.into());
                args.push(value.into());
            }
        }
        if let Some(cpus) = &run.cpus {
            let shares = cpus
                .parse::<f64>()
                .map_err(|_| format!("`cpus` is not a number: {cpus}"))?;
            args.push("--cpu-shares".into());
            args.push(((shares * 1024.0).round() as u64).to_string());
        }
        if run.privileged {
            args.push("--privileged".into());
        }
        args.push("--".into());
        args.push(image.clone());
        args.extend(command.iter().cloned());
        let quoted = shlex::try_join(args.iter().map(String::as_str))
            .map_err(|e| format!("cannot build the docker command: {e}"))?;
        let mut env = vec![(CLAIM_ID_ENV.to_owned(), claimed.claim_id.clone())];
        if let Some(url) = run.docker_url.as_deref().filter(|u| !u.is_empty()) {
            env.push(("DOCKER_HOST".into(), url.to_owned()));
        }
        let fields = vec![
            ("image".to_owned(), image),
            ("command".to_owned(), format!("{command:?}")),
            (
                "environment".to_owned(),
                serde_json::to_string_pretty(
                    &environment
                        .iter()
                        .cloned()
                        .collect::<std::collections::BTreeMap<_, _>>(),
                )
                .unwrap_or_default(),
            ),
        ];
        let fields = match &mask {
            Some(mask) => fields
                .into_iter()
                .map(|(k, v)| (k, mask.mask(&v).into_owned()))
                .collect(),
            None => fields,
        };
        Ok(DockerTry {
            launch: TaskLaunch {
                // The XCom is the last line of the container's stdout. Airflow's is the last
                // line of stdout and stderr together, but the docker CLI copies the two
                // streams apart, so which came last would be a race.
                command: format!("exec {quoted}"),
                env,
                cwd: None,
                timeout: task.execution_timeout,
                skip_exit_codes: task.skip_on_exit_code.clone(),
                log_path,
                capture_xcom: task.do_xcom_push,
                kill_grace: self.config.kill_grace,
                direct_exec: false,
                mask,
                fork_server: None,
            },
            container: Container {
                name,
                docker_url: run.docker_url.clone(),
                auto_remove: run.auto_remove,
                finished: false,
            },
            fields,
        })
    }
}

//! Python tasks (`operator: python`): the try runs `python3 -m updraft._run` under the same
//! process machinery as a bash task (process group, timeout, kill, log), with the DAG file's
//! source at the run's pinned version written to a private directory, and a Unix socket on
//! which the child asks for its context, XComs, variables and connections and reports how
//! it ended (`docs/python-protocol.md`; served by `supervisor`).

mod pinned;
mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use updraft_model::{Dag, Task};
use updraft_store::ClaimedTask;
use updraft_template::identity_env;

use super::super::LocalWorker;
use crate::process::{ForkLaunch, ForkServer, Preload, TaskLaunch};
pub(in crate::local) use pinned::PinnedFiles;
pub(in crate::local) use supervisor::{FinishState, Supervisor};

/// The environment variable naming the socket the child talks to.
pub const SUPERVISOR_ENV: &str = "UPDRAFT_SUPERVISOR";

/// A Python try ready to start: the process, and the socket server it will talk to.
pub(in crate::local) struct PythonTry {
    pub launch: TaskLaunch,
    pub supervisor: Supervisor,
}

impl LocalWorker {
    /// Writes the pinned DAG source, binds the try's socket and builds the process.
    pub(super) async fn prepare_python(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        python_executable: Option<&str>,
        log_path: PathBuf,
    ) -> Result<PythonTry, String> {
        self.prepare_python_try(claimed, dag, task, python_executable, log_path, false)
            .await
    }

    /// As [`Self::prepare_python`]; with `render_only` the SDK renders the task's templated
    /// fields and reports them in its `finish` instead of calling the task (`tasks render`).
    pub(in crate::local) async fn prepare_python_try(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        python_executable: Option<&str>,
        log_path: PathBuf,
        render_only: bool,
    ) -> Result<PythonTry, String> {
        let sdk = self
            .config
            .python_sdk
            .as_deref()
            .ok_or("Python tasks need the Python SDK, and this updraft was built without it")?;
        let ti = &claimed.ti;
        let pinned = self
            .pinned_files
            .get(
                self.execution.as_ref(),
                &ti.dag_id,
                claimed.dag_run.dag_version,
            )
            .await?;
        let (ctx, _) = self
            .template_context(claimed, dag, task, std::iter::empty())
            .await?;
        // The callable may read any variable or connection (no template tells which), so
        // the log masks every secret one of them holds, as Airflow's does.
        let variables = self
            .execution
            .variables()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let connections = crate::secrets::template_connections(self.execution.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let mask =
            crate::secrets::log_masker(&self.config.sensitive_names, &variables, &connections);
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);

        // The try's own directory holds the socket it talks to the worker on.
        let dir = tempfile::Builder::new()
            .prefix("updraft-py-")
            .tempdir()
            .map_err(|e| format!("cannot create the task's temporary directory: {e}"))?;
        let dag_file = pinned.dag_file.as_path();
        let source_dir = pinned.dir();

        // The folder the DAG file came from, where it is on this machine: template files
        // named relative to the DAG file are looked up there too (Airflow's search path).
        let dag_folder = pinned.fileloc.parent().filter(|p| p.is_dir());
        let mut context = supervisor::context_json(claimed, dag, &ctx, dag_file, dag_folder);
        if render_only {
            context["render_only"] = serde_json::Value::Bool(true);
        }
        if !task.dependencies.is_empty() {
            // Sent with the context, a `@task`'s arguments cost the child no round trip.
            context["upstream_xcoms"] = self.upstream_xcoms(claimed, task).await?;
        }
        if let Some(arguments) = self.mapped_arguments(claimed, task).await? {
            context["map_kwargs"] = serde_json::Value::Object(arguments);
        }
        let socket = dir.path().join("supervisor.sock");
        let supervisor = Supervisor::start(
            &socket,
            dir,
            context,
            self.execution.clone(),
            claimed.clone(),
        )?;

        let mut env = identity_env(&ctx);
        // What differs between tries (and the task's own variables, which Airflow gives its
        // operators' commands, never the process that parses the DAG file).
        let mut per_try_env: Vec<String> = env.iter().map(|(key, _)| key.clone()).collect();
        per_try_env.extend([
            crate::process::CLAIM_ID_ENV.to_owned(),
            SUPERVISOR_ENV.to_owned(),
            updraft_telemetry::TRACEPARENT_ENV.to_owned(),
        ]);
        per_try_env.extend(task.env.keys().cloned());
        env.push((
            crate::process::CLAIM_ID_ENV.into(),
            claimed.claim_id.clone(),
        ));
        env.extend(self.traceparent(claimed));
        // Modules next to the DAG file in the folder it came from still import, where the
        // folder is on this machine.
        let mut python_path: Vec<&Path> = vec![sdk, source_dir];
        if let Some(folder) = dag_folder {
            python_path.push(folder);
        }
        env.push(("PYTHONPATH".into(), join_paths(&python_path)));
        env.push((SUPERVISOR_ENV.into(), socket.display().to_string()));
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        env.push((
            "PYTHONPYCACHEPREFIX".into(),
            sdk.join("__pycache__").display().to_string(),
        ));
        for (key, value) in &task.env {
            env.push((key.clone(), render(&format!("env {key}"), value)?));
        }
        let cwd = task
            .cwd
            .as_deref()
            .map(|c| render("cwd", c))
            .transpose()?
            .map(PathBuf::from);
        // A task that sets its own PATH chooses its `python3` there, as before.
        let own_path = task.env.iter().any(|(key, _)| key == "PATH");
        let (interpreter, fork_server) = match python_executable {
            Some(named) => (named, None),
            None if own_path => (self.config.python_interpreter.as_str(), None),
            None => {
                let interpreter = self.default_python().await;
                let launch = self.fork_server(interpreter, sdk).map(|server| ForkLaunch {
                    server,
                    preload: Some(Preload {
                        dag_file: dag_file.to_path_buf(),
                        per_try_env,
                    }),
                });
                (interpreter, launch)
            }
        };
        Ok(PythonTry {
            launch: TaskLaunch {
                command: format!("{} -m updraft._run", shell_quote(interpreter)),
                env,
                cwd,
                timeout: task.execution_timeout,
                skip_exit_codes: Vec::new(),
                log_path,
                capture_xcom: false,
                kill_grace: self.config.kill_grace,
                direct_exec: self.config.direct_exec,
                mask,
                fork_server,
            },
            supervisor,
        })
    }
}

impl LocalWorker {
    /// What the task's direct upstream tasks pushed, as a task downstream sees it (a mapped
    /// task's values as one list): `{task_id: {key: value}}`, with every upstream task there.
    async fn upstream_xcoms(
        &self,
        claimed: &ClaimedTask,
        task: &Task,
    ) -> Result<serde_json::Value, String> {
        let stored = self
            .execution
            .xcoms_for_run(claimed.dag_run.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut upstream: serde_json::Map<String, serde_json::Value> = task
            .dependencies
            .iter()
            .map(|id| (id.clone(), serde_json::Value::Object(Default::default())))
            .collect();
        for xcom in updraft_store::XCom::as_seen_downstream(stored) {
            if let Some(serde_json::Value::Object(keys)) = upstream.get_mut(&xcom.task_id) {
                keys.insert(xcom.key, xcom.value);
            }
        }
        Ok(serde_json::Value::Object(upstream))
    }

    /// The interpreter of Python tasks that name none. `python3` on PATH is often a launcher
    /// (a pyenv shim is a shell script that looks up a version and then execs the real
    /// interpreter) that costs several times the interpreter's own start on every try, so the
    /// interpreter is asked once where it really is. When that fails the name is used as it
    /// is, and the try's own start reports the problem.
    async fn default_python(&self) -> &str {
        let configured = &self.config.python_interpreter;
        self.python_resolved
            .get_or_init(|| async move {
                match real_interpreter(configured).await {
                    Some(real) => {
                        tracing::info!(configured = %configured, real = %real, "Python interpreter resolved");
                        real
                    }
                    None => configured.clone(),
                }
            })
            .await
    }
}

impl LocalWorker {
    /// The fork server of the default interpreter, when it is used: it forks only a resolved
    /// interpreter (an absolute path), whose tries it can start as they would start.
    fn fork_server(&self, interpreter: &str, sdk: &Path) -> Option<Arc<ForkServer>> {
        if !self.config.python_fork_server || !Path::new(interpreter).is_absolute() {
            return None;
        }
        let server = self
            .fork_server
            .get_or_init(|| Arc::new(ForkServer::new(interpreter, sdk)));
        Some(server.clone())
    }
}

/// Where `interpreter`'s `sys.executable` is, when it starts and says an absolute path.
async fn real_interpreter(interpreter: &str) -> Option<String> {
    let output = tokio::process::Command::new(interpreter)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| tracing::warn!(interpreter, error = %e, "cannot start the Python interpreter"))
        .ok()?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && Path::new(&path).is_absolute()).then_some(path)
}

fn join_paths(paths: &[&Path]) -> String {
    let inherited = std::env::var_os("PYTHONPATH");
    let all = paths
        .iter()
        .map(|p| p.to_path_buf())
        .chain(inherited.iter().flat_map(std::env::split_paths));
    std::env::join_paths(all)
        .map(|joined| joined.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `word` as one shell word: as it is when it needs no quoting (so that a plain interpreter
/// path starts without a shell), else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{real_interpreter, shell_quote};

    /// The real interpreter answers its own path (it is no launcher); a missing one answers
    /// nothing, so that the try's own start reports it.
    #[tokio::test]
    async fn the_default_interpreter_is_resolved_to_the_real_one() {
        let real = real_interpreter("python3")
            .await
            .expect("python3 on PATH starts and names its interpreter");
        assert!(Path::new(&real).is_absolute(), "{real}");
        assert_eq!(
            real_interpreter(&real).await.as_deref(),
            Some(real.as_str())
        );
        assert_eq!(real_interpreter("/nonexistent/bin/python3").await, None);
    }

    #[test]
    fn interpreters_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("python3"), "python3");
        assert_eq!(
            shell_quote("/opt/venv/bin/python3.12"),
            "/opt/venv/bin/python3.12"
        );
        assert_eq!(shell_quote("/my env/python"), "'/my env/python'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

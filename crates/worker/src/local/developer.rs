//! The developer verbs' part of the worker (`tasks test`, `tasks render`): one try of one task
//! prepared exactly as a claimed try is, then run in the calling process with its log copied
//! to the terminal as it grows, or only rendered. Outside any scheduler: the try is no task
//! instance, and nothing of it is written to the store (see [`ReadOnlyExecution`]).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use updraft_model::{Dag, Operator, TaskState};
use updraft_store::{
    ClaimRequest, ClaimedTask, ConnectionRecord, DagRun, DagSource, FinishReport, JobHeartbeat,
    LogAppend, LogChunk, StoreError, TaskExecution, TaskInstance, TransitionResult,
    TriggerDagRunOutcome, TriggerDagRunRequest, XCom,
};

use super::operator::{FinishState, HttpOutcome, TriggerOutcome, Work};
use super::LocalWorker;
use crate::process::{run_task_guarded, TaskOutcome};

/// How often the log of a running test try is copied to the terminal.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// One task of one run, to test or render.
#[derive(Debug, Clone)]
pub struct TaskTry {
    pub dag: Arc<Dag>,
    pub task_id: String,
    /// The run whose context the try sees: an existing run (its XComs are read), or one made
    /// up for the date (id 0, no XComs).
    pub run: DagRun,
    /// Added to the task's environment (Airflow's `--env-vars`).
    pub env: Vec<(String, String)>,
    /// The instance of a mapped task (Airflow's `--map-index`); -1 for an unmapped task.
    pub map_index: i64,
}

/// How a test try ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub state: TaskState,
    /// What the try would have stored as its return value.
    pub xcom: Option<serde_json::Value>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl TaskTry {
    fn claimed(&self) -> Result<ClaimedTask, String> {
        let task = self.dag.task(&self.task_id).ok_or_else(|| {
            format!(
                "task {:?} not found in DAG {:?}",
                self.task_id, self.dag.dag_id
            )
        })?;
        let claim_id = format!("test-{}", std::process::id());
        Ok(ClaimedTask {
            ti: TaskInstance {
                id: 0,
                dag_run_id: self.run.id,
                dag_id: self.dag.dag_id.clone(),
                run_id: self.run.run_id.clone(),
                task_id: self.task_id.clone(),
                map_index: self.map_index,
                try_number: 1,
                state: TaskState::Running,
                queue: task.queue.clone(),
                pool: task.pool.clone(),
                priority_weight: task.priority_weight,
                hostname: None,
                worker_id: None,
                claim_id: Some(claim_id.clone()),
                lease_until: None,
                queued_at: None,
                start_date: Some(Utc::now()),
                end_date: None,
                next_retry_at: None,
                infra_failures: 0,
                note: None,
            },
            claim_id,
            dag_run: self.run.clone(),
        })
    }
}

impl LocalWorker {
    /// Runs `try_` once, writing its log to `log_path` and, as it grows, to `terminal`.
    /// `Err` is why it could not start (the template error, say), which is also logged.
    pub async fn test_try(
        &self,
        try_: &TaskTry,
        log_path: PathBuf,
        terminal: &mut (dyn Write + Send),
    ) -> TestOutcome {
        let failed = |error: String| TestOutcome {
            state: TaskState::Failed,
            xcom: None,
            error: Some(error),
        };
        let claimed = match try_.claimed() {
            Ok(claimed) => claimed,
            Err(e) => return failed(e),
        };
        let Some(task) = try_.dag.task(&try_.task_id) else {
            return failed(format!("task {:?} not found", try_.task_id));
        };
        let work = match self
            .prepare(&claimed, &try_.dag, task, log_path.clone())
            .await
        {
            Ok(work) => work,
            Err(message) => return failed(message),
        };
        let mut container = None;
        let (mut launch, supervisor) = match work {
            Work::Docker(prepared) => {
                let prepared = *prepared;
                container = Some(prepared.container);
                (prepared.launch, None)
            }
            Work::Nothing => {
                return TestOutcome {
                    state: TaskState::Success,
                    xcom: None,
                    error: None,
                }
            }
            Work::Process(launch) => (*launch, None),
            // One poke: `tasks test` does not wait.
            Work::File(poke) => {
                return match poke.poke() {
                    Some(_) => TestOutcome {
                        state: TaskState::Success,
                        xcom: None,
                        error: None,
                    },
                    None => failed(format!("the sensor found nothing at {}", poke.pattern)),
                }
            }
            Work::Python(prepared) => (prepared.launch, Some(prepared.supervisor)),
            Work::Http(call) => {
                let (_never_cancelled, cancel) = watch::channel(false);
                let outcome = call.run(&log_path, task.execution_timeout, cancel).await;
                LogFollower::new(log_path).copy_new(terminal);
                return match outcome {
                    HttpOutcome::Success(xcom) => TestOutcome {
                        state: TaskState::Success,
                        xcom: xcom.filter(|_| task.do_xcom_push),
                        error: None,
                    },
                    HttpOutcome::Failed(why) | HttpOutcome::Refused(_, why) => failed(why),
                    HttpOutcome::TimedOut(limit) => failed(format!("timed out after {limit:?}")),
                    HttpOutcome::Cancelled => failed("cancelled".into()),
                };
            }
            Work::Trigger(prepared) => {
                let (_never_cancelled, cancel) = watch::channel(false);
                let end = self
                    .run_trigger(*prepared, &log_path, task.execution_timeout, cancel)
                    .await;
                LogFollower::new(log_path).copy_new(terminal);
                let state = |state| TestOutcome {
                    state,
                    xcom: None,
                    error: None,
                };
                return match end.outcome {
                    TriggerOutcome::Success => state(TaskState::Success),
                    TriggerOutcome::Skipped => state(TaskState::Skipped),
                    TriggerOutcome::Failed(why) | TriggerOutcome::FailedForGood(why) => failed(why),
                    TriggerOutcome::TimedOut(limit) => failed(format!("timed out after {limit:?}")),
                    TriggerOutcome::Cancelled => failed("cancelled".into()),
                };
            }
        };
        launch.env.extend(try_.env.iter().cloned());
        let (_never_cancelled, cancel) = watch::channel(false);
        let running = run_task_guarded(launch, cancel, self.reaper.as_ref());
        tokio::pin!(running);
        let mut follower = LogFollower::new(log_path);
        let outcome = loop {
            tokio::select! {
                outcome = &mut running => break outcome,
                _ = tokio::time::sleep(FOLLOW_INTERVAL) => follower.copy_new(terminal),
            }
        };
        follower.copy_new(terminal);
        if let Some(container) = container {
            container.finish(&outcome).await;
        }
        match (outcome, supervisor.map(|s| s.finish().0)) {
            (TaskOutcome::Failed { reason }, _) => failed(reason.to_string()),
            (_, Some(None)) => {
                failed("the Python process exited without reporting how the task ended".into())
            }
            (_, Some(Some(finish))) if !finish.sensor_done => {
                failed("the sensor's poke found nothing".into())
            }
            (_, Some(Some(finish))) => TestOutcome {
                state: match finish.state {
                    FinishState::Success => TaskState::Success,
                    FinishState::Skipped => TaskState::Skipped,
                    FinishState::Failed => TaskState::Failed,
                },
                xcom: finish.return_value.filter(|_| task.do_xcom_push),
                error: finish.error,
            },
            (TaskOutcome::Success { xcom }, None) => TestOutcome {
                state: TaskState::Success,
                xcom: xcom
                    .filter(|_| task.do_xcom_push)
                    .map(serde_json::Value::String),
                error: None,
            },
            (TaskOutcome::Skipped { exit_code }, None) => TestOutcome {
                state: TaskState::Skipped,
                xcom: None,
                error: Some(format!("exited with skip code {exit_code}")),
            },
        }
    }

    /// The templated fields of `try_`'s task, rendered as its try would render them, in
    /// Airflow's order for the operator: `bash_command`, `env`, `cwd` for a bash task; a
    /// Python task's own (`templates_dict`, `op_args`, `op_kwargs`, ...) rendered by the SDK.
    pub async fn render_fields(&self, try_: &TaskTry) -> Result<Vec<(String, String)>, String> {
        let claimed = try_.claimed()?;
        let Some(task) = try_.dag.task(&try_.task_id) else {
            return Err(format!("task {:?} not found", try_.task_id));
        };
        // A mapped bash instance renders its own command and environment.
        let mapped = self.mapped_bash_task(&claimed, task).await?;
        let task = mapped.as_ref().unwrap_or(task);
        let command = match &task.operator {
            Operator::Bash { bash_command } => bash_command.as_str(),
            Operator::Python {
                python_executable, ..
            } => {
                return self
                    .render_python(&claimed, try_, python_executable.as_deref())
                    .await
            }
            Operator::Empty => return Ok(Vec::new()),
            Operator::TriggerDagRun(trigger) => {
                return Ok(self
                    .prepare_trigger(&claimed, &try_.dag, task, trigger)
                    .await?
                    .fields())
            }
            Operator::ExternalTaskMarker(marker) => {
                let (ctx, _) = self
                    .template_context(
                        &claimed,
                        &try_.dag,
                        task,
                        [
                            marker.external_dag_id.as_str(),
                            marker.external_task_id.as_str(),
                            marker.logical_date.as_str(),
                        ]
                        .into_iter(),
                    )
                    .await?;
                return [
                    ("external_dag_id", &marker.external_dag_id),
                    ("external_task_id", &marker.external_task_id),
                    ("logical_date", &marker.logical_date),
                ]
                .into_iter()
                .map(|(field, t)| Ok((field.to_owned(), self.render_field(&ctx, field, t)?)))
                .collect();
            }
            Operator::Http(call) => {
                return Ok(self
                    .prepare_http(&claimed, &try_.dag, task, call)
                    .await?
                    .fields())
            }
            Operator::FileSensor(wait) => {
                let poke = self
                    .prepare_file_sensor(&claimed, &try_.dag, task, wait)
                    .await?;
                return Ok(vec![("filepath".to_string(), poke.pattern)]);
            }
            Operator::TimeDeltaSensor { .. }
            | Operator::TimeSensor { .. }
            | Operator::DateTimeSensor { .. }
            | Operator::ExternalTaskSensor(_) => return Ok(Vec::new()),
            Operator::Docker(run) => {
                let log_path = std::env::temp_dir().join("updraft-render.log");
                return Ok(self
                    .prepare_docker(&claimed, &try_.dag, task, run, log_path)
                    .await?
                    .fields());
            }
        };
        let (ctx, mask) = self
            .template_context(&claimed, &try_.dag, task, std::iter::once(command))
            .await?;
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);
        let mut fields = vec![("bash_command".to_string(), render("bash_command", command)?)];
        let mut env = serde_json::Map::new();
        for (key, value) in &task.env {
            env.insert(key.clone(), render(&format!("env {key}"), value)?.into());
        }
        let env = if env.is_empty() {
            "None".to_string()
        } else {
            serde_json::to_string_pretty(&env).unwrap_or_default()
        };
        fields.push(("env".to_string(), env));
        let cwd = match &task.cwd {
            Some(cwd) => render("cwd", cwd)?,
            None => "None".to_string(),
        };
        fields.push(("cwd".to_string(), cwd));
        // What the log would mask, the rendering does too.
        if let Some(mask) = mask {
            for (_, value) in &mut fields {
                *value = mask.mask(value).into_owned();
            }
        }
        Ok(fields)
    }
}

impl LocalWorker {
    /// Starts the Python task with `render_only`: the SDK loads the DAG file, renders the
    /// task's templated fields and reports them instead of calling the task.
    async fn render_python(
        &self,
        claimed: &ClaimedTask,
        try_: &TaskTry,
        python_executable: Option<&str>,
    ) -> Result<Vec<(String, String)>, String> {
        let Some(task) = try_.dag.task(&try_.task_id) else {
            return Err(format!("task {:?} not found", try_.task_id));
        };
        let log = tempfile::Builder::new()
            .prefix("updraft-render-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let log_path = log.path().join("render.log");
        let prepared = self
            .prepare_python_try(
                claimed,
                &try_.dag,
                task,
                python_executable,
                log_path.clone(),
                true,
            )
            .await?;
        let (_never_cancelled, cancel) = watch::channel(false);
        let outcome = run_task_guarded(prepared.launch, cancel, self.reaper.as_ref()).await;
        let (finish, _) = prepared.supervisor.finish();
        let why = || {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            format!("the task's fields could not be rendered:\n{log}")
        };
        match (outcome, finish) {
            (TaskOutcome::Success { .. }, Some(finish)) if finish.state == FinishState::Success => {
                Ok(finish
                    .rendered
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(field, value)| {
                        let text = match value {
                            serde_json::Value::String(s) => s,
                            serde_json::Value::Null => "None".to_string(),
                            other => other.to_string(),
                        };
                        (field, text)
                    })
                    .collect())
            }
            _ => Err(why()),
        }
    }
}

/// Copies what a log file gained since the last call.
struct LogFollower {
    path: PathBuf,
    offset: u64,
}

impl LogFollower {
    fn new(path: PathBuf) -> Self {
        LogFollower { path, offset: 0 }
    }

    fn copy_new(&mut self, terminal: &mut (dyn Write + Send)) {
        let Some(new) = read_from(&self.path, self.offset) else {
            return;
        };
        self.offset += new.len() as u64;
        // A terminal that went away must not stop the task.
        let _ = terminal.write_all(&new).and_then(|()| terminal.flush());
    }
}

fn read_from(path: &Path, offset: u64) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut new = Vec::new();
    file.read_to_end(&mut new).ok()?;
    (!new.is_empty()).then_some(new)
}

/// The store as a developer verb's try sees it: it reads the DAG's source, XComs, variables
/// and connections, and may set a variable (the task's own doing, as under Airflow's
/// `tasks test`), but claims, reports and logs nothing.
pub struct ReadOnlyExecution(pub Arc<dyn TaskExecution>);

fn records_nothing<T>() -> Result<T, StoreError> {
    Err(StoreError::Unsupported(
        "recording a try: a test try records nothing".into(),
    ))
}

#[async_trait]
impl TaskExecution for ReadOnlyExecution {
    async fn claim(&self, _request: ClaimRequest) -> Result<Vec<ClaimedTask>, StoreError> {
        records_nothing()
    }
    async fn heartbeat(
        &self,
        _claim_ids: &[String],
        _lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn finish(
        &self,
        _reports: Vec<FinishReport>,
    ) -> Result<Vec<TransitionResult>, StoreError> {
        records_nothing()
    }
    async fn append_log(&self, _chunk: LogChunk) -> Result<LogAppend, StoreError> {
        records_nothing()
    }
    async fn dag_version(&self, dag_id: &str, version: i64) -> Result<Arc<Dag>, StoreError> {
        self.0.dag_version(dag_id, version).await
    }
    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>, StoreError> {
        if dag_run_id == 0 {
            return Ok(Vec::new());
        }
        self.0.xcoms_for_run(dag_run_id).await
    }
    async fn variables(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.0.variables().await
    }
    async fn connections(&self) -> Result<Vec<ConnectionRecord>, StoreError> {
        self.0.connections().await
    }
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<DagSource, StoreError> {
        self.0.dag_source(dag_id, version).await
    }
    async fn set_variable(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0.set_variable(key, value).await
    }
    async fn trigger_dag_run(
        &self,
        _request: TriggerDagRunRequest,
    ) -> Result<TriggerDagRunOutcome, StoreError> {
        Err(StoreError::Unsupported(
            "triggering a DAG run: a test try records nothing".into(),
        ))
    }
    async fn worker_heartbeat(&self, _beat: JobHeartbeat) -> Result<(), StoreError> {
        Ok(())
    }
    fn ships_logs(&self) -> bool {
        false
    }
}

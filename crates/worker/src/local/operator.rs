//! Where each operator kind turns a claimed try into work: one module per kind, behind one
//! exhaustive `match`, so a new `Operator` variant does not compile until it says how it runs.

mod bash;
mod context;
mod docker;
mod file_sensor;
mod http;
pub(crate) use http::{base_url, join_url};
mod mapped;
mod python;
mod trigger_dagrun;
mod try_log;

use std::path::PathBuf;

use updraft_model::{Dag, Operator, Task};
use updraft_store::ClaimedTask;

use super::LocalWorker;
use crate::process::TaskLaunch;

/// What a try of a task amounts to.
pub(super) enum Work {
    /// A process to run.
    Process(Box<TaskLaunch>),
    /// Nothing to run: the try succeeds at once (`EmptyOperator`).
    Nothing,
    /// A Python process and the socket it reports on.
    Python(Box<PythonTry>),
    /// A request the worker makes itself.
    Http(Box<HttpTry>),
    /// A container run by a `docker run` process.
    Docker(Box<DockerTry>),
    /// A file sensor's poke, made by the worker itself.
    File(FilePoke),
    /// A run of another DAG the worker asks the cluster for (and may wait for).
    Trigger(Box<TriggerTry>),
}

pub(super) use docker::DockerTry;
pub(super) use file_sensor::FilePoke;
pub(super) use http::{HttpOutcome, HttpTry};
pub(super) use mapped::result_for_mapping;
pub(super) use python::{FinishState, PinnedFiles, PythonTry};
pub(super) use trigger_dagrun::{TriggerOutcome, TriggerTry};

impl LocalWorker {
    /// Prepares `claimed`'s try of `task`; `Err` is why it cannot start (a template that
    /// does not render, a connection that cannot be read), which fails the try.
    pub(super) async fn prepare(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        log_path: PathBuf,
    ) -> Result<Work, String> {
        if let Some(task) = self.mapped_bash_task(claimed, task).await? {
            let Operator::Bash { bash_command } = &task.operator else {
                return Err("a mapped bash task lost its command".into());
            };
            return self
                .prepare_bash(claimed, dag, &task, bash_command, log_path)
                .await
                .map(|launch| Work::Process(Box::new(launch)));
        }
        match &task.operator {
            Operator::Bash { bash_command } => self
                .prepare_bash(claimed, dag, task, bash_command, log_path)
                .await
                .map(|launch| Work::Process(Box::new(launch))),
            Operator::Empty => Ok(Work::Nothing),
            Operator::Python {
                python_executable, ..
            } => self
                .prepare_python(claimed, dag, task, python_executable.as_deref(), log_path)
                .await
                .map(|prepared| Work::Python(Box::new(prepared))),
            Operator::Http(call) => self
                .prepare_http(claimed, dag, task, call)
                .await
                .map(|prepared| Work::Http(Box::new(prepared))),
            Operator::Docker(run) => self
                .prepare_docker(claimed, dag, task, run, log_path)
                .await
                .map(|prepared| Work::Docker(Box::new(prepared))),
            Operator::FileSensor(wait) => self
                .prepare_file_sensor(claimed, dag, task, wait)
                .await
                .map(Work::File),
            // Never queued: the scheduler decides them (`scheduler::plan`).
            Operator::TimeDeltaSensor { .. }
            | Operator::TimeSensor { .. }
            | Operator::DateTimeSensor { .. }
            | Operator::ExternalTaskSensor(_) => Err(format!(
                "a {} waits in the scheduler, not on a worker",
                task.operator.kind()
            )),
            Operator::TriggerDagRun(trigger) => self
                .prepare_trigger(claimed, dag, task, trigger)
                .await
                .map(|prepared| Work::Trigger(Box::new(prepared))),
            // A marker only matters when it is cleared (the scheduler does not queue it).
            Operator::ExternalTaskMarker(_) => Ok(Work::Nothing),
        }
    }
}

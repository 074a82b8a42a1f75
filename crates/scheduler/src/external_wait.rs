//! Poking the waits on other DAGs (`ExternalTaskSensor`) that the scheduler holds as
//! `deferred`: what each due one finds in the store. The plan turns a verdict into the
//! sensor's next state; a poke reads one DAG's runs of one logical date and their task
//! instances, and costs no process.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tracing::{debug, info};
use updraft_model::external_task_sensor::group_members;
use updraft_model::{Dag, ExternalTarget, ExternalTaskSensor, ExternalVerdict, Task, TaskState};
use updraft_store::{DagRun, DagRunQuery, NewEventLog, StoreError, TaskInstance, TimeRange};
use updraft_template::Renderer;

use crate::kept_states::KeptRun;
use crate::{DagGraph, Scheduler, SchedulerError};

/// Each due external wait's verdict, by task instance id.
pub(crate) type Verdicts = HashMap<i64, ExternalVerdict>;

impl Scheduler {
    /// Pokes the external waits of `run` that are due at `now`, picked from the task
    /// instances this scheduler keeps (only their ids and tasks are copied out of the lock).
    pub(crate) async fn poke_external_waits(
        &self,
        run: &DagRun,
        graph: &DagGraph,
        now: DateTime<Utc>,
    ) -> Result<Verdicts, SchedulerError> {
        let due: Vec<(i64, usize)> = {
            let kept = self.kept();
            let tis = kept.get(&run.id).map(KeptRun::tis).unwrap_or_default();
            due_waits(graph, tis, now).collect()
        };
        let renderer = Renderer::new();
        let mut verdicts = Verdicts::new();
        for (ti_id, i) in due {
            let task = &graph.dag.tasks[i];
            let Some(sensor) = task.operator.external_wait() else {
                continue;
            };
            let verdict = poke(
                self.store.as_ref(),
                &renderer,
                &graph.dag,
                task,
                sensor,
                run,
            )
            .await?;
            debug!(dag_id = %run.dag_id, run_id = %run.run_id, task_id = %task.task_id, ?verdict, "external task sensor poked");
            verdicts.insert(ti_id, verdict);
        }
        Ok(verdicts)
    }

    /// Records why external waits of `run` ended other than by success: in the log and the
    /// event log (a sensor held by the scheduler has no try log).
    pub(crate) async fn record_external_endings(
        &self,
        run: &DagRun,
        endings: &[(String, TaskState, String)],
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        for (task_id, state, message) in endings {
            info!(dag_id = %run.dag_id, run_id = %run.run_id, %task_id, %state, "{message}");
            self.store
                .add_event_log(NewEventLog {
                    when: now,
                    event: format!("external_task_sensor_{state}"),
                    owner: Some("scheduler".into()),
                    dag_id: Some(run.dag_id.clone()),
                    run_id: Some(run.run_id.clone()),
                    task_id: Some(task_id.clone()),
                    logical_date: Some(run.logical_date),
                    extra: Some(serde_json::json!({ "reason": message }).to_string()),
                    ..Default::default()
                })
                .await?;
        }
        Ok(())
    }
}

/// The due waits on other DAGs among `tis`: task instance id and task index.
fn due_waits<'a>(
    graph: &'a DagGraph,
    tis: &'a [TaskInstance],
    now: DateTime<Utc>,
) -> impl Iterator<Item = (i64, usize)> + 'a {
    tis.iter()
        .filter(move |ti| {
            ti.state == TaskState::Deferred && ti.next_retry_at.is_none_or(|at| at <= now)
        })
        .filter_map(|ti| {
            let &i = graph.index.get(&ti.task_id)?;
            graph.dag.tasks[i]
                .operator
                .external_wait()
                .map(|_| (ti.id, i))
        })
}

/// One poke: the other DAG's runs of the target date and, for tasks or a group, their task
/// instances.
async fn poke(
    store: &dyn updraft_store::Store,
    renderer: &Renderer,
    dag: &Dag,
    task: &Task,
    sensor: &ExternalTaskSensor,
    run: &DagRun,
) -> Result<ExternalVerdict, StoreError> {
    let (dag_id, target) = match render_target(renderer, dag, task, sensor, run) {
        Ok(rendered) => rendered,
        Err(message) => return Ok(ExternalVerdict::Failed(message)),
    };
    if sensor.check_existence {
        if let Some(missing) = missing(store, &dag_id, &target).await? {
            return Ok(ExternalVerdict::Failed(missing));
        }
    }
    let date = sensor.target_date(run.logical_date);
    let runs = store
        .query_dag_runs(DagRunQuery {
            dag_ids: Some(vec![dag_id.clone()]),
            logical_date: TimeRange {
                gte: Some(date),
                lte: Some(date),
                ..Default::default()
            },
            ..Default::default()
        })
        .await?
        .items;
    let (task_ids, group_id) = match &target {
        ExternalTarget::Run => {
            let states: Vec<_> = runs.iter().map(|r| r.state).collect();
            return Ok(sensor.judge_runs(&dag_id, &states));
        }
        ExternalTarget::Tasks { task_ids } => (task_ids.as_slice(), None),
        ExternalTarget::Group { group_id } => (&[][..], Some(group_id.as_str())),
    };
    let mut tis: Vec<(String, TaskState)> = Vec::new();
    for external in &runs {
        let instances = store.task_instances(external.id).await?;
        match group_id {
            None => tis.extend(instances.into_iter().map(|ti| (ti.task_id, ti.state))),
            // The group's tasks as the other run's own version has them.
            Some(group_id) => {
                let definition = store
                    .get_dag_version(&external.dag_id, external.dag_version)
                    .await?;
                let members = group_members(&definition.tasks, group_id);
                tis.extend(
                    instances
                        .into_iter()
                        .filter(|ti| members.contains(&ti.task_id.as_str()))
                        .map(|ti| (ti.task_id, ti.state)),
                );
            }
        }
    }
    Ok(match group_id {
        Some(group_id) => {
            let states: Vec<TaskState> = tis.iter().map(|(_, s)| *s).collect();
            sensor.judge_group(&dag_id, group_id, &states)
        }
        None => {
            let tis: Vec<(&str, TaskState)> = tis.iter().map(|(id, s)| (id.as_str(), *s)).collect();
            sensor.judge_tasks(&dag_id, task_ids, &tis)
        }
    })
}

/// The sensor's ids rendered with its run (Airflow templates all of them).
fn render_target(
    renderer: &Renderer,
    dag: &Dag,
    task: &Task,
    sensor: &ExternalTaskSensor,
    run: &DagRun,
) -> Result<(String, ExternalTarget), String> {
    let ctx = crate::run_context::run_context(dag, task, run);
    let render = |field: &str, template: &str| {
        renderer
            .render(template, &ctx)
            .map_err(|e| format!("cannot render {field}: {e}"))
    };
    let dag_id = render("external_dag_id", &sensor.external_dag_id)?;
    let target = match &sensor.target {
        ExternalTarget::Run => ExternalTarget::Run,
        ExternalTarget::Tasks { task_ids } => ExternalTarget::Tasks {
            task_ids: task_ids
                .iter()
                .map(|t| render("external_task_ids", t))
                .collect::<Result<_, _>>()?,
        },
        ExternalTarget::Group { group_id } => ExternalTarget::Group {
            group_id: render("external_task_group_id", group_id)?,
        },
    };
    Ok((dag_id, target))
}

/// What `check_existence` finds missing, in Airflow's words: the DAG, a listed task or the
/// group, in the DAG's current version.
async fn missing(
    store: &dyn updraft_store::Store,
    dag_id: &str,
    target: &ExternalTarget,
) -> Result<Option<String>, StoreError> {
    let record = match store.get_dag(dag_id).await {
        Ok(record) => record,
        Err(StoreError::NotFound(_)) => {
            return Ok(Some(format!("The external DAG {dag_id} does not exist.")))
        }
        Err(e) => return Err(e),
    };
    let definition = store.get_dag_version(dag_id, record.version).await?;
    Ok(match target {
        ExternalTarget::Run => None,
        ExternalTarget::Tasks { task_ids } => task_ids
            .iter()
            .find(|t| definition.task(t).is_none())
            .map(|t| format!("The external task {t} in DAG {dag_id} does not exist.")),
        ExternalTarget::Group { group_id } => group_members(&definition.tasks, group_id)
            .is_empty()
            .then(|| {
                format!("The external task group '{group_id}' in DAG '{dag_id}' does not exist.")
            }),
    })
}

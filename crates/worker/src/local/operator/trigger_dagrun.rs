//! `operator: trigger_dagrun` (Airflow's `TriggerDagRunOperator`): the worker asks the cluster,
//! through the task-execution API, for a run of another DAG, pushes its id as XCom
//! (`trigger_run_id`), and with `wait_for_completion` looks at the run's state every
//! `poke_interval` until it is in `allowed_states` or `failed_states` (Airflow's
//! non-deferrable wait). No process runs.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::watch;
use updraft_model::trigger_dag_run::{WaitVerdict, XCOM_RUN_ID};
use updraft_model::{Dag, Task, TriggerDagRun};
use updraft_store::{
    ClaimedTask, PushedXCom, TaskExecution, TriggerDagRunOutcome, TriggerDagRunRequest,
};
use updraft_template::TemplateContext;

use super::super::LocalWorker;
use super::try_log::TryLog;
use crate::waiting::{after, cancelled};

/// The XCom key of the triggered DAG's id (the provider's `XCOM_DAG_ID`).
const XCOM_DAG_ID: &str = "trigger_dag_id";

/// A rendered trigger, ready to send.
pub(in crate::local) struct TriggerTry {
    trigger: TriggerDagRun,
    run_id: String,
    logical_date: DateTime<Utc>,
}

/// How a trigger try ended, and the XComs it pushed on the way.
pub(in crate::local) struct TriggerEnd {
    pub(in crate::local) outcome: TriggerOutcome,
    pub(in crate::local) pushed: Vec<PushedXCom>,
}

pub(in crate::local) enum TriggerOutcome {
    Success,
    /// The run existed and `skip_when_already_exists` says skip.
    Skipped,
    /// A failure the task's retries apply to (the DAG is missing, the API refused).
    Failed(String),
    /// Failed without retry, as Airflow's runner does: the run exists, or it ended in a
    /// failed state.
    FailedForGood(String),
    TimedOut(Duration),
    Cancelled,
}

impl LocalWorker {
    /// Renders the trigger's templated fields (`trigger_dag_id`, `trigger_run_id`,
    /// `logical_date`, the strings in `conf`) and names the run.
    pub(in crate::local) async fn prepare_trigger(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        trigger: &TriggerDagRun,
    ) -> Result<TriggerTry, String> {
        let mut templates: Vec<&str> = vec![&trigger.trigger_dag_id];
        templates.extend(trigger.trigger_run_id.as_deref());
        templates.extend(trigger.logical_date.as_deref());
        let mut conf_strings = Vec::new();
        for value in trigger.conf.values() {
            strings_in(value, &mut conf_strings);
        }
        templates.extend(conf_strings);
        let (ctx, _) = self
            .template_context(claimed, dag, task, templates.into_iter())
            .await?;
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);
        let mut rendered = trigger.clone();
        rendered.trigger_dag_id = render("trigger_dag_id", &trigger.trigger_dag_id)?;
        if rendered.trigger_dag_id.trim().is_empty() {
            return Err("trigger_dag_id is empty once rendered".into());
        }
        rendered.trigger_run_id = match &trigger.trigger_run_id {
            Some(id) => Some(render("trigger_run_id", id)?).filter(|id| !id.trim().is_empty()),
            None => None,
        };
        rendered.logical_date = match &trigger.logical_date {
            Some(date) => Some(render("logical_date", date)?).filter(|d| !d.trim().is_empty()),
            None => None,
        };
        rendered.conf = trigger
            .conf
            .iter()
            .map(|(key, value)| Ok((key.clone(), self.render_json(&ctx, key, value)?)))
            .collect::<Result<_, String>>()?;
        let logical_date = match &rendered.logical_date {
            Some(text) => updraft_model::trigger_dag_run::parse_instant(text)
                .ok_or_else(|| format!("logical_date {text:?} is not a date or a time"))?,
            None => Utc::now(),
        };
        let run_id = rendered.trigger_run_id.clone().unwrap_or_else(|| {
            format!(
                "manual__{}",
                logical_date.to_rfc3339_opts(SecondsFormat::Micros, false)
            )
        });
        Ok(TriggerTry {
            trigger: rendered,
            run_id,
            logical_date,
        })
    }

    /// Every string in `value` rendered as a template (Airflow renders a dict's values).
    fn render_json(
        &self,
        ctx: &TemplateContext,
        what: &str,
        value: &Value,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => {
                Value::String(self.render_field(ctx, &format!("conf {what}"), s)?)
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_json(ctx, what, item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((k.clone(), self.render_json(ctx, &format!("{what}.{k}"), v)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Triggers the run and waits for it if told, within `timeout`, unless `cancel` turns
    /// true. A run created or reset wakes this process's scheduler at once.
    pub(in crate::local) async fn run_trigger(
        &self,
        prepared: TriggerTry,
        log_path: &Path,
        timeout: Option<Duration>,
        mut cancel: watch::Receiver<bool>,
    ) -> TriggerEnd {
        let log = TryLog::open(log_path, "trigger_dagrun", Vec::new());
        let mut pushed = Vec::new();
        let work = prepared.trigger_and_wait(self.execution.as_ref(), &log, &mut pushed, |run| {
            (self.on_finished)(super::super::Reported {
                changed_runs: vec![run],
                ..Default::default()
            })
        });
        let outcome = tokio::select! {
            outcome = work => outcome,
            () = after(timeout) => {
                let limit = timeout.unwrap_or_default();
                log.line(&format!("timed out after {limit:?}"));
                TriggerOutcome::TimedOut(limit)
            }
            () = cancelled(&mut cancel) => {
                log.line("cancelled");
                TriggerOutcome::Cancelled
            }
        };
        if let TriggerOutcome::Failed(why) | TriggerOutcome::FailedForGood(why) = &outcome {
            log.line(why);
        }
        TriggerEnd { outcome, pushed }
    }
}

impl TriggerTry {
    /// The rendered templated fields in Airflow's order, as `tasks render` prints them.
    pub(in crate::local) fn fields(&self) -> Vec<(String, String)> {
        let t = &self.trigger;
        [
            ("trigger_dag_id", t.trigger_dag_id.clone()),
            ("trigger_run_id", self.run_id.clone()),
            (
                "logical_date",
                self.logical_date
                    .to_rfc3339_opts(SecondsFormat::AutoSi, false),
            ),
            (
                "conf",
                serde_json::to_string_pretty(&t.conf).unwrap_or_default(),
            ),
            ("wait_for_completion", python_bool(t.wait_for_completion)),
            (
                "skip_when_already_exists",
                python_bool(t.skip_when_already_exists),
            ),
        ]
        .into_iter()
        .map(|(field, value)| (field.to_owned(), value))
        .collect()
    }

    async fn trigger_and_wait(
        &self,
        execution: &dyn TaskExecution,
        log: &TryLog,
        pushed: &mut Vec<PushedXCom>,
        changed: impl Fn(i64),
    ) -> TriggerOutcome {
        let t = &self.trigger;
        let dag_id = &t.trigger_dag_id;
        let run_id = &self.run_id;
        log.line(&format!(
            "Triggering DAG {dag_id} as run {run_id} (logical date {})",
            self.logical_date
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        ));
        let request = TriggerDagRunRequest {
            dag_id: dag_id.clone(),
            run_id: run_id.clone(),
            logical_date: self.logical_date,
            conf: t.conf.clone(),
            reset_dag_run: t.reset_dag_run,
        };
        let outcome = match execution.trigger_dag_run(request).await {
            Ok(outcome) => outcome,
            Err(e) => return TriggerOutcome::Failed(format!("cannot trigger DAG {dag_id}: {e}")),
        };
        match outcome {
            TriggerDagRunOutcome::DagNotFound => {
                return TriggerOutcome::Failed(format!(
                    "cannot trigger DAG {dag_id}: no such DAG (is its file in the DAG folder, \
                     and does it load?)"
                ))
            }
            TriggerDagRunOutcome::AlreadyExists { .. } if t.skip_when_already_exists => {
                log.line(&format!(
                    "DAG {dag_id} already has a run {run_id}; skipping (skip_when_already_exists)"
                ));
                return TriggerOutcome::Skipped;
            }
            TriggerDagRunOutcome::AlreadyExists { .. } => {
                return TriggerOutcome::FailedForGood(format!(
                    "DAG {dag_id} already has a run {run_id}; set reset_dag_run to run it again \
                     or skip_when_already_exists to skip this task"
                ))
            }
            TriggerDagRunOutcome::Created { dag_run_id } => {
                log.line(&format!("Triggered DAG {dag_id}: run {run_id}"));
                changed(dag_run_id);
            }
            TriggerDagRunOutcome::Reset { dag_run_id } => {
                log.line(&format!(
                    "DAG {dag_id} already had a run {run_id}: cleared it to run again (reset_dag_run)"
                ));
                changed(dag_run_id);
            }
        }
        pushed.push(PushedXCom {
            key: XCOM_RUN_ID.to_owned(),
            value: Value::String(run_id.clone()),
        });
        pushed.push(PushedXCom {
            key: XCOM_DAG_ID.to_owned(),
            value: Value::String(dag_id.clone()),
        });
        if !t.wait_for_completion {
            return TriggerOutcome::Success;
        }
        let states = |list: &[updraft_model::DagRunState]| {
            list.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        loop {
            log.line(&format!(
                "Waiting for DAG {dag_id} run {run_id} to be in [{}] (every {:?})",
                states(&t.allowed_states),
                t.poke_every()
            ));
            tokio::time::sleep(t.poke_every()).await;
            let state = match execution.dag_run_state(dag_id, run_id).await {
                Ok(state) => state,
                Err(e) if e.is_transient() => {
                    log.line(&format!(
                        "cannot read the run's state, looking again later: {e}"
                    ));
                    continue;
                }
                Err(e) => {
                    return TriggerOutcome::Failed(format!(
                        "cannot read the state of DAG {dag_id} run {run_id}: {e}"
                    ))
                }
            };
            match t.verdict(state) {
                WaitVerdict::Done => {
                    log.line(&format!(
                        "DAG {dag_id} run {run_id} ended in allowed state {}",
                        state.as_str()
                    ));
                    return TriggerOutcome::Success;
                }
                WaitVerdict::Failed => {
                    return TriggerOutcome::FailedForGood(format!(
                        "DAG {dag_id} run {run_id} ended in failed state {} (failed_states: [{}])",
                        state.as_str(),
                        states(&t.failed_states)
                    ))
                }
                WaitVerdict::Waiting => {}
            }
        }
    }
}

/// The strings a JSON value holds, at any depth.
fn strings_in<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|item| strings_in(item, out)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

fn python_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_owned()
}

/// The try's log: lines with the time.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_strings_are_found_at_any_depth() {
        let conf = serde_json::json!({"a": "{{ ds }}", "b": [1, "x", {"c": "y"}], "d": true});
        let mut found = Vec::new();
        strings_in(&conf, &mut found);
        assert_eq!(found, ["{{ ds }}", "x", "y"]);
    }
}

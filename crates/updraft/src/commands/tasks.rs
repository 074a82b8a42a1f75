//! `updraft tasks …`: task listings, states of a run, logs, and clearing.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use regex::Regex;
use serde_json::json;
use updraft_model::{Dag, Operator};
use updraft_store::{DagRun, TaskInstance};

use super::dags::{load_dag, not_found, sync_folder};
use crate::app::App;
use crate::cli::{Output, TasksCommand};
use crate::output::{self, time};

pub async fn run(app: App, cmd: &TasksCommand) -> Result<ExitCode> {
    match cmd {
        TasksCommand::List { dag_id, output } => {
            sync_folder(&app).await?;
            let (dag, _) = load_dag(&app, dag_id).await?;
            let value: Vec<_> = dag
                .tasks
                .iter()
                .map(|t| json!({"task_id": t.task_id, "operator": operator_name(&t.operator), "dependencies": t.dependencies, "trigger_rule": t.trigger_rule}))
                .collect();
            let rows = dag
                .tasks
                .iter()
                .map(|t| {
                    vec![
                        t.task_id.clone(),
                        operator_name(&t.operator).into(),
                        t.dependencies.join(", "),
                    ]
                })
                .collect();
            output::print(
                output.output,
                &value,
                &["task_id", "operator", "dependencies"],
                rows,
            )?;
        }
        TasksCommand::StatesForDagRun {
            dag_id,
            run_id,
            output,
        } => {
            let run = app
                .store
                .get_dag_run(dag_id, run_id)
                .await
                .map_err(not_found)?;
            print_states(&app, &run, output.output).await?;
        }
        TasksCommand::Logs {
            dag_id,
            run_id,
            task_id,
            try_number,
            map_index,
        } => {
            let run = app
                .store
                .get_dag_run(dag_id, run_id)
                .await
                .map_err(not_found)?;
            let tis = app.store.task_instances(run.id).await?;
            let instances: Vec<&TaskInstance> =
                tis.iter().filter(|ti| ti.task_id == *task_id).collect();
            let Some(ti) = instances.iter().find(|ti| ti.map_index == *map_index) else {
                if instances.is_empty() {
                    bail!("task {task_id:?} not found in run {run_id:?} of DAG {dag_id:?}");
                }
                bail!(
                    "task {task_id:?} has no map index {map_index} in run {run_id:?}: it has {}",
                    instances
                        .iter()
                        .map(|ti| ti.map_index.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let try_number = try_number.unwrap_or(ti.try_number);
            if try_number == 0 || try_number > ti.try_number {
                bail!(
                    "task {task_id:?} has no try {try_number} (tries so far: {})",
                    ti.try_number
                );
            }
            // A remote worker sent it to the database; a local one wrote it to this machine.
            let log = updraft_store::read_try_log(
                app.store.as_ref(),
                &app.config.logging.base_log_folder,
                ti,
                try_number,
                0,
            )
            .await?;
            match log {
                updraft_store::TryLog::Missing { path } => bail!(
                    "no log for try {try_number}: none was sent by a remote worker and none is at {}",
                    path.display()
                ),
                log => print!("{}", log.text().unwrap_or_default()),
            }
        }
        TasksCommand::Test {
            dag_id,
            task_id,
            logical_date_or_run_id,
            task_params,
            env_vars,
            map_index,
        } => {
            return super::task_dev::test(
                &app,
                dag_id,
                task_id,
                logical_date_or_run_id.as_deref(),
                task_params.as_deref(),
                env_vars.as_deref(),
                *map_index,
            )
            .await;
        }
        TasksCommand::Render {
            dag_id,
            task_id,
            logical_date_or_run_id,
            map_index,
        } => {
            return super::task_dev::render(
                &app,
                dag_id,
                task_id,
                logical_date_or_run_id,
                *map_index,
            )
            .await
        }
        TasksCommand::Clear {
            dag_id,
            task_regex,
            run_id,
            no_downstream,
            dry_run,
        } => {
            sync_folder(&app).await?;
            let (current, _) = load_dag(&app, dag_id).await?;
            let pattern = task_regex
                .as_deref()
                .map(Regex::new)
                .transpose()
                .context("invalid --task-regex")?;
            if selected_tasks(&current, pattern.as_ref(), *no_downstream).is_empty() {
                bail!("no task of DAG {dag_id:?} matches the regex");
            }
            let runs = match run_id {
                Some(run_id) => vec![app
                    .store
                    .get_dag_run(dag_id, run_id)
                    .await
                    .map_err(not_found)?],
                None => app.store.list_dag_runs(dag_id).await?,
            };
            // Each run keeps the DAG version it started with; its downstream is that
            // version's.
            let mut selections = Vec::with_capacity(runs.len());
            for run in &runs {
                let dag = app.store.get_dag_version(dag_id, run.dag_version).await?;
                let task_ids = selected_tasks(&dag, pattern.as_ref(), *no_downstream);
                selections.push((dag, task_ids));
            }
            let cleared_runs: Vec<updraft_scheduler::ClearedRun<'_>> = runs
                .iter()
                .zip(&selections)
                .map(|(run, (dag, task_ids))| updraft_scheduler::ClearedRun { dag, run, task_ids })
                .collect();
            let marked = updraft_scheduler::marked_clears(app.store.as_ref(), &cleared_runs)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut plan: Vec<(&DagRun, &[String])> = runs
                .iter()
                .zip(&selections)
                .map(|(run, (_, task_ids))| (run, task_ids.as_slice()))
                .collect();
            plan.extend(marked.iter().map(|m| (&m.run, m.task_ids.as_slice())));
            if *dry_run {
                for (run, task_ids) in &plan {
                    let tis = app.store.task_instances(run.id).await?;
                    for ti in tis.iter().filter(|ti| task_ids.contains(&ti.task_id)) {
                        println!(
                            "{}\t{}\t{}\t{}",
                            run.dag_id,
                            run.run_id,
                            ti.task_id,
                            ti.state.as_str()
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut cleared = 0;
            for (run, task_ids) in &plan {
                cleared += app
                    .store
                    .clear_task_instances(run.id, task_ids, Utc::now())
                    .await?;
            }
            app.wake_standalone();
            let target = crate::audit::Target {
                dag_id: Some(dag_id),
                run_id: run_id.as_deref(),
            };
            let params = serde_json::json!({"dag_id": dag_id, "task_regex": task_regex, "run_id": run_id, "no_downstream": no_downstream, "cleared": cleared});
            crate::audit::record(&app, "cli_tasks_clear", target, params).await;
            println!(
                "cleared {cleared} task instance(s) in {} run(s)",
                plan.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tasks matching `pattern` (all when `None`), with their downstream unless told not to,
/// and the setups and teardowns that go with them (Airflow's clearing rules).
fn selected_tasks(dag: &Dag, pattern: Option<&Regex>, no_downstream: bool) -> Vec<String> {
    let matched: Vec<String> = dag
        .tasks
        .iter()
        .filter(|t| pattern.is_none_or(|p| p.is_match(&t.task_id)))
        .map(|t| t.task_id.clone())
        .collect();
    updraft_model::setup_teardown::clear_selection(dag, &matched, false, !no_downstream)
}

fn operator_name(op: &Operator) -> &'static str {
    op.kind()
}

pub async fn print_states(app: &App, run: &DagRun, out: Output) -> Result<()> {
    let tis = app.store.task_instances(run.id).await?;
    let value = json!({
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "task_instances": tis.iter().map(|ti| json!({
            "task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state,
            "try_number": ti.try_number,
            "start_date": ti.start_date, "end_date": ti.end_date,
        })).collect::<Vec<_>>(),
    });
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(&value)?),
        Output::Table => {
            println!("dag run {} of {}: {}", run.run_id, run.dag_id, run.state);
            let rows = tis
                .iter()
                .map(|ti| {
                    vec![
                        ti.task_id.clone(),
                        ti.state.to_string(),
                        ti.try_number.to_string(),
                        ti.map_index.to_string(),
                        time(ti.start_date),
                        time(ti.end_date),
                    ]
                })
                .collect();
            output::print(
                out,
                &value,
                &[
                    "task_id",
                    "state",
                    "try_number",
                    "map_index",
                    "start_date",
                    "end_date",
                ],
                rows,
            )?;
        }
    }
    Ok(())
}

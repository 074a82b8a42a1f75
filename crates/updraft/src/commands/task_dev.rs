//! `updraft tasks test` and `updraft tasks render`: a DAG author's look at one task without a
//! scheduler. The try is prepared and run by the worker library (`LocalWorker::test_try`,
//! `render_fields`) over a read-only view of the store, so nothing of it is recorded.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::Utc;
use updraft_model::{Dag, DagRunState, TaskState};
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{DagRun, StoreExecution};
use updraft_worker::{LocalWorker, ReadOnlyExecution, TaskTry};

use super::dags::{load_dag, parse_time, read_conf, sync_folder};
use crate::app::App;

/// `tasks test DAG TASK [DATE|RUN_ID] [-t PARAMS] [--env-vars VARS]`.
pub async fn test(
    app: &App,
    dag_id: &str,
    task_id: &str,
    when: Option<&str>,
    task_params: Option<&str>,
    env_vars: Option<&str>,
    map_index: i64,
) -> Result<ExitCode> {
    let params = read_conf(task_params).context("-t/--task-params")?;
    let env: Vec<(String, String)> = read_conf(env_vars)
        .context("--env-vars")?
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (key, value)
        })
        .collect();
    let mut try_ = task_try(app, dag_id, task_id, when, params).await?;
    try_.map_index = map_index;
    check_map_index(&try_)?;
    let worker = worker(app)?;
    // As Airflow's: a task may ask whether it runs under `tasks test`.
    try_.env.push(("AIRFLOW_TEST_MODE".into(), "True".into()));
    try_.env.extend(env);
    let log_path = std::env::temp_dir().join(format!(
        "updraft-tasks-test-{}-{}.log",
        std::process::id(),
        Utc::now().timestamp_micros()
    ));
    let outcome = worker
        .test_try(&try_, log_path.clone(), &mut std::io::stdout())
        .await;
    let _ = std::fs::remove_file(&log_path);
    if let Some(xcom) = &outcome.xcom {
        println!("[updraft] returned: {xcom}");
    }
    match &outcome.error {
        Some(error) if outcome.state == TaskState::Failed => {
            println!("[updraft] task {task_id} failed: {error}")
        }
        _ => println!("[updraft] task {task_id} ended: {}", outcome.state),
    }
    Ok(if outcome.state == TaskState::Failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A mapped task is tested one instance at a time, an unmapped one as itself.
fn check_map_index(try_: &TaskTry) -> Result<()> {
    let mapped = try_
        .dag
        .task(&try_.task_id)
        .is_some_and(|t| t.mapping.is_some());
    match (mapped, try_.map_index) {
        (true, i) if i < 0 => bail!(
            "task {:?} is mapped: name the instance to test with --map-index N",
            try_.task_id
        ),
        (false, i) if i >= 0 => bail!(
            "task {:?} is not mapped: --map-index does not apply",
            try_.task_id
        ),
        _ => Ok(()),
    }
}

/// `tasks render DAG TASK DATE|RUN_ID`: each templated field as Airflow prints it.
pub async fn render(
    app: &App,
    dag_id: &str,
    task_id: &str,
    when: &str,
    map_index: i64,
) -> Result<ExitCode> {
    let mut try_ = task_try(app, dag_id, task_id, Some(when), serde_json::Map::new()).await?;
    try_.map_index = map_index;
    check_map_index(&try_)?;
    let fields = worker(app)?
        .render_fields(&try_)
        .await
        .map_err(anyhow::Error::msg)?;
    let rule = "# ----------------------------------------------------------";
    for (name, value) in fields {
        println!("{rule}\n# property: {name}\n{rule}\n{value}\n");
    }
    Ok(ExitCode::SUCCESS)
}

/// The try of `task_id` in the run `when` names (a run id of the DAG, or a logical date whose
/// run exists), else in a run made up for that date (now by default) and never stored.
/// `params` override the DAG's params, checked against their specs.
async fn task_try(
    app: &App,
    dag_id: &str,
    task_id: &str,
    when: Option<&str>,
    params: serde_json::Map<String, serde_json::Value>,
) -> Result<TaskTry> {
    sync_folder(app).await?;
    let (dag, version) = load_dag(app, dag_id).await?;
    if dag.task(task_id).is_none() {
        bail!("task {task_id:?} not found in DAG {dag_id:?}");
    }
    let mut run = match existing_run(app, &dag, when).await? {
        Some(run) => run,
        None => {
            let logical_date = when.map(|w| parse_time(w, &dag)).transpose()?;
            made_up_run(&dag, version, logical_date)
        }
    };
    run.conf.extend(params);
    updraft_model::param::resolve(&dag.param_specs(), &run.conf)?;
    let dag = if run.dag_version == version {
        dag
    } else {
        app.store.get_dag_version(dag_id, run.dag_version).await?
    };
    Ok(TaskTry {
        dag,
        task_id: task_id.to_string(),
        run,
        env: Vec::new(),
        map_index: -1,
    })
}

async fn existing_run(app: &App, dag: &Dag, when: Option<&str>) -> Result<Option<DagRun>> {
    let Some(when) = when else { return Ok(None) };
    if let Ok(run) = app.store.get_dag_run(&dag.dag_id, when).await {
        return Ok(Some(run));
    }
    let Ok(logical_date) = parse_time(when, dag) else {
        bail!(
            "{when:?} is neither a run of DAG {:?} nor a date (RFC 3339 or YYYY-MM-DD)",
            dag.dag_id
        );
    };
    let runs = app.store.list_dag_runs(&dag.dag_id).await?;
    Ok(runs.into_iter().find(|r| r.logical_date == logical_date))
}

fn made_up_run(dag: &Dag, version: i64, logical_date: Option<chrono::DateTime<Utc>>) -> DagRun {
    let now = Utc::now();
    let mut request = TriggerRequest::manual();
    request.logical_date = logical_date;
    let date = logical_date.unwrap_or(now);
    request.run_id = Some(format!(
        "test__{}",
        date.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ));
    let new = new_dag_run(dag, version, request, now, None);
    DagRun {
        id: 0,
        dag_id: new.dag_id,
        run_id: new.run_id,
        run_type: new.run_type,
        state: DagRunState::Running,
        logical_date: new.logical_date,
        data_interval_start: new.data_interval_start,
        data_interval_end: new.data_interval_end,
        conf: new.conf,
        dag_version: version,
        queued_at: now,
        start_date: Some(now),
        end_date: None,
        runner: None,
        note: None,
    }
}

fn worker(app: &App) -> Result<Arc<LocalWorker>> {
    let execution = ReadOnlyExecution(Arc::new(StoreExecution(app.store.clone())));
    Ok(LocalWorker::new(
        Arc::new(execution),
        // A developer's try is no try of the run: it records no span.
        crate::standalone::worker_config(app, None, updraft_telemetry::Traces::off())?,
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(|_| {}),
        crate::standalone::spawn_reaper(),
    ))
}

//! `updraft dags …`: listing, pausing, triggering and testing DAGs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::json;
use updraft_model::{timetable, Dag, DagRunState};
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{DagRun, StoreError};

use crate::app::App;
use crate::cli::{DagsCommand, Output};
use crate::output::{self, time};

pub async fn run(app: App, cmd: &DagsCommand) -> Result<ExitCode> {
    sync_folder(&app).await?;
    match cmd {
        DagsCommand::Backfill(args) => return super::backfill::create(app, args).await,
        DagsCommand::List(out) => {
            let dags = app.store.list_dags().await?;
            let value: Vec<_> = dags
                .iter()
                .map(|d| json!({"dag_id": d.dag_id, "fileloc": d.fileloc, "schedule": d.schedule, "is_paused": d.is_paused, "tags": d.tags}))
                .collect();
            let rows = dags
                .iter()
                .map(|d| {
                    vec![
                        d.dag_id.clone(),
                        d.fileloc.clone(),
                        d.schedule.clone(),
                        d.is_paused.to_string(),
                        d.tags.join(", "),
                    ]
                })
                .collect();
            output::print(
                out.output,
                &value,
                &["dag_id", "fileloc", "schedule", "is_paused", "tags"],
                rows,
            )?;
        }
        DagsCommand::ListImportErrors(out) => {
            let errors = app.store.list_import_errors().await?;
            let rows = errors
                .iter()
                .map(|e| vec![e.filename.clone(), e.error.clone()])
                .collect();
            output::print(out.output, &errors, &["filename", "error"], rows)?;
        }
        DagsCommand::Pause { dag_id } | DagsCommand::Unpause { dag_id } => {
            let paused = matches!(cmd, DagsCommand::Pause { .. });
            app.store
                .set_paused(dag_id, paused)
                .await
                .map_err(not_found)?;
            app.wake_standalone();
            let event = if paused {
                "cli_dags_pause"
            } else {
                "cli_dags_unpause"
            };
            crate::audit::record(
                &app,
                event,
                crate::audit::Target::dag(dag_id),
                serde_json::json!({"dag_id": dag_id}),
            )
            .await;
            println!("Dag: {dag_id}, paused: {paused}");
        }
        DagsCommand::Trigger {
            dag_id,
            conf,
            run_id,
            logical_date,
            wait,
            output,
        } => {
            let (dag, version) = load_dag(&app, dag_id).await?;
            let mut request = TriggerRequest::manual();
            request.conf = parse_conf(conf.as_deref(), &dag)?;
            request.run_id = run_id.clone();
            request.logical_date = logical_date
                .as_deref()
                .map(|t| parse_time(t, &dag))
                .transpose()?;
            let run = app
                .store
                .create_dag_run(new_dag_run(&dag, version, request, Utc::now(), None))
                .await
                .map_err(not_found)?;
            app.wake_standalone();
            let target = crate::audit::Target {
                dag_id: Some(dag_id),
                run_id: Some(&run.run_id),
            };
            let params = serde_json::json!({"dag_id": dag_id, "run_id": run.run_id, "conf": run.conf, "logical_date": run.logical_date});
            crate::audit::record(&app, "cli_dags_trigger", target, params).await;
            if !*wait {
                print_runs(output.output, std::slice::from_ref(&run))?;
                return Ok(ExitCode::SUCCESS);
            }
            if app.store.get_dag(dag_id).await.is_ok_and(|d| d.is_paused) {
                eprintln!("warning: DAG {dag_id} is paused; the run starts when it is unpaused");
            }
            let standalone = app.sqlite_path().is_some_and(crate::standalone::is_running);
            if !standalone && super::jobs::live_schedulers(&app, None).await?.is_empty() {
                eprintln!(
                    "warning: no updraft scheduler or standalone is running on {}; the run starts when one does",
                    app.database_name()
                );
            }
            let run = wait_for(&app, &run).await?;
            print_runs(output.output, std::slice::from_ref(&run))?;
            return Ok(exit_for(run.state));
        }
        DagsCommand::ListRuns { dag_id, output } => {
            app.store.get_dag(dag_id).await.map_err(not_found)?;
            let runs = app.store.list_dag_runs(dag_id).await?;
            print_runs(output.output, &runs)?;
        }
        DagsCommand::NextExecution {
            dag_id,
            num,
            output,
        } => {
            let (dag, _) = load_dag(&app, dag_id).await?;
            let times = timetable::next_fire_times(&dag, Utc::now(), *num);
            let value = &times;
            let rows = times
                .iter()
                .map(|t| vec![time(Some(*t)), t.with_timezone(&dag.timezone).to_rfc3339()])
                .collect();
            output::print(
                output.output,
                value,
                &["utc", &dag.timezone.to_string()],
                rows,
            )?;
        }
        DagsCommand::Test {
            dag_id,
            logical_date,
            conf,
            output,
        } => {
            let (dag, version) = load_dag(&app, dag_id).await?;
            let mut request = TriggerRequest::manual();
            request.conf = parse_conf(conf.as_deref(), &dag)?;
            request.logical_date = logical_date
                .as_deref()
                .map(|t| parse_time(t, &dag))
                .transpose()?;
            let now = Utc::now();
            request.run_id = Some(format!(
                "test__{}",
                now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ));
            let mut new_run = new_dag_run(&dag, version, request, now, None);
            // A running standalone leaves this run to us while we live.
            new_run.runner = Some(crate::recovery::worker_id());
            let run = app.store.create_dag_run(new_run).await?;
            let run = crate::standalone::run_one(&app, &run).await?;
            super::tasks::print_states(&app, &run, output.output).await?;
            return Ok(exit_for(run.state));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes the DAG folder as it is now. A folder that does not exist is left alone rather
/// than read as "every DAG was deleted" (a CLI run with another home must not wipe the DAGs).
pub async fn sync_folder(app: &App) -> Result<()> {
    if !app.config.core.dags_folder.is_dir() {
        return Ok(());
    }
    let mut processor = app.dag_processor()?;
    processor.sync().await?;
    Ok(())
}

pub async fn load_dag(app: &App, dag_id: &str) -> Result<(std::sync::Arc<Dag>, i64)> {
    let record = app.store.get_dag(dag_id).await.map_err(not_found)?;
    let dag = app.store.get_dag_version(dag_id, record.version).await?;
    Ok((dag, record.version))
}

pub fn not_found(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound(what) => anyhow::anyhow!("{what} not found"),
        other => other.into(),
    }
}

fn exit_for(state: DagRunState) -> ExitCode {
    if state == DagRunState::Success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn wait_for(app: &App, run: &DagRun) -> Result<DagRun> {
    loop {
        let current = app.store.get_dag_run_by_id(run.id).await?;
        if current.state.is_finished() {
            return Ok(current);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `--conf` as a JSON object, checked against the DAG's params as the REST API checks it.
fn parse_conf(
    conf: Option<&str>,
    dag: &updraft_model::Dag,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let conf = read_conf(conf)?;
    updraft_model::param::resolve(&dag.param_specs(), &conf)?;
    Ok(conf)
}

pub(super) fn read_conf(conf: Option<&str>) -> Result<serde_json::Map<String, serde_json::Value>> {
    let Some(text) = conf else {
        return Ok(serde_json::Map::new());
    };
    match serde_json::from_str(text).context("--conf is not valid JSON")? {
        serde_json::Value::Object(map) => Ok(map),
        _ => bail!("--conf must be a JSON object, like '{{\"key\": \"value\"}}'"),
    }
}

/// An RFC 3339 time, or a date / naive time in the DAG's zone.
pub fn parse_time(text: &str, dag: &Dag) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
        })
        .with_context(|| format!("invalid time {text:?}: expected RFC 3339 or YYYY-MM-DD"))?;
    dag.timezone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{text} does not exist in {}", dag.timezone))
}

pub fn print_runs(out: Output, runs: &[DagRun]) -> Result<()> {
    let value: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({"dag_id": r.dag_id, "run_id": r.run_id, "state": r.state, "run_type": r.run_type,
                   "logical_date": r.logical_date,
                   "data_interval_start": r.data_interval_start,
                   "data_interval_end": r.data_interval_end,
                   "start_date": r.start_date, "end_date": r.end_date})
        })
        .collect();
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.state.to_string(),
                r.run_type.to_string(),
                time(Some(r.logical_date)),
                time(r.start_date),
                time(r.end_date),
            ]
        })
        .collect();
    output::print(
        out,
        &value,
        &[
            "run_id",
            "state",
            "run_type",
            "logical_date",
            "start_date",
            "end_date",
        ],
        rows,
    )
}

//! `updraft backfill …` (and `dags backfill`): Airflow 3's backfills, which the schedulers run.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Utc;
use serde_json::json;
use updraft_scheduler::{plan_backfill, BackfillError, BackfillRequest};
use updraft_store::{Backfill, NewBackfill};

use super::dags::{load_dag, not_found, parse_time, read_conf};
use crate::app::App;
use crate::cli::{BackfillCommand, BackfillCreateArgs, Output};
use crate::output::{print, time};

pub async fn run(app: App, cmd: &BackfillCommand) -> Result<ExitCode> {
    super::dags::sync_folder(&app).await?;
    match cmd {
        BackfillCommand::Create(args) => create(app, args).await,
        BackfillCommand::List { dag_id, output } => {
            let backfills = app.store.list_backfills(dag_id.as_deref()).await?;
            print_backfills(output.output, &backfills)?;
            Ok(ExitCode::SUCCESS)
        }
        BackfillCommand::Pause { id } | BackfillCommand::Unpause { id } => {
            let paused = matches!(cmd, BackfillCommand::Pause { .. });
            let backfill = app
                .store
                .set_backfill_paused(*id, paused, Utc::now())
                .await
                .map_err(not_found)?;
            app.wake_standalone();
            println!("Backfill {}: paused: {}", backfill.id, backfill.is_paused);
            Ok(ExitCode::SUCCESS)
        }
        BackfillCommand::Cancel { id } => {
            let backfill = app
                .store
                .cancel_backfill(*id, Utc::now())
                .await
                .map_err(not_found)?;
            app.wake_standalone();
            println!("Backfill {} cancelled", backfill.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn create(app: App, args: &BackfillCreateArgs) -> Result<ExitCode> {
    let (dag, _) = load_dag(&app, &args.dag_id).await?;
    let conf = read_conf(args.dag_run_conf.as_deref())?;
    updraft_model::param::resolve(&dag.param_specs(), &conf)?;
    let request = BackfillRequest {
        dag_id: args.dag_id.clone(),
        from_date: parse_time(&args.from_date, &dag)?,
        to_date: parse_time(&args.to_date, &dag)?,
        run_backwards: args.run_backwards,
        dag_run_conf: conf,
        reprocess_behavior: args
            .reprocess_behavior
            .parse()
            .map_err(anyhow::Error::msg)?,
        max_active_runs: args.max_active_runs,
    };
    let plan = match plan_backfill(app.store.as_ref(), &request, Utc::now()).await {
        Ok(plan) => plan,
        Err(BackfillError::Invalid(message)) => bail!("{message}"),
        Err(BackfillError::Store(e)) => return Err(not_found(e)),
    };
    if args.dry_run {
        print_dates(args.output.output, &plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    let backfill = app.store.create_backfill(plan).await.map_err(not_found)?;
    app.wake_standalone();
    crate::audit::record(
        &app,
        "cli_backfill_create",
        crate::audit::Target::dag(&backfill.dag_id),
        json!({"backfill_id": backfill.id, "from_date": backfill.from_date, "to_date": backfill.to_date}),
    )
    .await;
    print_backfills(args.output.output, std::slice::from_ref(&backfill))?;
    Ok(ExitCode::SUCCESS)
}

/// What a dry run shows: every date with what the backfill would do with it.
fn print_dates(out: Output, plan: &NewBackfill) -> Result<()> {
    let value: Vec<_> = plan
        .dates
        .iter()
        .map(|d| {
            json!({"logical_date": d.logical_date,
                   "reprocesses_run": d.dag_run_id.is_some(),
                   "exception_reason": d.exception_reason})
        })
        .collect();
    let rows = plan
        .dates
        .iter()
        .map(|d| {
            let action = match (&d.exception_reason, d.dag_run_id) {
                (Some(reason), _) => format!("skip ({reason})"),
                (None, Some(_)) => "reprocess".to_string(),
                (None, None) => "create".to_string(),
            };
            vec![time(Some(d.logical_date)), action]
        })
        .collect();
    print(out, &value, &["logical_date", "action"], rows)
}

fn print_backfills(out: Output, backfills: &[Backfill]) -> Result<()> {
    let rows = backfills
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                b.dag_id.clone(),
                time(Some(b.from_date)),
                time(Some(b.to_date)),
                b.reprocess_behavior.to_string(),
                b.max_active_runs.to_string(),
                b.is_paused.to_string(),
                time(b.completed_at),
            ]
        })
        .collect();
    print(
        out,
        &backfills,
        &[
            "id",
            "dag_id",
            "from_date",
            "to_date",
            "reprocess_behavior",
            "max_active_runs",
            "is_paused",
            "completed_at",
        ],
        rows,
    )
}

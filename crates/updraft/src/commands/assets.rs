//! `updraft assets …`: Airflow's `assets list`, `assets details` and `assets materialize`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Utc;
use updraft_scheduler::{new_dag_run, TriggerRequest};
use updraft_store::{AssetQuery, AssetRecord};

use super::dags::{load_dag, not_found, print_runs};
use crate::app::App;
use crate::cli::{AssetSelector, AssetsCommand, Output};
use crate::output::{print, time};

pub async fn run(app: App, cmd: &AssetsCommand) -> Result<ExitCode> {
    super::dags::sync_folder(&app).await?;
    match cmd {
        AssetsCommand::List { output } => {
            let assets = all_assets(&app).await?;
            print_assets(output.output, &assets)?;
        }
        AssetsCommand::Details { asset, output } => {
            let found = find(&app, asset).await?;
            print_assets(output.output, std::slice::from_ref(&found))?;
        }
        AssetsCommand::Materialize { asset, output } => {
            let found = find(&app, asset).await?;
            let mut producers: Vec<&str> = found
                .producing_tasks
                .iter()
                .map(|t| t.dag_id.as_str())
                .collect();
            producers.dedup();
            let dag_id = match producers.as_slice() {
                [one] => one.to_string(),
                [] => bail!("no DAG produces asset {:?}", found.name),
                many => bail!(
                    "more than one DAG produces asset {:?}: {}",
                    found.name,
                    many.join(", ")
                ),
            };
            let (dag, version) = load_dag(&app, &dag_id).await?;
            let run = app
                .store
                .create_dag_run(new_dag_run(
                    &dag,
                    version,
                    TriggerRequest::manual(),
                    Utc::now(),
                    None,
                ))
                .await
                .map_err(not_found)?;
            app.wake_standalone();
            let target = crate::audit::Target {
                dag_id: Some(&dag_id),
                run_id: Some(&run.run_id),
            };
            let params = serde_json::json!({"asset": found.name, "uri": found.uri});
            crate::audit::record(&app, "cli_assets_materialize", target, params).await;
            print_runs(output.output, std::slice::from_ref(&run))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn all_assets(app: &App) -> Result<Vec<AssetRecord>> {
    let mut out = Vec::new();
    loop {
        let query = AssetQuery {
            limit: 1000,
            offset: out.len() as u32,
            ..AssetQuery::default()
        };
        let (page, total) = app.store.list_assets(query).await?;
        let done = page.is_empty();
        out.extend(page);
        if done || out.len() as i64 >= total {
            return Ok(out);
        }
    }
}

/// The asset named by `--name` and/or `--uri` (Airflow: either, or both).
async fn find(app: &App, selector: &AssetSelector) -> Result<AssetRecord> {
    if selector.name.is_none() && selector.uri.is_none() {
        bail!("give the asset's --name or --uri");
    }
    let matching: Vec<AssetRecord> = all_assets(app)
        .await?
        .into_iter()
        .filter(|a| selector.name.as_ref().is_none_or(|n| *n == a.name))
        .filter(|a| selector.uri.as_ref().is_none_or(|u| *u == a.uri))
        .collect();
    match matching.len() {
        1 => Ok(matching.into_iter().next().expect("one asset")),
        0 => bail!("asset {} not found", describe(selector)),
        _ => bail!(
            "more than one asset matches {}; give both --name and --uri",
            describe(selector)
        ),
    }
}

fn describe(selector: &AssetSelector) -> String {
    match (&selector.name, &selector.uri) {
        (Some(n), Some(u)) => format!("with name {n:?} and uri {u:?}"),
        (Some(n), None) => format!("with name {n:?}"),
        (None, Some(u)) => format!("with uri {u:?}"),
        (None, None) => String::new(),
    }
}

fn print_assets(out: Output, assets: &[AssetRecord]) -> Result<()> {
    let rows = assets
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.uri.clone(),
                a.group.clone(),
                time(a.last_event.as_ref().map(|e| e.timestamp)),
                a.scheduled_dags
                    .iter()
                    .map(|d| d.dag_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.producing_tasks
                    .iter()
                    .map(|t| format!("{}.{}", t.dag_id, t.task_id))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    print(
        out,
        &assets,
        &[
            "name",
            "uri",
            "group",
            "last_event",
            "consuming_dags",
            "producing_tasks",
        ],
        rows,
    )
}

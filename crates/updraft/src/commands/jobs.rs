//! `jobs check` (liveness probes) and `worker list`: the processes that beat in the database.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;
use updraft_store::{JobKind, JobRecord};

use crate::app::App;
use crate::cli::{JobType, Output};
use crate::config::duration;
use crate::output::{print, time};

/// Schedulers (and `standalone`s) that beat within `api.scheduler_health_threshold`.
pub async fn live_schedulers(app: &App, hostname: Option<&str>) -> Result<Vec<JobRecord>> {
    live(app, &[JobKind::Scheduler, JobKind::Standalone], hostname).await
}

async fn live(app: &App, kinds: &[JobKind], hostname: Option<&str>) -> Result<Vec<JobRecord>> {
    let threshold = duration(
        "api.scheduler_health_threshold",
        &app.config.api.scheduler_health_threshold,
    )?;
    let since = Utc::now() - chrono::Duration::from_std(threshold)?;
    Ok(app
        .store
        .list_jobs(None, since)
        .await?
        .into_iter()
        .filter(|job| kinds.contains(&job.kind))
        .filter(|job| job.state != "stopped")
        .filter(|job| hostname.is_none_or(|h| job.hostname == h))
        .collect())
}

pub async fn check(
    app: &App,
    job_type: JobType,
    hostname: Option<&str>,
    limit: usize,
) -> Result<ExitCode> {
    let (kinds, name): (&[JobKind], &str) = match job_type {
        JobType::Scheduler => (&[JobKind::Scheduler, JobKind::Standalone], "scheduler"),
        JobType::Worker => (&[JobKind::Worker], "worker"),
        JobType::ApiServer => (&[JobKind::ApiServer], "api-server"),
    };
    let alive = live(app, kinds, hostname).await?;
    if alive.len() >= limit.max(1) {
        println!("Found {} alive {name} job(s).", alive.len());
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "No alive {name} jobs found (found {}, need {}).",
            alive.len(),
            limit.max(1)
        );
        Ok(ExitCode::FAILURE)
    }
}

#[derive(Serialize)]
struct WorkerRow {
    worker_id: String,
    hostname: String,
    queues: Vec<String>,
    state: String,
    running: Vec<String>,
    latest_heartbeat: chrono::DateTime<Utc>,
}

pub async fn list_workers(app: &App, output: Output) -> Result<ExitCode> {
    let workers = live(app, &[JobKind::Worker], None).await?;
    let mut running: HashMap<String, Vec<String>> = HashMap::new();
    for ti in app.store.running_task_instances().await? {
        if let Some(worker) = ti.worker_id.clone() {
            running.entry(worker).or_default().push(format!(
                "{}/{}/{}#{}",
                ti.dag_id, ti.run_id, ti.task_id, ti.try_number
            ));
        }
    }
    let rows: Vec<WorkerRow> = workers
        .into_iter()
        .map(|job| WorkerRow {
            running: running.remove(&job.id).unwrap_or_default(),
            worker_id: job.id,
            hostname: job.hostname,
            queues: job.queues,
            state: job.state,
            latest_heartbeat: job.latest_heartbeat,
        })
        .collect();
    let table = rows
        .iter()
        .map(|w| {
            vec![
                w.worker_id.clone(),
                w.hostname.clone(),
                w.queues.join(","),
                w.state.clone(),
                w.running.len().to_string(),
                time(Some(w.latest_heartbeat)),
            ]
        })
        .collect();
    print(
        output,
        &rows,
        &[
            "worker",
            "hostname",
            "queues",
            "state",
            "running",
            "latest heartbeat",
        ],
        table,
    )?;
    Ok(ExitCode::SUCCESS)
}

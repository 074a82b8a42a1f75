//! `updraft worker`: a remote worker. It pulls the tasks of its queues from the API servers
//! over HTTP (failing over between them), runs them as processes exactly like the local
//! worker, ships their logs, and never touches the database. SIGTERM drains it: it stops
//! claiming, lets running tasks finish within `worker.shutdown_grace`, then exits 0.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Result};
use tokio::sync::{watch, Notify};
use tracing::info;
use updraft_api::{HttpExecution, HttpExecutionOptions};
use updraft_worker::{LocalWorker, LocalWorkerConfig};

use crate::cli::WorkerArgs;
use crate::config::{duration, Config};
use crate::recovery;

pub async fn run(config: Config, args: &WorkerArgs) -> Result<ExitCode> {
    let servers = if args.server.is_empty() {
        config.worker.servers.clone()
    } else {
        args.server.clone()
    };
    let servers: Vec<String> = servers
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        bail!("no API server to pull work from: pass --server URL[,URL…] or set worker.servers");
    }
    if config.api.worker_token.trim().is_empty() {
        bail!("api.worker_token is not set: set UPDRAFT_API__WORKER_TOKEN to the API servers' worker token");
    }
    let queues = if args.queues.is_empty() {
        config.worker.queues.clone()
    } else {
        args.queues.clone()
    };
    let queues: Vec<String> = queues
        .into_iter()
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
        .collect();
    if queues.is_empty() {
        bail!("a worker must serve at least one queue (--queues)");
    }
    crate::metrics::install(&config)?;
    let execution = Arc::new(HttpExecution::new(
        servers.clone(),
        config.api.worker_token.clone(),
        HttpExecutionOptions::default(),
    )?);
    let worker_id = recovery::worker_id();
    let traces = config.traces()?;
    let concurrency = args
        .concurrency
        .or(config.worker.concurrency)
        .unwrap_or(16)
        .max(1) as usize;
    let worker = LocalWorker::new(
        execution,
        LocalWorkerConfig {
            worker_id: worker_id.clone(),
            hostname: recovery::hostname(),
            concurrency,
            queues: Some(queues.clone()),
            only_run: None,
            base_log_folder: config.logging.base_log_folder.clone(),
            heartbeat_interval: duration(
                "worker.heartbeat_interval",
                &config.worker.heartbeat_interval,
            )?,
            lease: duration("worker.lease", &config.worker.lease)?,
            kill_grace: duration("worker.kill_grace", &config.worker.kill_grace)?,
            direct_exec: config.worker.direct_exec,
            drain_grace: Some(duration(
                "worker.shutdown_grace",
                &config.worker.shutdown_grace,
            )?),
            announce: true,
            sensitive_names: updraft_secrets::SensitiveNames::new(
                &config.core.sensitive_var_conn_names,
            ),
            python_interpreter: config.core.python.clone(),
            python_sdk: crate::app::App::python_sdk_for_tasks(&crate::config::updraft_home())?,
            python_fork_server: config.worker.python_fork_server,
            max_starting: config.max_starting(crate::config::ClaimPath::OverHttp),
            traces: traces.clone(),
        },
        Arc::new(Notify::new()),
        Arc::new(|_| {}),
        crate::standalone::spawn_reaper(),
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let metrics_line = crate::metrics::serve_port(&config, None, shutdown_rx.clone()).await?;
    let running = tokio::spawn(worker.run(shutdown_rx));
    let shutdown = super::shutdown_signal();
    super::announce(&format!(
        "updraft worker {worker_id} is running\n  servers:     {}\n  queues:      {}\n  concurrency: {concurrency}\n{metrics_line}",
        servers.join(","),
        queues.join(",")
    ));
    info!(%worker_id, ?queues, "worker started");
    shutdown.await;
    info!("draining: no new tasks; waiting for the running ones");
    let _ = shutdown_tx.send(true);
    let _ = running.await;
    super::flush_traces(traces).await;
    info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}

//! `updraft api-server`: the task-execution API for remote workers, the public REST API
//! (`/api/v2`, `/auth`) and the health endpoint.
//! Stateless; run any number behind a load balancer. SIGTERM stops accepting connections and
//! lets the requests in flight finish.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tracing::{info, warn};
use updraft_api::ApiState;
use updraft_rest_api::HeartbeatSource;
use updraft_store::{JobHeartbeat, JobKind};

use crate::app::App;
use crate::recovery;

/// How often the server records that it is alive (`updraft jobs check --job-type api-server`).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(mut app: App, host: Option<String>, port: Option<u16>) -> Result<ExitCode> {
    crate::rest::ensure_jwt_secret(&app.home, &mut app.config, crate::rest::Server::ApiServer)?;
    crate::metrics::install(&app.config)?;
    // There is no scheduler in this process. On PostgreSQL the others learn of the API's
    // changes from the change feed; on SQLite, wake the one on the database as the CLI does.
    let notify: updraft_rest_api::Notifier = match app.sqlite_path() {
        Some(path) => {
            let path = path.to_path_buf();
            Arc::new(move || crate::wake::send(&path))
        }
        None => Arc::new(|| {}),
    };
    let rest = crate::rest::router(&app, notify, HeartbeatSource::Jobs)?;
    let c = &app.config;
    let host = host.unwrap_or_else(|| c.api.host.clone());
    let port = port.unwrap_or(c.api.port);
    let mut state = ApiState::new(app.store.clone(), c.api.worker_token.clone());
    if let Some(path) = app.sqlite_path() {
        // Without a change feed the scheduler on the file hears of remote tries' ends so.
        let path = path.to_path_buf();
        state.tries_finished = Some(Arc::new(move || crate::wake::send(&path)));
    }
    if c.api.worker_token.trim().is_empty() {
        anyhow::bail!(
            "api.worker_token is not set: set UPDRAFT_API__WORKER_TOKEN (or [api] worker_token) \
             to the secret your workers present"
        );
    }
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let address = listener.local_addr()?;
    let job_id = recovery::worker_id();
    let beats = tokio::spawn({
        let (store, id) = (app.store.clone(), job_id.clone());
        async move {
            loop {
                let beat = JobHeartbeat {
                    id: id.clone(),
                    kind: JobKind::ApiServer,
                    hostname: recovery::hostname(),
                    queues: Vec::new(),
                    state: "running".into(),
                    now: Utc::now(),
                };
                if let Err(e) = store.job_heartbeat(beat).await {
                    warn!(error = %e, "API server heartbeat failed");
                }
                tokio::time::sleep(HEARTBEAT_INTERVAL).await;
            }
        }
    });
    let shutdown = super::shutdown_signal();
    super::announce(&format!(
        "updraft api-server is running\n  api: http://{address}\n  REST API: http://{address}/api/v2 (reference: http://{address}/docs)\n  health: http://{address}/api/v2/monitor/health\n  metrics: http://{address}/metrics\n  database: {}\n",
        app.database_name()
    ));
    info!(%address, "API server started");
    updraft_api::serve_with(listener, state, rest, shutdown).await?;
    beats.abort();
    if let Err(e) = app.store.end_job(&job_id).await {
        warn!(error = %e, "could not remove this API server's heartbeat");
    }
    Ok(ExitCode::SUCCESS)
}

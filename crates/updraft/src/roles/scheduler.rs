//! `updraft scheduler`: the DAG processor and the scheduler against a shared database. Any
//! number run at once: each owns a fair share of the unfinished runs (leased, renewed every
//! sweep), committed changes of other processes wake it through the database's change feed
//! (PostgreSQL `LISTEN/NOTIFY`), and SIGTERM hands its runs over at once.

use std::process::ExitCode;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};
use updraft_scheduler::{Scheduler, SchedulerConfig, SchedulerSignal, SystemClock};
use updraft_store::{Change, JobKind};

use crate::app::App;
use crate::config::duration;
use crate::recovery;

/// How often a scheduler looks for work left by dead processes on its own host.
const ORPHAN_CHECK_INTERVAL: Duration = Duration::from_secs(10);

pub async fn run(app: App) -> Result<ExitCode> {
    let c = &app.config;
    let sweep_interval = duration("scheduler.sweep_interval", &c.scheduler.sweep_interval)?;
    let run_lease = duration("scheduler.lease", &c.scheduler.lease)?;
    if run_lease <= sweep_interval * 2 {
        bail!(
            "scheduler.lease ({}) must be more than twice scheduler.sweep_interval ({}): \
             runs are renewed every sweep",
            c.scheduler.lease,
            c.scheduler.sweep_interval
        );
    }
    crate::metrics::install(&app.config)?;
    let scheduler_id = recovery::worker_id();
    let traces = c.traces()?;
    let signal = Arc::new(SchedulerSignal::default());
    let heartbeat = Arc::new(AtomicI64::new(0));
    let scheduler = Arc::new(Scheduler::new(
        app.store.clone(),
        Arc::new(SystemClock),
        SchedulerConfig {
            parallelism: c.core.parallelism.max(1),
            sweep_interval,
            only_run: None,
            scheduler_id: scheduler_id.clone(),
            hostname: recovery::hostname(),
            job_kind: JobKind::Scheduler,
            run_lease,
            worker_lease: duration("worker.lease", &c.worker.lease)?,
            max_map_length: updraft_model::DEFAULT_MAX_MAP_LENGTH,
            traces: traces.clone(),
        },
        signal.clone(),
        // No worker in this process: workers learn of queued work from the database.
        Arc::new(Notify::new()),
        heartbeat.clone(),
    ));

    let folder = c.core.dags_folder.clone();
    let processor = if folder.is_dir() {
        let mut processor = app.dag_processor()?;
        processor.sync().await?;
        Some(processor)
    } else {
        warn!(folder = %folder.display(), "no DAG folder here: scheduling the DAGs other schedulers publish");
        None
    };
    if let Some(processor) = processor {
        let rescan = duration("core.dag_dir_list_interval", &c.core.dag_dir_list_interval)?;
        tokio::spawn(crate::standalone::watch_dag_folder(
            processor,
            folder.clone(),
            rescan,
            signal.clone(),
            Arc::new(updraft_rest_api::Heartbeats::default()),
        ));
    }
    if !follow_changes(&app, signal.clone()).await {
        if let Some(path) = app.sqlite_path() {
            // One scheduler on SQLite: CLI commands wake it through the socket.
            if let Ok(wake) = crate::wake::bind(path) {
                let signal = signal.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while wake.recv(&mut buf).await.is_ok() {
                        signal.everything_changed();
                    }
                });
            }
        }
    }
    let _ = recovery::adopt_orphans(&app.store, &scheduler).await?;
    tokio::spawn({
        let (store, scheduler, signal) = (app.store.clone(), scheduler.clone(), signal.clone());
        async move {
            loop {
                tokio::time::sleep(ORPHAN_CHECK_INTERVAL).await;
                match recovery::adopt_orphans(&store, &scheduler).await {
                    Ok(true) => signal.everything_changed(),
                    Ok(false) => {}
                    Err(e) => warn!(error = %format!("{e:#}"), "orphan check failed"),
                }
            }
        }
    });

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let deliverer = super::start_delivery(&app, super::DeliveryWake::Poll, shutdown_rx.clone())?;
    let retention = crate::retention::start(&app, scheduler_id.clone(), shutdown_rx.clone())?;
    crate::metrics::count_gauges(app.store.clone());
    let health = updraft_metrics::http::SchedulerHealth {
        heartbeat,
        threshold: duration(
            "api.scheduler_health_threshold",
            &app.config.api.scheduler_health_threshold,
        )?,
    };
    let metrics_line =
        crate::metrics::serve_port(&app.config, Some(health), shutdown_rx.clone()).await?;
    let running = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.run(shutdown_rx).await }
    });
    let shutdown = super::shutdown_signal();
    super::announce(&format!(
        "updraft scheduler {scheduler_id} is running\n  DAG folder:  {}\n  database:    {}\n{metrics_line}",
        folder.display(),
        app.database_name()
    ));
    info!(%scheduler_id, "scheduler started");
    shutdown.await;
    info!("shutting down: handing the runs over");
    let _ = shutdown_tx.send(true);
    let _ = running.await;
    let _ = deliverer.await;
    // Between batches nothing is half done: a batch not committed is rolled back.
    if let Some(retention) = retention {
        retention.abort();
    }
    super::flush_traces(traces).await;
    Ok(ExitCode::SUCCESS)
}

/// Turns the database's announcements of other processes' commits into scheduler signals.
/// Returns false when the database has no change feed.
async fn follow_changes(app: &App, signal: Arc<SchedulerSignal>) -> bool {
    let mut changes = match app.store.changes().await {
        Ok(Some(changes)) => changes,
        Ok(None) => return false,
        Err(e) => {
            warn!(error = %e, "no change feed: other processes' changes are seen at the next sweep");
            return false;
        }
    };
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            match change {
                Change::Runs(runs) => signal.runs_changed(runs),
                Change::TriesFinished { tries, reread } => {
                    signal.tries_finished(tries);
                    if !reread.is_empty() {
                        signal.runs_changed(reread);
                    }
                }
                // A next run moved: when the due runs are is worked out again.
                Change::Dags(_) | Change::Everything => signal.everything_changed(),
                Change::PlacesFree => signal.places_free(),
                Change::WorkQueued(_) | Change::Jobs => {}
            }
        }
    });
    true
}

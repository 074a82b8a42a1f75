//! `updraft standalone`: the DAG processor, the scheduler, a local worker pool, the public
//! REST API and the health endpoint in one process on one SQLite file. Also the in-process
//! engine of `dags test`.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};
use updraft_scheduler::{FinishedTry, Scheduler, SchedulerConfig, SchedulerSignal, SystemClock};
use updraft_store::{DagRun, JobKind, StoreExecution};
use updraft_worker::{LocalWorker, LocalWorkerConfig};

use crate::app::App;
use crate::config::duration;
use crate::dag_processor::DagProcessor;
use crate::recovery;
use updraft_rest_api::{HeartbeatSource, Heartbeats};

/// Generates the secrets `standalone` needs into `updraft.toml` on first start (Airflow's
/// standalone does the same): `core.fernet_key`, so connections and variables are encrypted
/// at rest from the start.
pub fn generate_secrets(config: &crate::config::Config) -> Result<()> {
    if config.core.fernet_key.trim().is_empty() {
        let home = crate::config::updraft_home();
        let (_, generated) = crate::config::ensure_generated(&home, "core", "fernet_key", || {
            updraft_secrets::generate_fernet_key()
        })?;
        if generated {
            info!(file = %home.join("updraft.toml").display(), "generated core.fernet_key");
        }
    }
    Ok(())
}

/// The scheduler and local worker of one process, wired together.
struct Engine {
    scheduler: Arc<Scheduler>,
    worker: Arc<LocalWorker>,
    signal: Arc<SchedulerSignal>,
    /// Fed by both: the scheduler's run spans, the worker's try spans.
    traces: updraft_telemetry::Traces,
}

fn engine(app: &App, only_run: Option<i64>, heartbeat: Arc<AtomicI64>) -> Result<Engine> {
    let c = &app.config;
    let traces = c.traces()?;
    let signal = Arc::new(SchedulerSignal::default());
    let work_queued = Arc::new(Notify::new());
    let scheduler = Arc::new(Scheduler::new(
        app.store.clone(),
        Arc::new(SystemClock),
        SchedulerConfig {
            parallelism: c.core.parallelism.max(1),
            sweep_interval: duration("scheduler.sweep_interval", &c.scheduler.sweep_interval)?,
            only_run,
            scheduler_id: recovery::worker_id(),
            hostname: recovery::hostname(),
            job_kind: JobKind::Standalone,
            run_lease: duration("scheduler.lease", &c.scheduler.lease)?,
            worker_lease: duration("worker.lease", &c.worker.lease)?,
            max_map_length: updraft_model::DEFAULT_MAX_MAP_LENGTH,
            traces: traces.clone(),
        },
        signal.clone(),
        work_queued.clone(),
        heartbeat,
    ));
    let hook_signal = signal.clone();
    let worker = LocalWorker::new(
        Arc::new(StoreExecution(app.store.clone())),
        worker_config(app, only_run, traces.clone())?,
        work_queued,
        Arc::new(move |reported: updraft_worker::Reported| {
            hook_signal.tries_finished(
                reported
                    .applied
                    .iter()
                    .map(|(run, report)| FinishedTry::from_report(*run, report)),
            );
            if !reported.refused_runs.is_empty() {
                hook_signal.runs_changed(reported.refused_runs);
            }
            if !reported.changed_runs.is_empty() {
                hook_signal.runs_changed(reported.changed_runs);
            }
            // Tasks a try skipped changed beside it: those runs are read again.
            let skipped: Vec<i64> = reported
                .applied
                .iter()
                .filter(|(_, report)| !report.effects.skip.is_empty())
                .map(|(run, _)| *run)
                .collect();
            if !skipped.is_empty() {
                hook_signal.runs_changed(skipped);
            }
        }),
        spawn_reaper(),
    );
    Ok(Engine {
        scheduler,
        worker,
        signal,
        traces,
    })
}

/// The local worker's settings from the configuration; `only_run` for `dags test`.
pub fn worker_config(
    app: &App,
    only_run: Option<i64>,
    traces: updraft_telemetry::Traces,
) -> Result<LocalWorkerConfig> {
    let c = &app.config;
    Ok(LocalWorkerConfig {
        worker_id: recovery::worker_id(),
        hostname: recovery::hostname(),
        concurrency: c.worker.concurrency.unwrap_or(c.core.parallelism).max(1) as usize,
        queues: None,
        only_run,
        base_log_folder: c.logging.base_log_folder.clone(),
        heartbeat_interval: duration("worker.heartbeat_interval", &c.worker.heartbeat_interval)?,
        lease: duration("worker.lease", &c.worker.lease)?,
        kill_grace: duration("worker.kill_grace", &c.worker.kill_grace)?,
        direct_exec: c.worker.direct_exec,
        drain_grace: None,
        announce: false,
        sensitive_names: updraft_secrets::SensitiveNames::new(&c.core.sensitive_var_conn_names),
        python_interpreter: c.core.python.clone(),
        python_sdk: App::python_sdk_for_tasks(&app.home)?,
        python_fork_server: c.worker.python_fork_server,
        max_starting: c.max_starting(crate::config::ClaimPath::InProcess),
        traces,
    })
}

/// How often `standalone` looks for work left by dead processes on this host (a crashed
/// `dags test`, a worker killed while a previous standalone ran).
const ORPHAN_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The hidden argument that turns this binary into the reaper of its parent's tasks.
pub const REAPER_ARG: &str = "__reaper";

/// The reaper [`fork_reaper`] forked, until the role's worker takes it.
static FORKED_REAPER: std::sync::Mutex<Option<updraft_worker::Reaper>> =
    std::sync::Mutex::new(None);

/// Forks the reaper of a role that runs tasks for long (`standalone`, `worker`): a forked
/// reaper shares the process's pages, where one started as a program loads its own copy of
/// the binary. `main` calls it before it starts the runtime, while the process has one thread;
/// should the fork fail, [`spawn_reaper`] starts the reaper as a program instead (and says so
/// if that fails too).
pub fn fork_reaper() {
    // SAFETY: called by `main` before any thread is started (see above).
    if let Ok(reaper) = unsafe { updraft_worker::Reaper::fork() } {
        if let Ok(mut slot) = FORKED_REAPER.lock() {
            *slot = Some(reaper);
        }
    }
}

/// The reaper for this process's worker: the one [`fork_reaper`] forked, else one started by
/// running this program again with [`REAPER_ARG`].
pub fn spawn_reaper() -> Option<updraft_worker::Reaper> {
    if let Some(reaper) = FORKED_REAPER.lock().ok().and_then(|mut slot| slot.take()) {
        return Some(reaper);
    }
    let exe = std::env::current_exe().ok()?;
    match updraft_worker::Reaper::spawn(&exe, &[REAPER_ARG]) {
        Ok(reaper) => Some(reaper),
        Err(e) => {
            warn!(error = %e, "cannot start the reaper; task processes may outlive a crash");
            None
        }
    }
}

pub async fn run(mut app: App, host: Option<String>, port: Option<u16>) -> Result<ExitCode> {
    let Some(db_path) = app.sqlite_path().map(Path::to_path_buf) else {
        bail!(
            "standalone runs on SQLite; on PostgreSQL run `updraft scheduler`, `updraft api-server` \
             and `updraft worker` (see the README's cluster section)"
        );
    };
    let _lock = lock_database(&db_path)?;
    crate::metrics::install(&app.config)?;
    crate::rest::ensure_jwt_secret(&app.home, &mut app.config, crate::rest::Server::Standalone)?;
    let admin = crate::commands::users::ensure_standalone_admin(&app).await?;
    let host = host.unwrap_or_else(|| app.config.api.host.clone());
    let port = port.unwrap_or(app.config.api.port);
    let dags_folder = app.config.core.dags_folder.clone();
    std::fs::create_dir_all(&dags_folder)
        .with_context(|| format!("cannot create the DAG folder {}", dags_folder.display()))?;

    let heartbeats = Arc::new(Heartbeats::default());
    let mut processor = app.dag_processor()?;
    processor.sync().await?;
    Heartbeats::beat(&heartbeats.dag_processor);

    let engine = engine(&app, None, heartbeats.scheduler.clone())?;
    Heartbeats::beat(&heartbeats.scheduler);
    let _ = recovery::adopt_orphans(&app.store, &engine.scheduler).await?;

    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    let address = listener.local_addr()?;
    let wake = crate::wake::bind(&db_path)
        .map_err(|e| warn!(error = %e, "no wake-up socket: CLI changes are seen at the next sweep"))
        .ok();

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let scheduler = tokio::spawn({
        let s = engine.scheduler.clone();
        let rx = shutdown_rx.clone();
        async move { s.run(rx).await }
    });
    let worker = tokio::spawn(engine.worker.clone().run(shutdown_rx.clone()));
    let deliverer = crate::roles::start_delivery(
        &app,
        crate::roles::DeliveryWake::Changes,
        shutdown_rx.clone(),
    )?;
    let retention = crate::retention::start(&app, recovery::worker_id(), shutdown_rx.clone())?;
    crate::metrics::count_gauges(app.store.clone());
    let signal = engine.signal.clone();
    if let Some(wake) = wake {
        let store = app.store.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while wake.recv(&mut buf).await.is_ok() {
                signal.everything_changed();
                // What a CLI command committed, for this process's watchers (the web UI).
                store.announce(updraft_store::Change::Everything);
            }
        });
    }
    tokio::spawn({
        let store = app.store.clone();
        let scheduler = engine.scheduler.clone();
        let signal = engine.signal.clone();
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
    let rescan = duration(
        "core.dag_dir_list_interval",
        &app.config.core.dag_dir_list_interval,
    )?;
    tokio::spawn(watch_dag_folder(
        processor,
        dags_folder.clone(),
        rescan,
        engine.signal.clone(),
        heartbeats.clone(),
    ));
    // A change made through the REST API (a trigger, a clear, a pause) wakes the scheduler
    // of this process at once, as a CLI command's datagram does.
    let notify = {
        let signal = engine.signal.clone();
        Arc::new(move || signal.everything_changed())
    };
    let routes = crate::rest::router(&app, notify, HeartbeatSource::InProcess(heartbeats))?
        .method_not_allowed_fallback(updraft_rest_api::method_not_allowed)
        .fallback(updraft_rest_api::route_not_found)
        // Last, over every route, so that it sees each request's route template.
        .layer(axum::middleware::from_fn(
            updraft_metrics::http::track_requests,
        ));
    // Before the health endpoint answers: a supervisor may send SIGTERM as soon as it says
    // healthy, and without the handler that would kill the process outright.
    let shutdown = crate::roles::shutdown_signal();
    let http = axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown({
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.changed().await;
        }
    });
    let http = tokio::spawn(async move { http.await });

    // Written once and never fatal: a closed stdout (`| head`, a supervisor that stopped
    // reading) must not take the scheduler down.
    let banner = format!(
        "{admin}updraft standalone is running\n  REST API:    http://{address}/api/v2 (reference: http://{address}/docs)\n  health:      http://{address}/api/v2/monitor/health\n  metrics:     http://{address}/metrics\n  DAG folder:  {}\n  database:    {}\n",
        dags_folder.display(),
        db_path.display()
    );
    {
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let _ = stdout
            .write_all(banner.as_bytes())
            .and_then(|()| stdout.flush());
    }
    info!(%address, "standalone started");

    shutdown.await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = worker.await;
    let _ = scheduler.await;
    let _ = deliverer.await;
    // Between batches nothing is half done: a batch not committed is rolled back.
    if let Some(retention) = retention {
        retention.abort();
    }
    let _ = http.await;
    crate::roles::flush_traces(engine.traces).await;
    Ok(ExitCode::SUCCESS)
}

/// Runs one DAG run to its end with this process's own scheduler and worker (`dags test`).
pub async fn run_one(app: &App, run: &DagRun) -> Result<DagRun> {
    let engine = engine(app, Some(run.id), Arc::new(AtomicI64::new(0)))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let scheduler = tokio::spawn({
        let s = engine.scheduler.clone();
        let rx = shutdown_rx.clone();
        async move { s.run(rx).await }
    });
    let worker = tokio::spawn(engine.worker.clone().run(shutdown_rx));
    let finished = loop {
        let current = app.store.get_dag_run_by_id(run.id).await?;
        if current.state.is_finished() {
            break current;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let _ = shutdown_tx.send(true);
    let _ = worker.await;
    let _ = scheduler.await;
    crate::roles::flush_traces(engine.traces).await;
    // As Airflow's `dags test` runs the callbacks: one attempt at what is due now (the run's
    // notifications among them); what fails is left to `standalone` or a scheduler to retry.
    let deliverer = crate::roles::deliverer(app)?;
    loop {
        match deliverer.deliver_due().await {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => {
                warn!(error = %e, "cannot deliver the run's notifications");
                break;
            }
        }
    }
    Ok(finished)
}

/// Re-syncs the DAG folder when a file in it changes (inotify), and every `rescan` anyway.
pub async fn watch_dag_folder(
    mut processor: DagProcessor,
    folder: std::path::PathBuf,
    rescan: Duration,
    signal: Arc<SchedulerSignal>,
    heartbeats: Arc<Heartbeats>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => {
            use notify::Watcher;
            if let Err(e) = w.watch(&folder, notify::RecursiveMode::Recursive) {
                warn!(error = %e, "cannot watch the DAG folder; relying on periodic rescans");
            }
            Some(w)
        }
        Err(e) => {
            warn!(error = %e, "cannot watch the DAG folder; relying on periodic rescans");
            None
        }
    };
    loop {
        tokio::select! {
            Some(()) = rx.recv() => {
                // Editors write a file in several steps; let them finish.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(rescan) => {}
        }
        match processor.sync().await {
            Ok(report) => {
                Heartbeats::beat(&heartbeats.dag_processor);
                if !report.added.is_empty()
                    || !report.updated.is_empty()
                    || !report.deactivated.is_empty()
                {
                    signal.everything_changed();
                }
            }
            Err(e) => warn!(error = %format!("{e:#}"), "DAG folder sync failed"),
        }
    }
}

/// Whether a `standalone` holds the database (so queued runs will be picked up).
pub fn is_running(db_path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(lock_path(db_path)) else {
        return false;
    };
    // SAFETY: flock on a file descriptor we own; released when `file` is dropped.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 }
}

fn lock_path(db_path: &Path) -> std::ffi::OsString {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".lock");
    name
}

/// One `standalone` per database: a second one would run every task twice.
fn lock_database(db_path: &Path) -> Result<std::fs::File> {
    let name = lock_path(db_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .with_context(|| format!("cannot open the lock file {}", Path::new(&name).display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        bail!(
            "another updraft standalone is already running on {}",
            db_path.display()
        );
    }
    Ok(file)
}

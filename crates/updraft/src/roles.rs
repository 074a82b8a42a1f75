//! The long-running cluster roles besides `standalone`: `scheduler`, `api-server` and the
//! remote `worker`. Each runs until SIGTERM or SIGINT and then hands its work over.

pub mod api_server;
pub mod scheduler;
pub mod worker;

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called,
/// not when it is first awaited: called before the process says it is ready, a supervisor's
/// SIGTERM sent right after that cannot kill it outright (the default action).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

/// Writes a line on stdout that supervisors and tests read (addresses); a closed stdout must
/// not stop the process.
pub fn announce(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Sends the spans still queued before the process exits, waiting a few seconds at most (a
/// collector that is down costs no more).
pub async fn flush_traces(traces: updraft_telemetry::Traces) {
    if traces.is_on() {
        let _ =
            tokio::task::spawn_blocking(move || traces.shutdown(std::time::Duration::from_secs(5)))
                .await;
    }
}

/// How a delivery loop learns of new notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryWake {
    /// It looks every `notifications.poll_interval`: a `scheduler`, beside which other
    /// processes add notifications (watching their commits would take one more database
    /// connection, listening, in every scheduler).
    Poll,
    /// The store's changes wake it: `standalone`, whose store sees every commit.
    Changes,
}

/// Starts this process's notification delivery loop (`standalone` and every `scheduler`:
/// the processes that hold the database), until `shutdown`.
pub fn start_delivery(
    app: &crate::app::App,
    wake: DeliveryWake,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut deliverer = deliverer(app)?;
    if wake == DeliveryWake::Changes {
        deliverer = deliverer.waking_on(app.store.watch());
    }
    Ok(tokio::spawn(std::sync::Arc::new(deliverer).run(shutdown)))
}

/// This process's deliverer of notifications, Python callbacks run with the interpreter and
/// SDK of Python tasks.
pub fn deliverer(app: &crate::app::App) -> anyhow::Result<updraft_worker::notify::Deliverer> {
    let config = app.config.delivery(&crate::recovery::worker_id())?;
    let python = updraft_worker::notify::PythonCallbacks {
        interpreter: app.config.core.python.clone(),
        sdk: crate::app::App::python_sdk_for_tasks(&app.home)?,
    };
    Ok(updraft_worker::notify::Deliverer::new(app.store.clone(), config).with_python(python))
}

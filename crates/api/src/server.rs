//! The API server: its state, its routes and serving them with graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use updraft_store::Store;

use crate::auth::{require_token, WorkerToken};
use crate::error::{method_not_allowed, not_found};
use crate::wake::{self, TaskGuard, Wake};
use crate::wire::EXECUTION_PREFIX;
use crate::{execution, ApiError};

/// The largest request body accepted (log chunks and XComs are the big ones).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// What an API server needs; one per process, whatever the number of servers in the cluster
/// (they share nothing but the database).
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    /// The secret remote workers present as `Authorization: Bearer <token>`. An empty token
    /// makes [`router`] and [`serve`] fail: the server never accepts everyone.
    pub worker_token: String,
    /// Poked by the embedding process when it knows that work was queued (its scheduler):
    /// claims waiting for work look again at once. Every poke, `notify_one` or
    /// `notify_waiters`, wakes every waiting claim. The server consumes the `notify_one`
    /// permits, so give it a `Notify` of its own rather than one a local worker also waits on.
    /// Work queued by other processes comes through the store's change feed
    /// ([`Store::changes`]) when it has one; otherwise waiting claims look every second.
    pub work_queued: Arc<Notify>,
    /// Called after a finish request ended a try. On a database without a change feed
    /// (SQLite), the embedding process wakes the scheduler on the same file with it, as it
    /// does for the REST API's changes.
    pub tries_finished: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl ApiState {
    pub fn new(store: Arc<dyn Store>, worker_token: impl Into<String>) -> Self {
        ApiState {
            store,
            worker_token: worker_token.into(),
            work_queued: Arc::new(Notify::new()),
            tries_finished: None,
        }
    }
}

/// What the handlers share.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub wake: Arc<Wake>,
    pub tries_finished: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Stops the wake-up tasks when the last router clone is dropped.
    _tasks: TaskGuard,
}

/// The routes of the API server: `/execution/v1/…` (worker token). Must be called inside a tokio runtime: it spawns the
/// tasks that wake waiting claims, which end when the router is dropped.
pub fn router(state: ApiState) -> Result<Router, ApiError> {
    build(state).map(|(router, _)| router)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then stops accepting
/// connections, answers claims that wait for work at once (with what they claimed so far:
/// nothing) and lets every request in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with more routes beside the API server's own (the public REST API). `more` must
/// not route a path the API server routes, nor set a fallback (the API server's answers
/// unknown paths). Requests carry the client's address (`ConnectInfo<SocketAddr>`).
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    more: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let (router, wake) = build(state)?;
    // Last, over the execution API and `more` alike, so each request is timed once, by its
    // route's template.
    let router = router.merge(more).layer(axum::middleware::from_fn(
        updraft_metrics::http::track_requests,
    ));
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "API server listening");
    }
    let signal = async move {
        shutdown.await;
        tracing::info!("API server shutting down: finishing the requests in flight");
        wake.close();
    };
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(signal)
        .await?;
    tracing::info!("API server stopped");
    Ok(())
}

fn build(state: ApiState) -> Result<(Router, Arc<Wake>), ApiError> {
    let token = WorkerToken::new(&state.worker_token)?;
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ApiError::NoRuntime)?;
    let wake = Arc::new(Wake::new());
    let tasks = wake::spawn(&wake, state.store.clone(), state.work_queued, &runtime);
    let shared = Arc::new(Shared {
        store: state.store,
        wake: wake.clone(),
        tries_finished: state.tries_finished,
        _tasks: tasks,
    });

    let execution = Router::new()
        .route("/claim", post(execution::claim))
        .route("/heartbeat", post(execution::heartbeat))
        .route("/finish", post(execution::finish))
        .route("/logs", post(execution::append_log))
        .route(
            "/dags/{dag_id}/versions/{version}",
            get(execution::dag_version),
        )
        .route(
            "/dags/{dag_id}/versions/{version}/source",
            get(execution::dag_source),
        )
        .route("/runs/{dag_run_id}/xcoms", get(execution::xcoms))
        .route(
            "/runs/{dag_run_id}/triggering-asset-events",
            get(execution::triggering_asset_events),
        )
        .route(
            "/variables",
            get(execution::variables).post(execution::set_variable),
        )
        .route("/connections", get(execution::connections))
        .route("/dag-runs", post(execution::trigger_dag_run))
        .route(
            "/dag-runs/{dag_id}/{run_id}/state",
            get(execution::dag_run_state),
        )
        .route("/workers/heartbeat", post(execution::worker_heartbeat))
        .route_layer(middleware::from_fn_with_state(token, require_token))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));

    let router = Router::new()
        .nest(EXECUTION_PREFIX, execution)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(shared);
    Ok((router, wake))
}

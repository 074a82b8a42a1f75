//! The `/execution/v1/` routes: the task-execution operations on the store, for remote
//! workers. Instants that bound leases come from this server's clock.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use tokio::time::Instant;
use updraft_store::{
    ClaimedTask, DagSource, FinishReport, JobHeartbeat, LogAppend, LogChunk, TaskExecution,
    TransitionResult, TriggerDagRunOutcome, TriggerDagRunRequest, XCom,
};

use crate::error::{Body, HttpError};
use crate::server::Shared;
use crate::validate;
use crate::wire::{ClaimBody, DagRunStateBody, HeartbeatBody, HeartbeatReply, VariableBody};

/// Without a change feed, a waiting claim looks for work this often (work queued by another
/// process is announced to nobody).
const POLL_WITHOUT_FEED: Duration = Duration::from_secs(1);

type Reply<T> = Result<Json<T>, HttpError>;

/// The parameters of `dags/{dag_id}/versions/{version}`, by name, so that a rejection names
/// the one that does not parse.
#[derive(Deserialize)]
pub(crate) struct DagVersionPath {
    dag_id: String,
    version: i64,
}

/// The parameter of `runs/{dag_run_id}/xcoms`.
#[derive(Deserialize)]
pub(crate) struct RunPath {
    dag_run_id: i64,
}

/// `POST /execution/v1/claim`: claims at once; when nothing was claimed, waits up to
/// `wait_ms` for work to be queued and claims again. A client that goes away while the claim
/// waits drops this future, so nothing is claimed for it.
pub(crate) async fn claim(
    State(shared): State<Arc<Shared>>,
    Body(body): Body<ClaimBody>,
) -> Reply<Vec<ClaimedTask>> {
    // Checked once up front, so that a bad body is refused before any wait.
    validate::claim_request(&body, Utc::now())?;
    let wait = validate::claim_wait(&body);
    let deadline = Instant::now() + wait;
    let mut closing = shared.wake.closing();
    let mut first = true;
    loop {
        if !first && *closing.borrow() {
            return Ok(Json(Vec::new()));
        }
        first = false;
        // Subscribed before claiming: work queued after this claim looked wakes the wait.
        let mut woken = shared.wake.subscribe();
        let claimed = claim_now(&shared, &body).await?;
        let now = Instant::now();
        if !claimed.is_empty() || body.limit == 0 || now >= deadline || *closing.borrow() {
            if !claimed.is_empty() {
                tracing::debug!(
                    worker_id = %body.worker_id,
                    count = claimed.len(),
                    "claimed tasks for a remote worker"
                );
            }
            return Ok(Json(claimed));
        }
        let look_again = if shared.wake.feed_live() {
            deadline
        } else {
            deadline.min(now + POLL_WITHOUT_FEED)
        };
        tokio::select! {
            Ok(()) = woken.changed() => {}
            _ = tokio::time::sleep_until(look_again) => {}
            Ok(_) = closing.wait_for(|closing| *closing) => return Ok(Json(Vec::new())),
        }
    }
}

/// Claims with a lease counted from now (a claim that waited leases from when it claims).
async fn claim_now(shared: &Shared, body: &ClaimBody) -> Result<Vec<ClaimedTask>, HttpError> {
    let request = validate::claim_request(body, Utc::now())?;
    Ok(shared.store.claim(request).await?)
}

/// `POST /execution/v1/heartbeat`: renews leases from now; answers the claims that were lost.
pub(crate) async fn heartbeat(
    State(shared): State<Arc<Shared>>,
    Body(body): Body<HeartbeatBody>,
) -> Reply<HeartbeatReply> {
    let lease_until = validate::lease_until(Utc::now(), body.lease_secs)?;
    let lost = shared.store.heartbeat(&body.claim_ids, lease_until).await?;
    if !lost.is_empty() {
        tracing::info!(lost = ?lost, "a remote worker lost claims");
    }
    Ok(Json(HeartbeatReply { lost }))
}

/// `POST /execution/v1/finish`.
pub(crate) async fn finish(
    State(shared): State<Arc<Shared>>,
    Body(reports): Body<Vec<FinishReport>>,
) -> Reply<Vec<TransitionResult>> {
    let results = shared.store.finish(reports).await?;
    if let Some(tell) = &shared.tries_finished {
        if results.contains(&TransitionResult::Applied) {
            tell();
        }
    }
    Ok(Json(results))
}

/// `POST /execution/v1/logs`.
pub(crate) async fn append_log(
    State(shared): State<Arc<Shared>>,
    Body(chunk): Body<LogChunk>,
) -> Reply<LogAppend> {
    Ok(Json(shared.store.append_log(chunk).await?))
}

/// `GET /execution/v1/dags/{dag_id}/versions/{version}`.
pub(crate) async fn dag_version(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<DagVersionPath>, PathRejection>,
) -> Reply<Arc<updraft_model::Dag>> {
    let Path(DagVersionPath { dag_id, version }) = path?;
    Ok(Json(shared.store.get_dag_version(&dag_id, version).await?))
}

/// `GET /execution/v1/dags/{dag_id}/versions/{version}/source`: the DAG file's text at that
/// version and its path (what a Python task executes).
pub(crate) async fn dag_source(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<DagVersionPath>, PathRejection>,
) -> Reply<DagSource> {
    let Path(DagVersionPath { dag_id, version }) = path?;
    let execution = updraft_store::StoreExecution(shared.store.clone());
    Ok(Json(execution.dag_source(&dag_id, version).await?))
}

/// The parameters of `dag-runs/{dag_id}/{run_id}/state`.
#[derive(Deserialize)]
pub(crate) struct DagRunPath {
    dag_id: String,
    run_id: String,
}

/// `POST /execution/v1/dag-runs`: creates (or resets) the run a trigger task asks for; a
/// missing DAG or an existing run is an outcome for the worker to act on, not an error.
pub(crate) async fn trigger_dag_run(
    State(shared): State<Arc<Shared>>,
    Body(request): Body<TriggerDagRunRequest>,
) -> Reply<TriggerDagRunOutcome> {
    validate::check_trigger_dag_run(&request)?;
    let outcome =
        updraft_store::trigger_dag_run(shared.store.as_ref(), request, Utc::now()).await?;
    Ok(Json(outcome))
}

/// `GET /execution/v1/dag-runs/{dag_id}/{run_id}/state`: `{"state": …}`.
pub(crate) async fn dag_run_state(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<DagRunPath>, PathRejection>,
) -> Reply<DagRunStateBody> {
    let Path(DagRunPath { dag_id, run_id }) = path?;
    let state = updraft_store::dag_run_state(shared.store.as_ref(), &dag_id, &run_id).await?;
    Ok(Json(DagRunStateBody { state }))
}

/// `POST /execution/v1/variables`: sets one variable.
pub(crate) async fn set_variable(
    State(shared): State<Arc<Shared>>,
    Body(variable): Body<VariableBody>,
) -> Result<StatusCode, HttpError> {
    shared
        .store
        .set_variable(&variable.key, &variable.value)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /execution/v1/runs/{dag_run_id}/xcoms`.
pub(crate) async fn xcoms(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<RunPath>, PathRejection>,
) -> Reply<Vec<XCom>> {
    let Path(RunPath { dag_run_id }) = path?;
    Ok(Json(shared.store.xcoms_for_run(dag_run_id).await?))
}

/// `GET /execution/v1/runs/{dag_run_id}/triggering-asset-events`: the asset events that
/// triggered the run (for its tasks' `triggering_asset_events`).
pub(crate) async fn triggering_asset_events(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<RunPath>, PathRejection>,
) -> Reply<Vec<updraft_store::AssetEvent>> {
    let Path(RunPath { dag_run_id }) = path?;
    Ok(Json(
        shared.store.triggering_asset_events(dag_run_id).await?,
    ))
}

/// `GET /execution/v1/variables`: `[[key, value], …]`.
pub(crate) async fn variables(State(shared): State<Arc<Shared>>) -> Reply<Vec<(String, String)>> {
    Ok(Json(shared.store.list_variables().await?))
}

/// `GET /execution/v1/connections`: the database's connections, decrypted, for the templates
/// of the worker (which is trusted with them, as Airflow's execution API trusts it).
pub(crate) async fn connections(
    State(shared): State<Arc<Shared>>,
) -> Reply<Vec<updraft_store::ConnectionRecord>> {
    Ok(Json(
        updraft_store::all_connections(shared.store.as_ref()).await?,
    ))
}

/// `POST /execution/v1/workers/heartbeat`: records the worker as alive at this server's time.
pub(crate) async fn worker_heartbeat(
    State(shared): State<Arc<Shared>>,
    Body(mut beat): Body<JobHeartbeat>,
) -> Result<StatusCode, HttpError> {
    validate::check_worker_heartbeat(&beat)?;
    beat.now = Utc::now();
    shared.store.job_heartbeat(beat).await?;
    Ok(StatusCode::NO_CONTENT)
}

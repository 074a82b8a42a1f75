//! The metadata store interface: the records updraft keeps and the operations on them. Backends
//! (`updraft-store-sqlite`, later PostgreSQL) implement [`Store`]; nothing outside them knows SQL.
//!
//! Every task instance state change is a compare-and-set on (id, try number, expected state): a
//! write that lost a race changes nothing and is reported as [`TransitionResult::Conflict`].

mod record;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use record::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("database error: {0}")]
    Database(String),
    /// The database schema is newer than this binary knows.
    #[error("database schema version {found} is newer than this updraft supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Stored data that cannot be decoded (a corrupt row, or a bug).
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    #[error(transparent)]
    IllegalTransition(#[from] updraft_model::state::IllegalTransition),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A trivial round trip, for health checks.
    async fn ping(&self) -> Result<()>;

    // --- DAGs, as published by the DAG processor ---

    /// Makes the database match a scan of the DAG folder: new and changed DAGs get a new
    /// version, DAGs whose file is gone become inactive, import errors are replaced.
    async fn sync_dags(&self, sync: DagSync) -> Result<SyncReport>;
    async fn list_dags(&self) -> Result<Vec<DagRecord>>;
    async fn get_dag(&self, dag_id: &str) -> Result<DagRecord>;
    async fn get_dag_version(&self, dag_id: &str, version: i64) -> Result<updraft_model::Dag>;
    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<()>;
    async fn list_import_errors(&self) -> Result<Vec<ImportErrorRecord>>;
    /// Active, unpaused DAGs with a schedule whose next run is unknown (new or changed).
    async fn dags_needing_next_run(&self) -> Result<Vec<DagRecord>>;
    async fn set_next_dagrun(&self, dag_id: &str, next: Option<DateTime<Utc>>) -> Result<()>;
    /// Active, unpaused DAGs whose next scheduled run is due at `now`.
    async fn due_dags(&self, now: DateTime<Utc>) -> Result<Vec<DagRecord>>;
    /// The earliest `next_dagrun` of any active, unpaused DAG: when the scheduler must wake.
    async fn earliest_next_dagrun(&self) -> Result<Option<DateTime<Utc>>>;
    /// The logical date of the newest scheduled run of a DAG.
    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>>;

    // --- DAG runs ---

    /// Creates a run and its task instances (state `none`) in one transaction; for scheduled
    /// runs also moves the DAG's `next_dagrun` on to `next_dagrun`.
    async fn create_dag_run(&self, run: NewDagRun) -> Result<DagRun>;
    async fn get_dag_run(&self, dag_id: &str, run_id: &str) -> Result<DagRun>;
    async fn get_dag_run_by_id(&self, id: i64) -> Result<DagRun>;
    async fn list_dag_runs(&self, dag_id: &str) -> Result<Vec<DagRun>>;
    /// Runs that are queued or running, oldest logical date first.
    async fn unfinished_dag_runs(&self) -> Result<Vec<DagRun>>;
    /// Hands a run whose runner died over to the schedulers (clears `runner`).
    async fn release_dag_run(&self, id: i64) -> Result<()>;
    async fn set_dag_run_state(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult>;

    // --- task instances ---

    async fn task_instances(&self, dag_run_id: i64) -> Result<Vec<TaskInstance>>;
    /// Applies a batch of compare-and-set state changes in one transaction.
    async fn apply_transitions(&self, batch: Vec<Transition>) -> Result<Vec<TransitionResult>>;
    /// Queued and running task instances, per DAG and per pool, for concurrency limits.
    async fn occupancy(&self) -> Result<Occupancy>;
    /// The earliest `next_retry_at` of an `up_for_retry` task in an unfinished run.
    async fn earliest_retry(&self) -> Result<Option<DateTime<Utc>>>;
    /// Resets the given tasks (and what the caller computed as their downstream) to `none`
    /// so they run again; running ones become `restarting`. Reopens finished runs.
    async fn clear_task_instances(
        &self,
        dag_run_id: i64,
        task_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<usize>;

    // --- workers ---

    /// Atomically moves up to `limit` queued task instances of `queues` to `running`,
    /// recording the claim and its lease, highest priority first.
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>>;
    /// Extends the leases of the claims a worker still holds; returns the claims it lost.
    async fn heartbeat(
        &self,
        claim_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>>;
    /// Records finished tries (state, end, XCom) in one transaction; a report for a try the
    /// worker no longer owns is a conflict and changes nothing.
    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>>;
    /// Running (or restarting) task instances whose lease ran out before `now`.
    async fn expired_claims(&self, now: DateTime<Utc>) -> Result<Vec<TaskInstance>>;
    /// Claims recorded for `worker_id` that are still running (to clean up after a crash).
    async fn claims_of_worker(&self, worker_id: &str) -> Result<Vec<TaskInstance>>;
    /// Every running (or restarting) task instance, whoever holds it.
    async fn running_task_instances(&self) -> Result<Vec<TaskInstance>>;

    // --- XCom and variables ---

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>>;
    async fn get_variable(&self, key: &str) -> Result<Option<String>>;
    async fn set_variable(&self, key: &str, value: &str) -> Result<()>;
    async fn delete_variable(&self, key: &str) -> Result<bool>;
    async fn list_variables(&self) -> Result<Vec<(String, String)>>;
}

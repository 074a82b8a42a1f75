//! The metadata store interface: the records updraft keeps and the operations on them. Backends
//! (`updraft-store-sqlite`, later PostgreSQL) implement [`Store`]; nothing outside them knows SQL.
//!
//! Every task instance state change is a compare-and-set on (id, try number, expected state): a
//! write that lost a race changes nothing and is reported as [`TransitionResult::Conflict`].

mod asset;
mod auth;
mod backfill;
mod browse;
pub mod codec;
mod connection;
mod dag_sync;
mod event_log;
mod execution;
mod manage;
mod notification;
mod record;
pub mod retention;
mod secret;
mod shared_dags;
mod task_log;
mod transition;
mod triggered_run;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use asset::*;
pub use auth::*;
pub use backfill::*;
pub use browse::*;
pub use connection::*;
pub use dag_sync::*;
pub use event_log::*;
pub use execution::{DagSource, StoreExecution, TaskExecution};
pub use manage::*;
pub use notification::*;
pub use record::*;
pub use retention::{
    clean_history, ArchiveStamp, CleanBatch, CleanRequest, CleanSummary, CleanTable, Cleaned,
    DeletedTry, RetentionStore,
};
pub use secret::Secrets;
pub use shared_dags::SharedDags;
pub use task_log::{log_path, read_try_log, TryLog};
pub use transition::*;
pub use triggered_run::*;

/// [`Store::queue_planned`] as three calls: the plan applied, the occupancy read, the items
/// that fit within `parallelism` queued. What a store does when it cannot make it one.
pub async fn queue_planned_apart<S: Store + ?Sized>(
    store: &S,
    plan: Vec<Transition>,
    mut items: Vec<QueueItem>,
    parallelism: u32,
    now: DateTime<Utc>,
) -> Result<(Vec<TransitionResult>, Vec<TransitionResult>)> {
    let applied = store.apply_transitions(plan).await?;
    let asked = items.len();
    let room = parallelism.saturating_sub(store.occupancy().await?.total) as usize;
    items.truncate(room);
    let mut queued = store.queue(items, now).await?;
    queued.resize(asked, TransitionResult::Conflict);
    Ok((applied, queued))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("database error: {0}")]
    Database(DatabaseError),
    /// The database schema is newer than this binary knows.
    #[error("database schema version {found} is newer than this updraft supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The API server could not be reached or refused the request; worth retrying.
    #[error("API server unavailable: {0}")]
    Unavailable(String),
    /// The API server rejected the worker's token.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The change would break something in progress (deleting a DAG whose tasks run).
    #[error("{0}")]
    Conflict(String),
    /// Stored data that cannot be decoded (a corrupt row, or a bug).
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// A stored secret (a variable's value, a connection's password or extra) that cannot be
    /// read: it is encrypted and the store has no key (`core.fernet_key`), or no key in use
    /// decrypts it. Names the variable or connection.
    #[error("cannot read a stored secret: {0}")]
    Secret(String),
    /// What this way of reaching the cluster cannot do (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error(transparent)]
    IllegalTransition(#[from] updraft_model::state::IllegalTransition),
}

/// A failure of the database itself, with what kind of failure it is, so that callers decide
/// on the kind (wait and retry, report unreachable) rather than on the message's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DatabaseError {
    pub failure: DatabaseFailure,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// Another transaction holds what this one needs (SQLite's "locked"/"busy", PostgreSQL's
    /// serialization failures, deadlocks, lock timeouts): trying again can succeed.
    Busy,
    /// The server or file could not be reached (connection refused or lost, pool exhausted).
    Unreachable,
    /// Anything else: a failed statement, a failed migration, a crashed task.
    Other,
}

impl StoreError {
    /// A database failure of no particular kind.
    pub fn database(message: impl Into<String>) -> Self {
        Self::database_failure(DatabaseFailure::Other, message)
    }

    pub fn database_failure(failure: DatabaseFailure, message: impl Into<String>) -> Self {
        StoreError::Database(DatabaseError {
            failure,
            message: message.into(),
        })
    }

    /// Whether the same call may succeed if tried again: the database was busy or could not
    /// be reached, or the API server was unavailable. Anything else (a failed statement,
    /// missing or corrupt data, a refused token) fails again.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(db) => match db.failure {
                DatabaseFailure::Busy | DatabaseFailure::Unreachable => true,
                DatabaseFailure::Other => false,
            },
            StoreError::Unavailable(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything updraft keeps. The operations the engine runs on are here; what the public API
/// and the CLI read and change by hand is grouped in the supertraits, one concern each.
#[async_trait]
pub trait Store:
    BrowseStore
    + ManageStore
    + AuthStore
    + AssetStore
    + BackfillStore
    + ConnectionStore
    + EventLogStore
    + NotificationStore
    + RetentionStore
    + Send
    + Sync
    + 'static
{
    /// A trivial round trip, for health checks.
    async fn ping(&self) -> Result<()>;

    // --- DAGs, as published by the DAG processor ---

    /// Makes the database match a scan of the DAG folder: new and changed DAGs get a new
    /// version, DAGs whose file is gone become inactive, import errors are replaced.
    async fn sync_dags(&self, sync: DagSync) -> Result<SyncReport>;
    /// The file records ([`DagSync::files`]) under `folder` that the database still matches,
    /// by file name: a DAG that is active, defined in that file, with that content hash; or
    /// that import error of that file. A record that no longer holds (another process
    /// published the DAG from elsewhere, the error was cleared) is left out, so the file is
    /// parsed again.
    async fn dag_files(&self, folder: &str) -> Result<Vec<DagFileRecord>>;
    async fn list_dags(&self) -> Result<Vec<DagRecord>>;
    async fn get_dag(&self, dag_id: &str) -> Result<DagRecord>;
    /// A version as written; shared with the other readers of it in this process.
    async fn get_dag_version(
        &self,
        dag_id: &str,
        version: i64,
    ) -> Result<std::sync::Arc<updraft_model::Dag>>;
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
    /// Renews `scheduler_id`'s lease on the unfinished runs it owns, adopts unowned runs and
    /// runs whose owner's lease ran out (never runs with a `runner`) until it owns
    /// `max_owned`, and returns every unfinished run it owns, oldest logical date first.
    /// Schedulers evaluate only the runs they own, so they do not race over the same run.
    async fn own_dag_runs(&self, request: OwnRuns) -> Result<Vec<DagRun>>;
    /// Gives up every run `scheduler_id` owns (a clean shutdown), so others adopt them at once.
    async fn release_owned_dag_runs(&self, scheduler_id: &str) -> Result<()>;
    /// Hands a run whose runner died over to the schedulers (clears `runner`).
    async fn release_dag_run(&self, id: i64) -> Result<()>;
    async fn set_dag_run_state(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult>;
    /// Ends a running run that ran past its DAG's `dagrun_timeout`, as Airflow does: the run
    /// `failed`, every unfinished task instance `skipped` (a running one loses its claim, so
    /// its worker's next heartbeat kills it and its report is refused), in one transaction.
    /// A compare-and-set on the run being `running`: a run that finished or was timed out by
    /// another scheduler first is a `Conflict` and nothing changes.
    async fn time_out_dag_run(&self, id: i64, now: DateTime<Utc>) -> Result<TransitionResult>;
    /// The run of `dag_id` with the latest logical date before `before` (only scheduled and
    /// backfill runs with `scheduled_only`): the "previous run" of `depends_on_past`.
    async fn previous_dag_run(
        &self,
        dag_id: &str,
        before: DateTime<Utc>,
        scheduled_only: bool,
    ) -> Result<Option<DagRun>>;
    /// Whether task `task_id` of `dag_id` has an instance in a run with a logical date before
    /// `before` (`ignore_first_depends_on_past`: a task that never ran before does not wait).
    async fn has_earlier_task_instance(
        &self,
        dag_id: &str,
        task_id: &str,
        before: DateTime<Utc>,
    ) -> Result<bool>;
    /// The states of the `limit` runs of `dag_id` with the latest logical dates, newest first
    /// (`max_consecutive_failed_dag_runs`).
    async fn latest_dag_run_states(&self, dag_id: &str, limit: u32) -> Result<Vec<DagRunState>>;
    /// Starts a queued run (`queued` → `running`) unless its DAG already has
    /// `max_active_runs` running runs. The count and the change are one transaction, and
    /// starts of one DAG's runs are serialised, so schedulers starting runs of the same DAG
    /// at the same moment never exceed the limit between them. Backfill runs are neither
    /// held back by the limit nor counted (their backfill limits them when creating them).
    async fn start_dag_run(
        &self,
        id: i64,
        max_active_runs: u32,
        now: DateTime<Utc>,
    ) -> Result<RunStart>;

    // --- task instances ---

    async fn task_instances(&self, dag_run_id: i64) -> Result<Vec<TaskInstance>>;
    /// Applies a batch of compare-and-set state changes in one transaction.
    async fn apply_transitions(&self, batch: Vec<Transition>) -> Result<Vec<TransitionResult>> {
        self.apply_plan(batch, Vec::new()).await
    }
    /// Applies a batch of compare-and-set state changes and the expansions of mapped tasks
    /// they decide ([`Expansion`]: each applies only with its task instance's transition)
    /// in one transaction.
    async fn apply_plan(
        &self,
        batch: Vec<Transition>,
        expansions: Vec<Expansion>,
    ) -> Result<Vec<TransitionResult>> {
        self.apply_plan_notifying(batch, expansions, Vec::new())
            .await
    }
    /// [`Store::apply_plan`], also storing the notifications some transitions cause (a
    /// sensor the scheduler ended calls its task's callbacks): in the same transaction, each
    /// only if its task instance's transition applied.
    ///
    /// Plans are decided again from durable state by the next pass, so a store may commit
    /// them without waiting for the disk, as long as a crash can only lose commits that no
    /// durable one acted on (PostgreSQL's asynchronous commit; [`Store::queue`] too).
    async fn apply_plan_notifying(
        &self,
        batch: Vec<Transition>,
        expansions: Vec<Expansion>,
        notifications: Vec<TransitionNotifications>,
    ) -> Result<Vec<TransitionResult>>;
    /// Queued and running task instances, per DAG and per pool, for concurrency limits.
    async fn occupancy(&self) -> Result<Occupancy>;
    /// Queues `items` in order (`scheduled` → `queued`, new try; a rescheduled sensor's next
    /// poke `up_for_reschedule` → `queued`, same try), each only if its DAG stays
    /// within `max_active_tasks` and its pool within its slots, counted inside the same
    /// transaction: several schedulers queueing at once never exceed a limit. An item that
    /// was not queued (its state moved on, or no room) is a `Conflict`.
    async fn queue(
        &self,
        items: Vec<QueueItem>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransitionResult>>;
    /// [`Store::apply_plan`] of `plan` (compare-and-sets alone, each of another task
    /// instance), then [`Store::queue`] of `items`, which may name instances the plan
    /// schedules: a pass's plan and the queueing that follows it, with the results of each.
    /// Only the first items that keep the queued and running task instances of every DAG
    /// within `parallelism` are tried (the scheduler's limit, counted here because its
    /// caller did not read the occupancy); the others are refused. A store may make all of
    /// it one round trip; it commits as a plan does.
    async fn queue_planned(
        &self,
        plan: Vec<Transition>,
        items: Vec<QueueItem>,
        parallelism: u32,
        now: DateTime<Utc>,
    ) -> Result<(Vec<TransitionResult>, Vec<TransitionResult>)> {
        queue_planned_apart(self, plan, items, parallelism, now).await
    }
    /// The earliest `next_retry_at` of an `up_for_retry`, `up_for_reschedule` or `deferred`
    /// task in an unfinished run: when the scheduler must look again.
    async fn earliest_retry(&self) -> Result<Option<DateTime<Utc>>>;
    /// Resets the given tasks (and what the caller computed as their downstream) to `none`
    /// so they run again; running ones become `restarting`. Reopens finished runs.
    async fn clear_task_instances(
        &self,
        dag_run_id: i64,
        task_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<usize>;
    /// [`Store::clear_task_instances`] for single instances of mapped tasks (`(task_id,
    /// map_index)`, Airflow's clear by `[task_id, map_index]`): only those, and their XComs.
    async fn clear_mapped_task_instances(
        &self,
        dag_run_id: i64,
        instances: &[(String, i64)],
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

    /// Appends to the log of a try; only the claim that owns the try may write it.
    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend>;
    /// The log of a try as sent by its worker; `None` when nothing was sent (the worker wrote
    /// it to a local file only).
    async fn read_log(&self, ti_id: i64, try_number: u32) -> Result<Option<String>> {
        Ok(self
            .read_log_from(ti_id, try_number, 0)
            .await?
            .map(|(_, text)| text))
    }
    /// The part of a try's shipped log that holds byte `from` and all after it: the byte
    /// offset where the answered text starts (at most `from`) and the text. A reader that
    /// follows a growing log reads only what it has not seen.
    async fn read_log_from(
        &self,
        ti_id: i64,
        try_number: u32,
        from: u64,
    ) -> Result<Option<(u64, String)>>;

    // --- processes ---

    /// Records that a scheduler, worker or API server is alive.
    async fn job_heartbeat(&self, beat: JobHeartbeat) -> Result<()>;
    /// Processes of `kind` (or all) whose latest heartbeat is at or after `alive_since`.
    async fn list_jobs(
        &self,
        kind: Option<JobKind>,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>>;
    /// Forgets a process that shut down cleanly.
    async fn end_job(&self, id: &str) -> Result<()>;

    /// Changes other processes commit, as the database announces them (PostgreSQL
    /// `LISTEN/NOTIFY`); `None` when the backend cannot (SQLite: one process schedules, and
    /// others wake it directly). The receiver ends when the store is dropped.
    async fn changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>>;
    /// Tells the other schedulers that places are free which this one could not fill
    /// ([`Change::PlacesFree`] on their [`changes`](Self::changes)). A backend without a
    /// change feed has no other scheduler to tell.
    async fn announce_free_places(&self) -> Result<()> {
        Ok(())
    }
    /// Every change committed to the database from now on, by this process or any other, as
    /// the scheduler learns them: this store's own commits are sent right after they commit
    /// (never from inside a transaction), other processes' as the database announces them
    /// (PostgreSQL `LISTEN/NOTIFY`, from a connection opened at the first call; until it
    /// listens, and whenever it had to reconnect, receivers get [`Change::Everything`]) or as
    /// [`announce`](Self::announce) is told of them (SQLite: a CLI command's wake-up).
    ///
    /// For readers that refresh what they show (the web UI): a receiver that falls behind
    /// gets `RecvError::Lagged`, which means "look at everything". A store with no receivers
    /// sends nothing, so the engine's hot path pays only the cost of a failed send.
    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change>;
    /// Tells this store's [`watch`](Self::watch) receivers of a change another process
    /// committed that the database does not announce itself (SQLite: the wake-up datagram of
    /// a CLI command, which says only that something changed).
    fn announce(&self, change: Change);

    // --- pools ---

    /// Creates or updates a pool.
    async fn set_pool(&self, pool: PoolRecord) -> Result<()>;
    async fn list_pools(&self) -> Result<Vec<PoolRecord>>;
    /// Whether the pool existed. Tasks of a pool without a row run unlimited.
    async fn delete_pool(&self, name: &str) -> Result<bool>;

    // --- XCom and variables ---

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>>;
    async fn get_variable(&self, key: &str) -> Result<Option<String>>;
    async fn set_variable(&self, key: &str, value: &str) -> Result<()>;
    async fn delete_variable(&self, key: &str) -> Result<bool>;
    async fn list_variables(&self) -> Result<Vec<(String, String)>>;
}

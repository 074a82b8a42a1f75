//! The PostgreSQL backend of the metadata store, for clusters: several schedulers, workers
//! and API servers share one database.
//!
//! Every write runs in one transaction on a pooled connection (`READ COMMITTED`). Races are
//! settled by the database itself: task instance writes are compare-and-sets on (id, try,
//! state); claims and run adoption take rows `FOR UPDATE SKIP LOCKED`; queueing locks the
//! `pool` and `dag` rows it counts against, in a fixed order. Writes that others must react to
//! announce themselves with `pg_notify` inside their transaction (see [`Store::changes`]).
//!
//! Instants are stored as `BIGINT` microseconds since the Unix epoch (UTC), as in SQLite, so
//! they round-trip exactly.

mod assets;
mod auth;
mod backfill;
mod browse;
mod changes;
mod claims;
mod codec;
mod connections;
mod dags;
mod errors;
mod event_log;
mod finish;
mod flushes;
mod jobs;
mod logs;
mod manage;
mod notifications;
mod ownership;
mod queueing;
mod retention;
mod reuse;
mod runs;
mod schema;
mod task_instances;
#[cfg(feature = "testing")]
pub mod testing;
mod transactions;
mod variables;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use updraft_store::*;

pub use changes::CHANNEL;
pub use schema::SCHEMA_VERSION;

use changes::{Announce, TriesEnded};
pub(crate) use errors::db_err;
use errors::redact;

/// How a [`PostgresStore`] connects.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections the pool opens (one more is used by [`Store::changes`]).
    pub max_connections: u32,
    /// How long a call waits for a free (or new) connection before it fails.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// A store on one PostgreSQL database. Cheap to clone; clones share the pool and the origin
/// of their notifications.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
    /// Encrypts variable values and connection secrets at rest ([`with_cipher`](Self::with_cipher));
    /// outside `inner` so that setting it never needs the only handle.
    secrets: Secrets,
    /// The DAG versions read, while a reader holds them.
    dags: Arc<SharedDags>,
}

struct Inner {
    connections: reuse::Connections,
    url: String,
    /// Tags this store's notifications, so that its own listener skips them.
    origin: String,
    /// Dropped with the last clone of the store: ends the listener tasks.
    closed: tokio::sync::watch::Sender<()>,
    /// [`Store::watch`]: this store's commits, and other processes' once `watching`.
    watchers: tokio::sync::broadcast::Sender<Change>,
    /// Whether the listener that forwards other processes' changes to `watchers` was started
    /// (by the first [`Store::watch`]).
    watching: std::sync::atomic::AtomicBool,
    /// Which of this store's finishes, committed without waiting for the disk, are on it.
    flushes: flushes::Flushes,
}

/// How many changes a [`Store::watch`] receiver may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 1024;

impl PostgresStore {
    /// Connects with the default options and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects (a pool of `options.max_connections`) and brings the schema up to date.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings every connection it takes back into the pool and drops the broken
            // ones; pinging again when it is handed out would cost a round trip for nothing.
            // Only a connection idle for a while is pinged (the server may have closed it
            // meanwhile). A busy process skips both pings: see `reuse`.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= reuse::FRESH_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await
            .map_err(|e| {
                StoreError::database_failure(
                    DatabaseFailure::Unreachable,
                    format!("cannot connect to PostgreSQL at {}: {e}", redact(url)),
                )
            })?;
        let (closed, _) = tokio::sync::watch::channel(());
        let store = PostgresStore {
            inner: Arc::new(Inner {
                connections: reuse::Connections::new(pool),
                url: url.to_string(),
                origin: uuid::Uuid::new_v4().simple().to_string(),
                closed,
                watchers: tokio::sync::broadcast::channel(WATCH_BUFFER).0,
                watching: std::sync::atomic::AtomicBool::new(false),
                flushes: flushes::Flushes::default(),
            }),
            secrets: Secrets::default(),
            dags: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Brings the schema up to date (also done by [`connect`](Self::connect)). Safe when
    /// several processes start at once; fails with [`StoreError::SchemaTooNew`] when the
    /// database was migrated by a newer updraft.
    pub async fn migrate(&self) -> Result<i64> {
        schema::migrate(self.inner.connections.pool()).await
    }

    /// Keeps variable values and connection passwords and extras encrypted with `cipher`
    /// (written encrypted, read back decrypted). Without a cipher they are stored in plain
    /// text, and reading an encrypted one fails with [`StoreError::Secret`].
    pub fn with_cipher(mut self, cipher: Arc<dyn Cipher>) -> Self {
        self.secrets = Secrets::new(Some(cipher));
        self
    }

    /// The connection pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        self.inner.connections.pool()
    }

    async fn conn(&self) -> Result<reuse::Conn> {
        self.inner.connections.acquire().await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<()> {
        let mut c = self.conn().await?;
        sqlx::query("SELECT 1")
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn sync_dags(&self, sync: DagSync) -> Result<SyncReport> {
        let mut tx = self.begin().await?;
        let (report, changed, written) = dags::sync(&mut tx, &sync).await?;
        self.commit(tx, changed.then_some(Announce::Everything))
            .await?;
        for (dag, version) in &written {
            self.dags.keep(dag, *version);
        }
        Ok(report)
    }
    async fn dag_files(&self, folder: &str) -> Result<Vec<DagFileRecord>> {
        dags::files(&mut *self.conn().await?, folder).await
    }
    async fn list_dags(&self) -> Result<Vec<DagRecord>> {
        dags::list(&mut *self.conn().await?).await
    }
    async fn get_dag(&self, dag_id: &str) -> Result<DagRecord> {
        dags::get(&mut *self.conn().await?, dag_id).await
    }
    async fn get_dag_version(&self, dag_id: &str, version: i64) -> Result<Arc<updraft_model::Dag>> {
        if let Some(dag) = self.dags.get(dag_id, version) {
            return Ok(dag);
        }
        let dag = dags::definition(&mut *self.conn().await?, dag_id, version).await?;
        Ok(self.dags.share(dag, version))
    }
    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        dags::set_paused(&mut tx, dag_id, paused).await?;
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn list_import_errors(&self) -> Result<Vec<ImportErrorRecord>> {
        dags::import_errors(&mut *self.conn().await?).await
    }
    async fn dags_needing_next_run(&self) -> Result<Vec<DagRecord>> {
        dags::needing_next_run(&mut *self.conn().await?).await
    }
    async fn set_next_dagrun(&self, dag_id: &str, next: Option<DateTime<Utc>>) -> Result<()> {
        dags::set_next_dagrun(&mut *self.conn().await?, dag_id, next).await?;
        self.changed([Change::Dags(vec![dag_id.to_string()])]);
        Ok(())
    }
    async fn due_dags(&self, now: DateTime<Utc>) -> Result<Vec<DagRecord>> {
        dags::due(&mut *self.conn().await?, now).await
    }
    async fn earliest_next_dagrun(&self) -> Result<Option<DateTime<Utc>>> {
        dags::earliest_next_dagrun(&mut *self.conn().await?).await
    }
    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>> {
        runs::last_scheduled_logical_date(&mut *self.conn().await?, dag_id).await
    }

    async fn create_dag_run(&self, run: NewDagRun) -> Result<DagRun> {
        let mut tx = self.begin().await?;
        let created = runs::create(&mut tx, &run).await?;
        self.commit(tx, Some(Announce::Runs(vec![created.id])))
            .await?;
        Ok(created)
    }
    async fn get_dag_run(&self, dag_id: &str, run_id: &str) -> Result<DagRun> {
        runs::get(&mut *self.conn().await?, dag_id, run_id).await
    }
    async fn get_dag_run_by_id(&self, id: i64) -> Result<DagRun> {
        runs::get_by_id(&mut *self.conn().await?, id).await
    }
    async fn list_dag_runs(&self, dag_id: &str) -> Result<Vec<DagRun>> {
        runs::list(&mut *self.conn().await?, dag_id).await
    }
    async fn unfinished_dag_runs(&self) -> Result<Vec<DagRun>> {
        runs::unfinished(&mut *self.conn().await?).await
    }
    async fn own_dag_runs(&self, request: OwnRuns) -> Result<Vec<DagRun>> {
        let mut tx = self.begin().await?;
        let owned = ownership::own(&mut tx, &request).await?;
        self.commit(tx, None).await?;
        Ok(owned)
    }
    async fn release_owned_dag_runs(&self, scheduler_id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        ownership::release(&mut tx, scheduler_id).await?;
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn release_dag_run(&self, id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        runs::release(&mut tx, id).await?;
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn set_dag_run_state(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult> {
        let mut tx = self.begin().await?;
        let result = runs::set_state(&mut tx, id, expected, to, now).await?;
        let change = (result == TransitionResult::Applied).then(|| Announce::Runs(vec![id]));
        self.commit(tx, change).await?;
        Ok(result)
    }

    async fn time_out_dag_run(&self, id: i64, now: DateTime<Utc>) -> Result<TransitionResult> {
        let mut tx = self.begin().await?;
        let result = manage::time_out_run(&mut tx, id, now).await?;
        let change = (result == TransitionResult::Applied).then(|| Announce::Runs(vec![id]));
        self.commit(tx, change).await?;
        Ok(result)
    }
    async fn previous_dag_run(
        &self,
        dag_id: &str,
        before: DateTime<Utc>,
        scheduled_only: bool,
    ) -> Result<Option<DagRun>> {
        runs::previous(&mut *self.conn().await?, dag_id, before, scheduled_only).await
    }
    async fn has_earlier_task_instance(
        &self,
        dag_id: &str,
        task_id: &str,
        before: DateTime<Utc>,
    ) -> Result<bool> {
        runs::has_earlier_task_instance(&mut *self.conn().await?, dag_id, task_id, before).await
    }
    async fn latest_dag_run_states(&self, dag_id: &str, limit: u32) -> Result<Vec<DagRunState>> {
        runs::latest_states(&mut *self.conn().await?, dag_id, limit).await
    }

    async fn start_dag_run(
        &self,
        id: i64,
        max_active_runs: u32,
        now: DateTime<Utc>,
    ) -> Result<RunStart> {
        let mut tx = self.begin().await?;
        let result = runs::start(&mut tx, id, max_active_runs, now).await?;
        let change = (result == RunStart::Started).then(|| Announce::Runs(vec![id]));
        self.commit(tx, change).await?;
        Ok(result)
    }

    async fn task_instances(&self, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
        task_instances::of_run(&mut *self.conn().await?, dag_run_id).await
    }
    async fn apply_plan_notifying(
        &self,
        batch: Vec<Transition>,
        expansions: Vec<Expansion>,
        notifications: Vec<TransitionNotifications>,
    ) -> Result<Vec<TransitionResult>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        check_transitions(&batch)?;
        if let ([transition], [], []) = (&batch[..], &expansions[..], &notifications[..]) {
            let (result, runs) = task_instances::apply_one_at_once(
                &mut *self.conn().await?,
                transition,
                &self.inner.origin,
            )
            .await?;
            if !runs.is_empty() {
                self.changed([Change::Runs(runs)]);
            }
            return Ok(vec![result]);
        }
        let mut tx = self.begin_rederivable().await?;
        let (results, runs) = task_instances::apply(&mut tx, &batch).await?;
        task_instances::expand(&mut tx, &batch, &results, &expansions).await?;
        let due = TransitionNotifications::of_applied(notifications, &batch, &results);
        notifications::insert(&mut tx, &due).await?;
        // Announced to watchers only: the scheduler that applies them drives the run.
        let change = (!runs.is_empty()).then_some(Announce::Runs(runs));
        self.commit_for_watchers(tx, change).await?;
        Ok(results)
    }
    async fn occupancy(&self) -> Result<Occupancy> {
        queueing::occupancy(&mut *self.conn().await?).await
    }
    async fn queue(
        &self,
        items: Vec<QueueItem>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransitionResult>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let payload = self.queued_announcement(&items)?;
        let (results, queues, runs) =
            queueing::queue(&mut *self.conn().await?, &items, now, &payload).await?;
        if !queues.is_empty() {
            self.changed([Change::WorkQueued(queues), Change::Runs(runs)]);
        }
        Ok(results)
    }
    async fn queue_planned(
        &self,
        plan: Vec<Transition>,
        items: Vec<QueueItem>,
        parallelism: u32,
        now: DateTime<Utc>,
    ) -> Result<(Vec<TransitionResult>, Vec<TransitionResult>)> {
        check_transitions(&plan)?;
        if plan.is_empty() && items.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut seen = HashSet::new();
        if !plan.iter().all(|t| seen.insert(t.ti_id)) {
            // Two changes of one instance take rounds, in a transaction of their own.
            return updraft_store::queue_planned_apart(self, plan, items, parallelism, now).await;
        }
        let payload = self.queued_announcement(&items)?;
        let done = queueing::queue_planned(
            &mut *self.conn().await?,
            &plan,
            &items,
            now,
            &payload,
            &self.inner.origin,
            parallelism,
        )
        .await?;
        let mut changes = Vec::new();
        if !done.planned_runs.is_empty() {
            changes.push(Change::Runs(done.planned_runs));
        }
        if !done.queues.is_empty() {
            changes.extend([
                Change::WorkQueued(done.queues),
                Change::Runs(done.queued_runs),
            ]);
        }
        if !changes.is_empty() {
            self.changed(changes);
        }
        Ok((done.applied, done.queued))
    }
    async fn earliest_retry(&self) -> Result<Option<DateTime<Utc>>> {
        task_instances::earliest_retry(&mut *self.conn().await?).await
    }
    async fn clear_task_instances(
        &self,
        dag_run_id: i64,
        task_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        let cleared = task_instances::clear(&mut tx, dag_run_id, task_ids, now).await?;
        let change = (cleared > 0).then(|| Announce::Runs(vec![dag_run_id]));
        self.commit(tx, change).await?;
        Ok(cleared)
    }
    async fn clear_mapped_task_instances(
        &self,
        dag_run_id: i64,
        instances: &[(String, i64)],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let mut tx = self.begin().await?;
        let cleared = task_instances::clear_mapped(&mut tx, dag_run_id, instances, now).await?;
        let change = (cleared > 0).then(|| Announce::Runs(vec![dag_run_id]));
        self.commit(tx, change).await?;
        Ok(cleared)
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>> {
        if request.limit == 0 || request.queues.as_ref().is_some_and(|q| q.is_empty()) {
            return Ok(Vec::new());
        }
        // Announced to watchers only: nothing else reacts to a task starting.
        let mark = self.inner.flushes.before_durable_commit();
        let claimed = claims::claim(&mut *self.conn().await?, &request, &self.inner.origin).await?;
        if !claimed.is_empty() {
            // A claim that wrote committed durably: the finishes before it are on disk too.
            self.inner.flushes.durable_commit_returned(mark);
            self.changed([Change::Runs(ClaimedTask::runs_of(&claimed))]);
        }
        Ok(claimed)
    }
    async fn heartbeat(
        &self,
        claim_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        if claim_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let lost = claims::heartbeat(&mut tx, claim_ids, lease_until).await?;
        self.commit(tx, None).await?;
        Ok(lost)
    }
    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        check_finishes(&reports)?;
        // Both paths commit without waiting for the disk and flush before they answer: the
        // schedulers act on the finish at once, and whatever they do with it that outlives
        // a database crash (a claim of what follows, a run's end) is a durable commit, which
        // flushes the finish with it; the worker forgets its report only once it is on disk.
        if let Some(runs) =
            finish::finish_at_once(&mut *self.conn().await?, &reports, &self.inner.origin).await?
        {
            let committed = self.inner.flushes.deferred_committed();
            self.changed([Change::Runs(runs)]);
            self.on_disk(committed).await?;
            return Ok(vec![TransitionResult::Applied; reports.len()]);
        }
        let mut tx = self.begin_per_task().await?;
        let finished = finish::finish(&mut tx, &reports).await?;
        let ended = TriesEnded {
            tries: &finished.tries,
            reread: &finished.reread,
        };
        let change = (!finished.runs.is_empty()).then(|| Announce::Runs(finished.runs.clone()));
        self.commit_announcing(tx, change, Vec::new(), ended)
            .await?;
        let committed = self.inner.flushes.deferred_committed();
        self.on_disk(committed).await?;
        Ok(finished.results)
    }
    async fn expired_claims(&self, now: DateTime<Utc>) -> Result<Vec<TaskInstance>> {
        claims::expired_claims(&mut *self.conn().await?, now).await
    }
    async fn claims_of_worker(&self, worker_id: &str) -> Result<Vec<TaskInstance>> {
        claims::claims_of_worker(&mut *self.conn().await?, worker_id).await
    }
    async fn running_task_instances(&self) -> Result<Vec<TaskInstance>> {
        claims::running(&mut *self.conn().await?).await
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend> {
        let mut tx = self.begin().await?;
        let result = logs::append(&mut tx, &chunk).await?;
        self.commit(tx, None).await?;
        Ok(result)
    }
    async fn read_log_from(
        &self,
        ti_id: i64,
        try_number: u32,
        from: u64,
    ) -> Result<Option<(u64, String)>> {
        logs::read_from(&mut *self.conn().await?, ti_id, try_number, from).await
    }

    async fn job_heartbeat(&self, beat: JobHeartbeat) -> Result<()> {
        let mut tx = self.begin().await?;
        jobs::heartbeat(&mut tx, &beat).await?;
        // For the UI's health and cluster pages of every server.
        self.commit_for_watchers(tx, Some(Announce::Jobs)).await
    }
    async fn list_jobs(
        &self,
        kind: Option<JobKind>,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>> {
        jobs::list(&mut *self.conn().await?, kind, alive_since).await
    }
    async fn end_job(&self, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        jobs::end(&mut tx, id).await?;
        self.commit_for_watchers(tx, Some(Announce::Jobs)).await
    }

    async fn changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>> {
        let receiver = changes::listen(
            &self.inner.url,
            self.inner.origin.clone(),
            self.inner.closed.subscribe(),
        )
        .await?;
        Ok(Some(receiver))
    }
    async fn announce_free_places(&self) -> Result<()> {
        changes::notify_places_free(&mut *self.conn().await?, &self.inner.origin).await
    }
    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change> {
        let receiver = self.inner.watchers.subscribe();
        let first = self
            .inner
            .watching
            .compare_exchange(
                false,
                true,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_ok();
        if first {
            if tokio::runtime::Handle::try_current().is_ok() {
                changes::watch_others(
                    self.inner.url.clone(),
                    self.inner.origin.clone(),
                    self.inner.watchers.clone(),
                    self.inner.closed.subscribe(),
                );
            } else {
                self.inner
                    .watching
                    .store(false, std::sync::atomic::Ordering::Release);
                tracing::warn!("watch outside a tokio runtime: only this store's own changes");
            }
        }
        receiver
    }
    fn announce(&self, change: Change) {
        self.changed([change]);
    }

    async fn set_pool(&self, pool: PoolRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        variables::set_pool(&mut tx, &pool).await?;
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn list_pools(&self) -> Result<Vec<PoolRecord>> {
        variables::list_pools(&mut *self.conn().await?).await
    }
    async fn delete_pool(&self, name: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let existed = variables::delete_pool(&mut tx, name).await?;
        self.commit(tx, existed.then_some(Announce::Everything))
            .await?;
        Ok(existed)
    }

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>> {
        variables::xcoms_for_run(&mut *self.conn().await?, dag_run_id).await
    }
    async fn get_variable(&self, key: &str) -> Result<Option<String>> {
        variables::get(&mut *self.conn().await?, &self.secrets, key).await
    }
    async fn set_variable(&self, key: &str, value: &str) -> Result<()> {
        let (value, encrypted) = self.secrets.seal(value);
        variables::set(&mut *self.conn().await?, key, &value, encrypted).await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn delete_variable(&self, key: &str) -> Result<bool> {
        let existed = variables::delete(&mut *self.conn().await?, key).await?;
        if existed {
            self.changed([Change::Everything]);
        }
        Ok(existed)
    }
    async fn list_variables(&self) -> Result<Vec<(String, String)>> {
        variables::list(&mut *self.conn().await?, &self.secrets).await
    }
}

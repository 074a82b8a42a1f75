//! The SQLite backend of the metadata store: one file, WAL mode, one writer connection per
//! process. Writes take the database lock up front (`BEGIN IMMEDIATE`) so that concurrent
//! processes (the CLI next to `standalone`) queue for it instead of failing mid-transaction.

mod assets;
mod auth;
mod backfill;
mod browse;
mod claims;
mod codec;
mod connections;
mod dags;
mod event_log;
mod finish;
mod jobs;
mod logs;
mod manage;
mod notifications;
mod ownership;
mod queueing;
mod readers;
mod retention;
mod runs;
mod schema;
mod task_instances;
mod variables;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use updraft_store::*;

pub use schema::SCHEMA_VERSION;

/// A store on one SQLite file. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    /// The writer: every write transaction, one at a time.
    conn: Arc<Mutex<Connection>>,
    /// Read-only connections for the read methods.
    readers: Arc<readers::Readers>,
    /// [`Store::watch`]: every commit of this process, and what [`Store::announce`] is told.
    watchers: tokio::sync::broadcast::Sender<Change>,
    /// Encrypts variable values and connection secrets at rest ([`with_cipher`](Self::with_cipher)).
    secrets: Secrets,
    /// The DAG versions read, while a reader holds them.
    dags: Arc<SharedDags>,
}

pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many changes a [`Store::watch`] receiver may fall behind before it is told it lagged.
const WATCH_BUFFER: usize = 1024;

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| StoreError::database(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
        // Processes opening a new file at once race to switch it to WAL and to migrate it.
        // SQLite answers "locked" at once, without waiting, where waiting could deadlock
        // (a reader upgrading to a writer): every step is idempotent, so try again.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match prepare(&mut conn) {
                Err(StoreError::Database(e))
                    if e.failure == DatabaseFailure::Busy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
                Ok(()) => break,
            }
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            readers: Arc::new(readers::Readers::new(path)?),
            watchers: tokio::sync::broadcast::channel(WATCH_BUFFER).0,
            secrets: Secrets::default(),
            dags: Arc::default(),
        })
    }

    /// Keeps variable values and connection passwords and extras encrypted with `cipher`
    /// (written encrypted, read back decrypted). Without a cipher they are stored in plain
    /// text, and reading an encrypted one fails with [`StoreError::Secret`].
    pub fn with_cipher(mut self, cipher: Arc<dyn Cipher>) -> Self {
        self.secrets = Secrets::new(Some(cipher));
        self
    }

    /// Tells the watchers of changes this process committed (after the commit).
    pub(crate) fn changed(&self, changes: impl IntoIterator<Item = Change>) {
        if self.watchers.receiver_count() == 0 {
            return;
        }
        for change in changes {
            // An error only means that nobody watches.
            let _ = self.watchers.send(change);
        }
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::database(format!("database task failed: {e}")))?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::database("connection lock poisoned"))?;
            let tx = guard
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::database(format!("database task failed: {e}")))?
    }
}

/// One [`Change::Runs`] naming the runs of `tis`, if any.
pub(crate) fn runs_of(tis: &[TaskInstance]) -> Option<Change> {
    let runs = TaskInstance::runs_of(tis);
    (!runs.is_empty()).then_some(Change::Runs(runs))
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let failure = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DatabaseFailure::Busy,
        Some(ErrorCode::CannotOpen) => DatabaseFailure::Unreachable,
        _ => DatabaseFailure::Other,
    };
    StoreError::database_failure(failure, e.to_string())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db_err))
            .await
    }
    async fn sync_dags(&self, sync: DagSync) -> Result<SyncReport> {
        let (report, changed, written) = self.write(move |tx| dags::sync(tx, &sync)).await?;
        for (dag, version) in &written {
            self.dags.keep(dag, *version);
        }
        if changed {
            self.changed([Change::Everything]);
        }
        Ok(report)
    }
    async fn dag_files(&self, folder: &str) -> Result<Vec<DagFileRecord>> {
        let folder = folder.to_string();
        self.read(move |c| dags::files(c, &folder)).await
    }
    async fn list_dags(&self) -> Result<Vec<DagRecord>> {
        self.read(dags::list).await
    }
    async fn get_dag(&self, dag_id: &str) -> Result<DagRecord> {
        let dag_id = dag_id.to_string();
        self.read(move |c| dags::get(c, &dag_id)).await
    }
    async fn get_dag_version(&self, dag_id: &str, version: i64) -> Result<Arc<updraft_model::Dag>> {
        if let Some(dag) = self.dags.get(dag_id, version) {
            return Ok(dag);
        }
        let dag_id = dag_id.to_string();
        let dag = self
            .read(move |c| dags::definition(c, &dag_id, version))
            .await?;
        Ok(self.dags.share(dag, version))
    }
    async fn set_paused(&self, dag_id: &str, paused: bool) -> Result<()> {
        let dag_id = dag_id.to_string();
        self.write(move |tx| dags::set_paused(tx, &dag_id, paused))
            .await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn list_import_errors(&self) -> Result<Vec<ImportErrorRecord>> {
        self.read(dags::import_errors).await
    }
    async fn dags_needing_next_run(&self) -> Result<Vec<DagRecord>> {
        self.read(dags::needing_next_run).await
    }
    async fn set_next_dagrun(&self, dag_id: &str, next: Option<DateTime<Utc>>) -> Result<()> {
        let dag_id = dag_id.to_string();
        let written = dag_id.clone();
        self.write(move |tx| dags::set_next_dagrun(tx, &written, next))
            .await?;
        self.changed([Change::Dags(vec![dag_id])]);
        Ok(())
    }
    async fn due_dags(&self, now: DateTime<Utc>) -> Result<Vec<DagRecord>> {
        self.read(move |c| dags::due(c, now)).await
    }
    async fn earliest_next_dagrun(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(dags::earliest_next_dagrun).await
    }
    async fn last_scheduled_logical_date(&self, dag_id: &str) -> Result<Option<DateTime<Utc>>> {
        let dag_id = dag_id.to_string();
        self.read(move |c| runs::last_scheduled_logical_date(c, &dag_id))
            .await
    }

    async fn create_dag_run(&self, run: NewDagRun) -> Result<DagRun> {
        let created = self.write(move |tx| runs::create(tx, &run)).await?;
        self.changed([Change::Runs(vec![created.id])]);
        Ok(created)
    }
    async fn get_dag_run(&self, dag_id: &str, run_id: &str) -> Result<DagRun> {
        let (dag_id, run_id) = (dag_id.to_string(), run_id.to_string());
        self.read(move |c| runs::get(c, &dag_id, &run_id)).await
    }
    async fn get_dag_run_by_id(&self, id: i64) -> Result<DagRun> {
        self.read(move |c| runs::get_by_id(c, id)).await
    }
    async fn list_dag_runs(&self, dag_id: &str) -> Result<Vec<DagRun>> {
        let dag_id = dag_id.to_string();
        self.read(move |c| runs::list(c, &dag_id)).await
    }
    async fn unfinished_dag_runs(&self) -> Result<Vec<DagRun>> {
        self.read(runs::unfinished).await
    }
    async fn own_dag_runs(&self, request: OwnRuns) -> Result<Vec<DagRun>> {
        self.write(move |tx| ownership::own(tx, &request)).await
    }
    async fn release_owned_dag_runs(&self, scheduler_id: &str) -> Result<()> {
        let scheduler_id = scheduler_id.to_string();
        self.write(move |tx| ownership::release(tx, &scheduler_id))
            .await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn release_dag_run(&self, id: i64) -> Result<()> {
        self.write(move |tx| runs::release(tx, id)).await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn set_dag_run_state(
        &self,
        id: i64,
        expected: DagRunState,
        to: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<TransitionResult> {
        let result = self
            .write(move |tx| runs::set_state(tx, id, expected, to, now))
            .await?;
        if result == TransitionResult::Applied {
            self.changed([Change::Runs(vec![id])]);
        }
        Ok(result)
    }

    async fn time_out_dag_run(&self, id: i64, now: DateTime<Utc>) -> Result<TransitionResult> {
        let result = self
            .write(move |tx| manage::time_out_run(tx, id, now))
            .await?;
        if result == TransitionResult::Applied {
            self.changed([Change::Runs(vec![id])]);
        }
        Ok(result)
    }
    async fn previous_dag_run(
        &self,
        dag_id: &str,
        before: DateTime<Utc>,
        scheduled_only: bool,
    ) -> Result<Option<DagRun>> {
        let dag_id = dag_id.to_string();
        self.read(move |c| runs::previous(c, &dag_id, before, scheduled_only))
            .await
    }
    async fn has_earlier_task_instance(
        &self,
        dag_id: &str,
        task_id: &str,
        before: DateTime<Utc>,
    ) -> Result<bool> {
        let (dag_id, task_id) = (dag_id.to_string(), task_id.to_string());
        self.read(move |c| runs::has_earlier_task_instance(c, &dag_id, &task_id, before))
            .await
    }
    async fn latest_dag_run_states(&self, dag_id: &str, limit: u32) -> Result<Vec<DagRunState>> {
        let dag_id = dag_id.to_string();
        self.read(move |c| runs::latest_states(c, &dag_id, limit))
            .await
    }

    async fn start_dag_run(
        &self,
        id: i64,
        max_active_runs: u32,
        now: DateTime<Utc>,
    ) -> Result<RunStart> {
        let result = self
            .write(move |tx| runs::start(tx, id, max_active_runs, now))
            .await?;
        if result == RunStart::Started {
            self.changed([Change::Runs(vec![id])]);
        }
        Ok(result)
    }

    async fn task_instances(&self, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
        self.read(move |c| task_instances::of_run(c, dag_run_id))
            .await
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
        let (results, touched) = self
            .write(move |tx| {
                let mut touched = task_instances::Touched::default();
                let results = task_instances::apply(tx, &batch, &mut touched)?;
                task_instances::expand(tx, &batch, &results, &expansions)?;
                let due = TransitionNotifications::of_applied(notifications, &batch, &results);
                notifications::insert(tx, &due)?;
                Ok((results, touched))
            })
            .await?;
        self.changed(touched.changes());
        Ok(results)
    }
    async fn occupancy(&self) -> Result<Occupancy> {
        self.read(queueing::occupancy).await
    }
    async fn queue(
        &self,
        items: Vec<QueueItem>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransitionResult>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let (results, touched) = self
            .write(move |tx| {
                let mut touched = task_instances::Touched::default();
                let results = queueing::queue(tx, &items, now, &mut touched)?;
                Ok((results, touched))
            })
            .await?;
        self.changed(touched.changes());
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
        // One transaction, so one commit: a pass's plan and queueing write the same pages.
        let (applied, queued, touched) = self
            .write(move |tx| {
                let mut touched = task_instances::Touched::default();
                let applied = task_instances::apply(tx, &plan, &mut touched)?;
                let room = parallelism.saturating_sub(queueing::occupying(tx)?) as usize;
                let mut queued =
                    queueing::queue(tx, &items[..room.min(items.len())], now, &mut touched)?;
                queued.resize(items.len(), TransitionResult::Conflict);
                Ok((applied, queued, touched))
            })
            .await?;
        self.changed(touched.changes());
        Ok((applied, queued))
    }
    async fn earliest_retry(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(task_instances::earliest_retry).await
    }
    async fn clear_task_instances(
        &self,
        dag_run_id: i64,
        task_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let task_ids = task_ids.to_vec();
        let cleared = self
            .write(move |tx| task_instances::clear(tx, dag_run_id, &task_ids, now))
            .await?;
        if cleared > 0 {
            self.changed([Change::Runs(vec![dag_run_id])]);
        }
        Ok(cleared)
    }
    async fn clear_mapped_task_instances(
        &self,
        dag_run_id: i64,
        instances: &[(String, i64)],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let items: Vec<(String, Option<i64>)> = instances
            .iter()
            .map(|(task_id, map_index)| (task_id.clone(), Some(*map_index)))
            .collect();
        let cleared = self
            .write(move |tx| task_instances::clear_instances(tx, dag_run_id, &items, now))
            .await?;
        if cleared > 0 {
            self.changed([Change::Runs(vec![dag_run_id])]);
        }
        Ok(cleared)
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>> {
        let claimed = self.write(move |tx| claims::claim(tx, &request)).await?;
        if !claimed.is_empty() && self.watchers.receiver_count() > 0 {
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
        let claim_ids = claim_ids.to_vec();
        self.write(move |tx| claims::heartbeat(tx, &claim_ids, lease_until))
            .await
    }
    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        check_finishes(&reports)?;
        let (results, runs) = self.write(move |tx| finish::finish(tx, &reports)).await?;
        if !runs.is_empty() {
            self.changed([Change::Runs(runs)]);
        }
        Ok(results)
    }
    async fn expired_claims(&self, now: DateTime<Utc>) -> Result<Vec<TaskInstance>> {
        self.read(move |c| claims::expired_claims(c, now)).await
    }
    async fn claims_of_worker(&self, worker_id: &str) -> Result<Vec<TaskInstance>> {
        let worker_id = worker_id.to_string();
        self.read(move |c| claims::claims_of_worker(c, &worker_id))
            .await
    }
    async fn running_task_instances(&self) -> Result<Vec<TaskInstance>> {
        self.read(claims::running).await
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend> {
        self.write(move |tx| logs::append(tx, &chunk)).await
    }
    async fn read_log_from(
        &self,
        ti_id: i64,
        try_number: u32,
        from: u64,
    ) -> Result<Option<(u64, String)>> {
        self.read(move |c| logs::read_from(c, ti_id, try_number, from))
            .await
    }

    async fn job_heartbeat(&self, beat: JobHeartbeat) -> Result<()> {
        self.write(move |tx| jobs::heartbeat(tx, &beat)).await?;
        self.changed([Change::Jobs]);
        Ok(())
    }
    async fn list_jobs(
        &self,
        kind: Option<JobKind>,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<JobRecord>> {
        self.read(move |c| jobs::list(c, kind, alive_since)).await
    }
    async fn end_job(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.write(move |tx| jobs::end(tx, &id)).await?;
        self.changed([Change::Jobs]);
        Ok(())
    }

    async fn changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>> {
        // One process schedules a SQLite database; others wake it through its socket.
        Ok(None)
    }
    fn watch(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.watchers.subscribe()
    }
    fn announce(&self, change: Change) {
        self.changed([change]);
    }

    async fn set_pool(&self, pool: PoolRecord) -> Result<()> {
        self.write(move |tx| variables::set_pool(tx, &pool)).await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn list_pools(&self) -> Result<Vec<PoolRecord>> {
        self.read(variables::list_pools).await
    }
    async fn delete_pool(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        let existed = self
            .write(move |tx| variables::delete_pool(tx, &name))
            .await?;
        if existed {
            self.changed([Change::Everything]);
        }
        Ok(existed)
    }

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>> {
        self.read(move |c| variables::xcoms_for_run(c, dag_run_id))
            .await
    }
    async fn get_variable(&self, key: &str) -> Result<Option<String>> {
        let (key, secrets) = (key.to_string(), self.secrets.clone());
        self.read(move |c| variables::get(c, &secrets, &key)).await
    }
    async fn set_variable(&self, key: &str, value: &str) -> Result<()> {
        let key = key.to_string();
        let (value, encrypted) = self.secrets.seal(value);
        self.write(move |tx| variables::set(tx, &key, &value, encrypted))
            .await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn delete_variable(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        let existed = self.write(move |tx| variables::delete(tx, &key)).await?;
        if existed {
            self.changed([Change::Everything]);
        }
        Ok(existed)
    }
    async fn list_variables(&self) -> Result<Vec<(String, String)>> {
        let secrets = self.secrets.clone();
        self.read(move |c| variables::list(c, &secrets)).await
    }
}

/// The connection's settings, and the schema brought up to date.
fn prepare(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_err)?;
    // NORMAL in WAL mode keeps the database consistent on a crash; a power loss may lose the
    // last commits, which the lease sweep then redoes.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_err)?;
    schema::migrate(conn)?;
    Ok(())
}

//! The world the tests drive: a scheduler on a fresh SQLite file, a clock that moves only when
//! told, DAG builders, and the worker's side of the protocol (claim, finish, heartbeat).

use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tokio::sync::Notify;
use updraft_model::{Dag, Operator, Schedule, Task};
use updraft_scheduler::{Clock, PassOutcome, Scheduler, SchedulerConfig, SchedulerSignal};
use updraft_store::{
    ClaimRequest, ClaimedTask, DagRun, DagSync, DagUpsert, FinishReport, Store, TaskInstance,
    TaskState, TransitionResult,
};
use updraft_store_sqlite::SqliteStore;

/// How long a claim's lease lasts unless renewed.
pub const LEASE: Duration = Duration::seconds(30);

/// A clock that stands still until a test moves it.
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub struct World {
    pub store: Arc<SqliteStore>,
    pub clock: Arc<FakeClock>,
    pub scheduler: Scheduler,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// `text` (RFC 3339) as an instant.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// 2025-01-01T00:00:00Z, where most tests start.
pub fn new_year() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

/// A DAG in UTC on `schedule`, starting at [`new_year`], without catch-up.
pub fn dag(dag_id: &str, schedule: &str, tasks: Vec<Task>) -> Dag {
    Dag {
        start_date: Some(new_year()),
        tasks,
        ..Dag::new(dag_id, Schedule::parse(schedule).unwrap())
    }
}

/// A bash task downstream of `upstream`.
pub fn bash(task_id: &str, upstream: &[&str]) -> Task {
    Task {
        dependencies: upstream.iter().map(|u| u.to_string()).collect(),
        ..Task::new(
            task_id,
            Operator::Bash {
                bash_command: format!("echo {task_id}"),
            },
        )
    }
}

/// A task of the empty operator: the scheduler marks it successful without a worker.
pub fn empty(task_id: &str) -> Task {
    Task::new(task_id, Operator::Empty)
}

impl World {
    pub async fn new(config: SchedulerConfig, now: DateTime<Utc>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("updraft.db");
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let clock = Arc::new(FakeClock(Mutex::new(now)));
        let scheduler = Scheduler::new(
            store.clone(),
            clock.clone(),
            config,
            Arc::new(SchedulerSignal::default()),
            Arc::new(Notify::new()),
            Arc::new(AtomicI64::new(0)),
        );
        World {
            store,
            clock,
            scheduler,
            db,
            _dir: dir,
        }
    }

    /// A world with the default scheduler configuration.
    pub async fn at(now: DateTime<Utc>) -> World {
        World::new(SchedulerConfig::default(), now).await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Publishes `dags` as the DAG processor would (unpaused): the whole folder, every time.
    pub async fn publish(&self, dags: Vec<Dag>) {
        self.sync(dags, false).await;
    }

    pub async fn publish_paused(&self, dags: Vec<Dag>) {
        self.sync(dags, true).await;
    }

    async fn sync(&self, dags: Vec<Dag>, paused_at_creation: bool) {
        let dags = dags
            .into_iter()
            .map(|dag| {
                let definition = serde_json::to_string(&dag).unwrap();
                DagUpsert {
                    fileloc: format!("dags/{}.yaml", dag.dag_id),
                    content_hash: definition.clone(),
                    source: definition,
                    dag: std::sync::Arc::new(dag),
                }
            })
            .collect();
        self.store
            .sync_dags(DagSync {
                dags,
                import_errors: Vec::new(),
                now: self.now(),
                paused_at_creation,
                folder: None,
                files: None,
            })
            .await
            .unwrap();
    }

    pub async fn set_paused(&self, dag_id: &str, paused: bool) {
        self.store.set_paused(dag_id, paused).await.unwrap();
    }

    /// Gives pool `name` this many slots.
    pub async fn set_pool(&self, name: &str, slots: u32) {
        self.store
            .set_pool(updraft_store::PoolRecord {
                name: name.to_string(),
                slots,
                description: None,
            })
            .await
            .unwrap();
    }

    /// Another scheduler process on the same database and clock, named `scheduler_id`.
    pub fn another_scheduler(&self, scheduler_id: &str) -> Scheduler {
        self.another_signalled_scheduler(
            SchedulerConfig {
                scheduler_id: scheduler_id.to_string(),
                ..Default::default()
            },
            Arc::new(SchedulerSignal::default()),
            Arc::new(AtomicI64::new(0)),
        )
    }

    /// Another scheduler process with this configuration, woken through `signal`, noting
    /// the instant of its last pass in `heartbeat` (0 before its first).
    pub fn another_signalled_scheduler(
        &self,
        config: SchedulerConfig,
        signal: Arc<SchedulerSignal>,
        heartbeat: Arc<AtomicI64>,
    ) -> Scheduler {
        Scheduler::new(
            self.store.clone(),
            self.clock.clone(),
            config,
            signal,
            Arc::new(Notify::new()),
            heartbeat,
        )
    }

    /// Which scheduler owns each run of `dag_id` (oldest first), as recorded in the database.
    pub fn owners(&self, dag_id: &str) -> Vec<Option<String>> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut stmt = conn
            .prepare("SELECT scheduler_id FROM dag_run WHERE dag_id = ?1 ORDER BY logical_date")
            .unwrap();
        let rows = stmt
            .query_map([dag_id], |r| r.get::<_, Option<String>>(0))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// One full scheduling pass at the clock's time.
    pub async fn pass(&self) -> PassOutcome {
        self.scheduler.pass(true, HashSet::new()).await.unwrap()
    }

    /// `n` full passes.
    pub async fn passes(&self, n: usize) {
        for _ in 0..n {
            self.pass().await;
        }
    }

    /// The runs of `dag_id`, oldest logical date first.
    pub async fn runs(&self, dag_id: &str) -> Vec<DagRun> {
        self.store.list_dag_runs(dag_id).await.unwrap()
    }

    /// The logical dates of the runs of `dag_id`, oldest first, in RFC 3339.
    pub async fn logical_dates(&self, dag_id: &str) -> Vec<String> {
        self.runs(dag_id)
            .await
            .iter()
            .map(|r| r.logical_date.to_rfc3339())
            .collect()
    }

    pub async fn run(&self, id: i64) -> DagRun {
        self.store.get_dag_run_by_id(id).await.unwrap()
    }

    pub async fn tis(&self, run: &DagRun) -> Vec<TaskInstance> {
        self.store.task_instances(run.id).await.unwrap()
    }

    pub async fn ti(&self, run: &DagRun, task_id: &str) -> TaskInstance {
        self.tis(run)
            .await
            .into_iter()
            .find(|ti| ti.task_id == task_id)
            .unwrap_or_else(|| panic!("no task instance {task_id}"))
    }

    /// `task=state` for every task instance of `run`, in task order.
    pub async fn states(&self, run: &DagRun) -> String {
        self.tis(run)
            .await
            .iter()
            .map(|ti| format!("{}={}", ti.task_id, ti.state))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// How many task instances of every DAG are in `state`.
    pub async fn count(&self, state: TaskState) -> usize {
        let mut n = 0;
        for dag in self.store.list_dags().await.unwrap() {
            for run in self.runs(&dag.dag_id).await {
                n += self
                    .tis(&run)
                    .await
                    .iter()
                    .filter(|ti| ti.state == state)
                    .count();
            }
        }
        n
    }

    /// Claims up to `limit` queued task instances, as a worker would, with a lease of [`LEASE`].
    pub async fn claim(&self, limit: usize) -> Vec<ClaimedTask> {
        let now = self.now();
        self.store
            .claim(ClaimRequest {
                worker_id: "test-worker".to_string(),
                hostname: "test-host".to_string(),
                queues: None,
                dag_run_id: None,
                limit,
                now,
                lease_until: now + LEASE,
            })
            .await
            .unwrap()
    }

    /// Claims the one queued task instance there must be.
    pub async fn claim_one(&self) -> ClaimedTask {
        let mut claimed = self.claim(100).await;
        assert_eq!(
            claimed.len(),
            1,
            "expected exactly one queued task instance"
        );
        claimed.remove(0)
    }

    /// Reports the try `claimed` as successful.
    pub async fn succeed(&self, claimed: &ClaimedTask) {
        let result = self.report(claimed, TaskState::Success, None).await;
        assert_eq!(result, TransitionResult::Applied);
    }

    /// Reports the try `claimed` as failed, as the worker does: `up_for_retry` while the task
    /// has retries left, `failed` after. Returns the state reported.
    pub async fn fail(&self, claimed: &ClaimedTask) -> TaskState {
        let dag = self
            .store
            .get_dag_version(&claimed.ti.dag_id, claimed.dag_run.dag_version)
            .await
            .unwrap();
        let task = dag.task(&claimed.ti.task_id).unwrap();
        let user_try = claimed.ti.try_number - claimed.ti.infra_failures;
        let (state, next_retry_at) =
            updraft_model::retry::after_failure(task, user_try, self.now());
        let result = self.report(claimed, state, next_retry_at).await;
        assert_eq!(result, TransitionResult::Applied);
        state
    }

    /// Sends a finish report for `claimed`; the store decides whether it still counts.
    pub async fn report(
        &self,
        claimed: &ClaimedTask,
        state: TaskState,
        next_retry_at: Option<DateTime<Utc>>,
    ) -> TransitionResult {
        let results = self
            .store
            .finish(vec![FinishReport {
                ti_id: claimed.ti.id,
                try_number: claimed.ti.try_number,
                claim_id: claimed.claim_id.clone(),
                state,
                end_date: self.now(),
                next_retry_at,
                xcom: None,
                infrastructure_failure: false,
                log_tail: None,
                effects: Default::default(),
            }])
            .await
            .unwrap();
        results[0]
    }

    /// Renews the lease of `claimed` for another [`LEASE`]; false if the claim was lost.
    pub async fn heartbeat(&self, claimed: &ClaimedTask) -> bool {
        let lost = self
            .store
            .heartbeat(std::slice::from_ref(&claimed.claim_id), self.now() + LEASE)
            .await
            .unwrap();
        lost.is_empty()
    }
}

/// The news of `claimed`'s try having succeeded, as the change feed carries it.
pub fn succeeded(claimed: &ClaimedTask) -> updraft_scheduler::FinishedTry {
    updraft_scheduler::FinishedTry {
        dag_run_id: claimed.ti.dag_run_id,
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        state: TaskState::Success,
        next_retry_at: None,
    }
}

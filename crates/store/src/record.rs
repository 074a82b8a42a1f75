//! The records kept in the store, as plain data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub use updraft_model::{DagRunState, RunType, TaskState};

/// One DAG folder scan, to be made true in the database.
#[derive(Debug, Clone, Default)]
pub struct DagSync {
    pub dags: Vec<DagUpsert>,
    pub import_errors: Vec<ImportErrorRecord>,
    pub now: DateTime<Utc>,
    /// Airflow's `dags_are_paused_at_creation`: new DAGs start paused.
    pub paused_at_creation: bool,
    /// The folder that was scanned: only DAGs whose file lies under it are deactivated when
    /// missing (a scan of another folder must not remove them). `None`: any DAG may be.
    pub folder: Option<String>,
    /// What the scan recorded of the files it found, for the next scan (`None`: leave the
    /// records alone). They replace the records of the files under `folder`. A file recorded
    /// with a DAG that is not among `dags` did not change: its DAG stays as it is published.
    pub files: Option<Vec<DagFileRecord>>,
}

/// What a DAG processor recorded of one DAG file: its fingerprint and what it loaded to, so
/// that a new process can skip the files that did not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagFileRecord {
    pub fileloc: String,
    /// Modification time (microseconds); `None` where the file system keeps none.
    pub mtime: Option<DateTime<Utc>>,
    pub size: u64,
    pub content_hash: String,
    /// When the content was read.
    pub recorded_at: DateTime<Utc>,
    /// The parser that produced `outcome`.
    pub parser_version: String,
    pub outcome: DagFileOutcome,
}

/// What a DAG file loaded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagFileOutcome {
    /// The file defines the DAG with this dag_id.
    Dag(String),
    /// The file does not load: the import-error text.
    ImportError(String),
}

#[derive(Debug, Clone)]
pub struct DagUpsert {
    /// Shared with whoever loaded it: the store keeps it as the version's copy for the
    /// readers of this process ([`crate::SharedDags`]).
    pub dag: std::sync::Arc<updraft_model::Dag>,
    pub fileloc: String,
    pub content_hash: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub deactivated: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DagRecord {
    pub dag_id: String,
    pub fileloc: String,
    pub is_paused: bool,
    pub is_active: bool,
    pub version: i64,
    pub schedule: String,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub next_dagrun: Option<DateTime<Utc>>,
    /// When a DAG processor last published this DAG.
    pub last_parsed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportErrorRecord {
    pub filename: String,
    pub error: String,
}

#[derive(Debug, Clone)]
pub struct NewDagRun {
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub dag_version: i64,
    pub tasks: Vec<NewTaskInstance>,
    pub now: DateTime<Utc>,
    /// For scheduled runs: the DAG's next run after this one.
    pub next_dagrun: Option<Option<DateTime<Utc>>>,
    /// The process that runs this run by itself (`dags test`); other schedulers and workers
    /// leave such a run alone while that process lives.
    pub runner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTaskInstance {
    pub task_id: String,
    pub queue: String,
    pub pool: String,
    pub priority_weight: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagRun {
    pub id: i64,
    pub dag_id: String,
    pub run_id: String,
    pub run_type: RunType,
    pub state: DagRunState,
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
    pub conf: serde_json::Map<String, serde_json::Value>,
    pub dag_version: i64,
    pub queued_at: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// See [`NewDagRun::runner`].
    pub runner: Option<String>,
    /// A user's note on the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInstance {
    pub id: i64,
    pub dag_run_id: i64,
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i64,
    pub try_number: u32,
    pub state: TaskState,
    pub queue: String,
    pub pool: String,
    pub priority_weight: i64,
    pub hostname: Option<String>,
    pub worker_id: Option<String>,
    pub claim_id: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub infra_failures: u32,
    /// A user's note on the task instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TaskInstance {
    /// The runs of `tis`, each once and in id order: what a write of them changed, for
    /// watchers.
    pub fn runs_of(tis: &[TaskInstance]) -> Vec<i64> {
        let runs: std::collections::BTreeSet<i64> = tis.iter().map(|ti| ti.dag_run_id).collect();
        runs.into_iter().collect()
    }
}

/// A compare-and-set on one task instance: applied only if it is still in `from` at `try_number`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub ti_id: i64,
    pub try_number: u32,
    pub from: TaskState,
    pub to: TaskState,
    pub now: DateTime<Utc>,
    /// Starts a new try: `try_number + 1` is written with the new state.
    pub new_try: bool,
    pub next_retry_at: Option<DateTime<Utc>>,
}

/// What [`crate::Store::start_dag_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    /// The run is `running` now.
    Started,
    /// Its DAG already has `max_active_runs` running runs: the run stays `queued`.
    AtLimit,
    /// The run was no longer `queued` (another scheduler started it first): nothing changed.
    NotQueued,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionResult {
    Applied,
    /// The row was no longer in the expected state or try: nothing changed.
    Conflict,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Queued + running task instances per DAG.
    pub per_dag: HashMap<String, u32>,
    pub per_pool: HashMap<String, u32>,
    pub pool_slots: HashMap<String, u32>,
    pub total: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub hostname: String,
    /// The queues served; `None` serves every queue (the local worker of `standalone`).
    pub queues: Option<Vec<String>>,
    /// Only claim tasks of this run (`dags test`).
    pub dag_run_id: Option<i64>,
    pub limit: usize,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// A task instance a worker now owns for one try, with what it needs to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedTask {
    pub ti: TaskInstance,
    pub claim_id: String,
    pub dag_run: DagRun,
}

impl ClaimedTask {
    /// The runs of `claimed`, each once and in id order: what a claim changed, for watchers.
    pub fn runs_of(claimed: &[ClaimedTask]) -> Vec<i64> {
        let runs: std::collections::BTreeSet<i64> =
            claimed.iter().map(|c| c.ti.dag_run_id).collect();
        runs.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishReport {
    pub ti_id: i64,
    pub try_number: u32,
    pub claim_id: String,
    /// success, failed, up_for_retry or skipped.
    pub state: TaskState,
    pub end_date: DateTime<Utc>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub xcom: Option<serde_json::Value>,
    /// The try failed because its worker or process was lost, not because of the task.
    pub infrastructure_failure: bool,
    /// The end of the try's log that a remote worker had not sent yet: stored in the same
    /// transaction as the report, like a [`LogChunk`] of this claim (so not if the try is no
    /// longer the worker's), and a short task's log costs no request of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<LogTail>,
    /// What the try did besides ending (a Python task's pushed XComs and skipped tasks),
    /// applied in the finish's transaction when the report is.
    #[serde(default, skip_serializing_if = "TryEffects::is_empty")]
    pub effects: TryEffects,
}

/// What a try changed in its run besides its own state and return value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TryEffects {
    /// XComs pushed under keys other than `return_value` (`ti.xcom_push`), in order.
    #[serde(default)]
    pub xcoms: Vec<PushedXCom>,
    /// Task ids of the same run to mark `skipped` if they have not started (state `none`
    /// or `scheduled`): the paths a branch did not take, what a short circuit cut off.
    #[serde(default)]
    pub skip: Vec<String>,
    /// What the try's end tells its callbacks (`on_failure_callback`, …): stored in the
    /// notification outbox in the finish's transaction, so only if the report is applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::NewNotification>,
}

impl TryEffects {
    pub fn is_empty(&self) -> bool {
        self.xcoms.is_empty() && self.skip.is_empty() && self.notifications.is_empty()
    }
}

/// One XCom a try pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushedXCom {
    pub key: String,
    pub value: serde_json::Value,
}

impl FinishReport {
    /// The log tail as a chunk of this report's claim.
    pub fn log_chunk(&self) -> Option<LogChunk> {
        self.log_tail.as_ref().map(|tail| LogChunk {
            ti_id: self.ti_id,
            try_number: self.try_number,
            claim_id: self.claim_id.clone(),
            offset: tail.offset,
            data: tail.data.clone(),
        })
    }
}

/// The last part of a try's log, from byte `offset` to its end (see [`LogChunk`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTail {
    pub offset: u64,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XCom {
    pub task_id: String,
    /// The mapped instance that pushed it (`-1`: a task that is not mapped).
    #[serde(default = "unmapped")]
    pub map_index: i64,
    pub key: String,
    pub value: serde_json::Value,
}

/// Values by map index.
type IndexedValues = Vec<(i64, serde_json::Value)>;

fn unmapped() -> i64 {
    -1
}

impl XCom {
    /// A run's XComs as a task downstream sees them: the values a mapped task's instances
    /// pushed under one key become one list in `map_index` order (Airflow's reduce of a
    /// mapped result); an unmapped task's values stay as they are. Input order is kept
    /// otherwise.
    pub fn as_seen_downstream(xcoms: Vec<XCom>) -> Vec<XCom> {
        let mut out: Vec<XCom> = Vec::with_capacity(xcoms.len());
        let mut mapped: Vec<(String, String, IndexedValues)> = Vec::new();
        for x in xcoms {
            if x.map_index < 0 {
                out.push(x);
                continue;
            }
            match mapped
                .iter_mut()
                .find(|(task, key, _)| *task == x.task_id && *key == x.key)
            {
                Some((_, _, values)) => values.push((x.map_index, x.value)),
                None => mapped.push((x.task_id, x.key, vec![(x.map_index, x.value)])),
            }
        }
        for (task_id, key, mut values) in mapped {
            values.sort_by_key(|(index, _)| *index);
            out.push(XCom {
                task_id,
                map_index: -1,
                key,
                value: serde_json::Value::Array(values.into_iter().map(|(_, v)| v).collect()),
            });
        }
        out
    }
}

/// Expanding a mapped task's placeholder (`map_index` -1) into its instances, applied with
/// the transition that decides the placeholder is ready ([`crate::Store::apply_plan`]): only
/// if that compare-and-set is applied, the placeholder becomes instance 0 and instances
/// 1..`count` are created in the same state, in the same transaction, so that a crash or
/// another scheduler never sees half an expansion and it happens once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub ti_id: i64,
    pub count: u32,
}

/// The notifications a transition of a plan causes ([`crate::Store::apply_plan_notifying`]):
/// stored in that transition's transaction, only if it applied.
#[derive(Debug, Clone)]
pub struct TransitionNotifications {
    pub ti_id: i64,
    pub notifications: Vec<crate::NewNotification>,
}

impl TransitionNotifications {
    /// The notifications of those of `all` whose transition in `batch` applied.
    pub fn of_applied(
        all: Vec<TransitionNotifications>,
        batch: &[Transition],
        results: &[TransitionResult],
    ) -> Vec<crate::NewNotification> {
        let applied: std::collections::HashSet<i64> = batch
            .iter()
            .zip(results)
            .filter(|(_, r)| **r == TransitionResult::Applied)
            .map(|(t, _)| t.ti_id)
            .collect();
        all.into_iter()
            .filter(|n| applied.contains(&n.ti_id))
            .flat_map(|n| n.notifications)
            .collect()
    }
}

/// One task instance the scheduler wants queued (from `scheduled`, starting try
/// `try_number + 1`). The store admits it only if its DAG stays within `max_active_tasks` and
/// its pool within its slots, counted inside the queueing transaction, so that several
/// schedulers together never exceed a limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueItem {
    pub ti_id: i64,
    pub try_number: u32,
    pub dag_id: String,
    pub pool: String,
    /// The instance's queue and run, which the store announces as having work when it
    /// queues it.
    pub queue: String,
    pub dag_run_id: i64,
    pub max_active_tasks: u32,
    /// The task's own limits, when it has any, counted the same way.
    pub task_limits: Option<TaskLimits>,
    /// A rescheduled sensor's next poke: queued from `up_for_reschedule` with the same try
    /// (and its first poke's `start_date` kept), not from `scheduled` with a new one.
    pub resumes: bool,
}

/// A task's `max_active_tis_per_dag` and `max_active_tis_per_dagrun`: how many of its
/// instances may be queued or running at once over the DAG's runs, and within one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskLimits {
    pub task_id: String,
    pub dag_run_id: i64,
    pub per_dag: Option<u32>,
    pub per_run: Option<u32>,
}

/// A scheduler taking charge of the unfinished runs it will evaluate.
#[derive(Debug, Clone)]
pub struct OwnRuns {
    pub scheduler_id: String,
    pub now: DateTime<Utc>,
    /// Another scheduler may adopt this scheduler's runs once this passes.
    pub lease_until: DateTime<Utc>,
    /// At most this many runs are owned after adopting (a fair share of the cluster's).
    pub max_owned: usize,
}

/// The kind of a long-running process that records heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Scheduler,
    Worker,
    ApiServer,
    Standalone,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Scheduler => "scheduler",
            JobKind::Worker => "worker",
            JobKind::ApiServer => "api-server",
            JobKind::Standalone => "standalone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduler" => JobKind::Scheduler,
            "worker" => JobKind::Worker,
            "api-server" => JobKind::ApiServer,
            "standalone" => JobKind::Standalone,
            _ => return None,
        })
    }
}

/// A process saying it is alive (inserted on the first beat, updated after).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHeartbeat {
    /// Unique per process (`host:pid:start-time`).
    pub id: String,
    pub kind: JobKind,
    pub hostname: String,
    /// The queues a worker serves (empty: all, or not a worker).
    pub queues: Vec<String>,
    /// `running` or `draining` (a worker finishing its tasks before it exits).
    pub state: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// A number unique among the job records, for APIs that identify jobs by integer.
    pub number: i64,
    pub kind: JobKind,
    pub hostname: String,
    pub queues: Vec<String>,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub latest_heartbeat: DateTime<Utc>,
}

/// Bytes of a try's log, sent by the worker running it. `offset` is where `data` starts in
/// the whole log, so a chunk sent twice (after a failover) is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogChunk {
    pub ti_id: i64,
    pub try_number: u32,
    pub claim_id: String,
    pub offset: u64,
    pub data: String,
}

/// What became of a [`LogChunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LogAppend {
    /// Stored; the log now holds `length` bytes.
    Stored { length: u64 },
    /// The chunk starts after the end of the stored log: resend from `length`.
    Gap { length: u64 },
    /// The try is not this claim's any more (fenced off): stop the task.
    Fenced,
}

/// Something committed to the database: what another process announces through the database
/// (PostgreSQL `LISTEN/NOTIFY`, [`crate::Store::changes`]), or any commit ([`crate::Store::watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Task instances of these runs changed (finished, cleared), or the runs were created.
    Runs(Vec<i64>),
    /// Task instances were queued on these queues.
    WorkQueued(Vec<String>),
    /// What these DAGs' rows say about their scheduling changed (the next scheduled run),
    /// not their definitions, runs or pauses: for readers only.
    Dags(Vec<String>),
    /// A process's heartbeat record changed (it beat, started or ended): for readers only,
    /// such as the UI's health and cluster pages.
    Jobs,
    /// DAGs, pauses or anything else: look at everything. Also sent after the notification
    /// connection was lost and restored, since changes in between were missed.
    Everything,
    /// Only on a scheduler's feed ([`crate::Store::changes`]), in place of the [`Change::Runs`]
    /// of a finish: these tries ended as committed, so a scheduler that keeps their runs'
    /// states applies them instead of reading the runs again; `reread` are runs the same
    /// commit changed beyond them (tasks a try skipped, a cleared try reset).
    TriesFinished {
        tries: Vec<FinishedTry>,
        reread: Vec<i64>,
    },
    /// Only on a scheduler's feed: another scheduler's pass over tries that ended in its runs
    /// left some of the places they freed (a DAG's, a pool's) empty, having nothing of its
    /// own to put there. A scheduler with queueable work of its own fills them; tries that end
    /// in another's runs are otherwise that scheduler's to answer.
    PlacesFree,
}

/// A try's end as committed: what a scheduler needs to update the state it keeps of the task
/// instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedTry {
    pub dag_run_id: i64,
    pub ti_id: i64,
    pub try_number: u32,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<DateTime<Utc>>,
}

impl FinishedTry {
    /// `report`, applied, of a task instance of `dag_run_id`.
    pub fn from_report(dag_run_id: i64, report: &FinishReport) -> Self {
        FinishedTry {
            dag_run_id,
            ti_id: report.ti_id,
            try_number: report.try_number,
            state: report.state,
            next_retry_at: report.next_retry_at,
        }
    }
}

/// A pool: at most `slots` of its task instances are queued or running at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    pub name: String,
    pub slots: u32,
    pub description: Option<String>,
}

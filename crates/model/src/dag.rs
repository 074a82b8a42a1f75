//! A validated DAG definition, as stored in the database and run by the scheduler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::notify::{DagCallbacks, TaskCallbacks};
use crate::timetable::Schedule;
use crate::trigger_rule::TriggerRule;

/// Airflow's BashOperator default: this exit code marks the task `skipped`.
pub const DEFAULT_SKIP_EXIT_CODE: i32 = 99;
pub const DEFAULT_POOL: &str = "default_pool";
pub const DEFAULT_QUEUE: &str = "default";
/// Airflow's defaults for a DAG that does not say.
pub const DEFAULT_MAX_ACTIVE_RUNS: u32 = 16;
pub const DEFAULT_MAX_ACTIVE_TASKS: u32 = 16;

/// A DAG that passed validation: ids are unique, dependencies exist and form no cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    pub dag_id: String,
    pub description: Option<String>,
    pub schedule: Schedule,
    pub timezone: chrono_tz::Tz,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub catchup: bool,
    pub max_active_runs: u32,
    pub max_active_tasks: u32,
    /// Airflow's `dagrun_timeout`: a running run older than this (from its start) is failed
    /// and its unfinished task instances skipped.
    #[serde(
        default,
        with = "opt_duration_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub dagrun_timeout: Option<Duration>,
    /// Airflow's `max_consecutive_failed_dag_runs`: the DAG is paused once its last this
    /// many runs (by logical date) failed; 0 never pauses it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_consecutive_failed_dag_runs: u32,
    /// The DAG's `on_success_callback`, `on_failure_callback` and deadline alerts (see
    /// [`crate::notify`]).
    #[serde(default, skip_serializing_if = "DagCallbacks::is_empty")]
    pub callbacks: DagCallbacks,
    pub tags: Vec<String>,
    /// As written in the file: each entry a plain default or a param spec (see [`crate::param`]).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The file's `default_args` as written (already applied to `tasks`): what the UI shows.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub default_args: serde_json::Map<String, serde_json::Value>,
    /// Airflow's asset schedule: the DAG gets a run (`asset_triggered`) when this condition
    /// on its assets' queued events holds. With a time `schedule` too, either one makes a run
    /// (Airflow's `AssetOrTimeSchedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_schedule: Option<crate::AssetCondition>,
    /// In the order of the file; `dependencies` name tasks of this list.
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub task_id: String,
    pub operator: Operator,
    pub dependencies: Vec<String>,
    pub trigger_rule: TriggerRule,
    pub retries: u32,
    #[serde(with = "duration_secs")]
    pub retry_delay: Duration,
    pub retry_exponential_backoff: bool,
    #[serde(with = "opt_duration_secs")]
    pub max_retry_delay: Option<Duration>,
    #[serde(with = "opt_duration_secs")]
    pub execution_timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub pool: String,
    pub queue: String,
    pub priority_weight: i64,
    pub skip_on_exit_code: Vec<i32>,
    pub do_xcom_push: bool,
    /// The task group it belongs to (its id is prefixed with the group's, as Airflow does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_group: Option<String>,
    /// Set for a mapped task (`expand`, `expand_kwargs`): it runs as one task instance per
    /// mapped value (see [`crate::mapping`]); the other settings are its `partial` ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<crate::Mapping>,
    /// The mapped task group whose arguments `mapping` holds (Airflow's `@task_group` called
    /// with `.expand(…)`): every task of the group expands to the same instances, and an
    /// instance depends only on the same map index of the group's other tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_group: Option<String>,
    /// Airflow's setup and teardown roles (`as_setup()`, `as_teardown()`): see
    /// [`crate::setup_teardown`].
    #[serde(default, skip_serializing_if = "TaskRole::is_work")]
    pub role: TaskRole,
    /// Airflow's `depends_on_past`, `wait_for_downstream` and `ignore_first_depends_on_past`:
    /// see [`PastDependency`].
    #[serde(default, skip_serializing_if = "PastDependency::is_off")]
    pub past: PastDependency,
    /// Airflow's `max_active_tis_per_dag`: instances of this task queued or running at once,
    /// over every run of the DAG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_tis_per_dag: Option<u32>,
    /// Airflow's `max_active_tis_per_dagrun`: instances of this task (a mapped task's) queued
    /// or running at once within one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_tis_per_dagrun: Option<u32>,
    /// The assets a successful try updates: one asset event each (Airflow's `outlets`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outlets: Vec<crate::Asset>,
    /// The assets the task reads (Airflow's `inlets`): informational.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inlets: Vec<crate::Asset>,
    /// The task's callbacks and Airflow's `email*` keys (see [`crate::notify`]).
    #[serde(
        default = "TaskCallbacks::new",
        skip_serializing_if = "TaskCallbacks::is_empty"
    )]
    pub callbacks: TaskCallbacks,
    /// Set for a sensor the worker pokes (a file sensor, a Python or HTTP sensor) or the
    /// scheduler pokes (a wait on another DAG): how it pokes and when it gives up (see
    /// [`crate::sensor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor: Option<crate::Sensing>,
}

/// Whether a task instance waits for the same task in the previous run (by logical date)
/// before it starts: Airflow's `depends_on_past` (that task succeeded or was skipped) and
/// `wait_for_downstream` (and so did the tasks directly downstream of it there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDependency {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub depends_on_past: bool,
    /// Implies `depends_on_past`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait_for_downstream: bool,
    /// Airflow 3's default (true): a task that has no instance in any earlier run (a new task)
    /// does not wait.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub ignore_first_depends_on_past: bool,
}

impl Default for PastDependency {
    fn default() -> Self {
        PastDependency {
            depends_on_past: false,
            wait_for_downstream: false,
            ignore_first_depends_on_past: true,
        }
    }
}

impl PastDependency {
    /// Whether the task waits for its previous instance at all.
    pub fn applies(&self) -> bool {
        self.depends_on_past || self.wait_for_downstream
    }

    fn is_off(&self) -> bool {
        *self == PastDependency::default()
    }
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Whether a task sets up or tears down a resource for the work tasks between them. A
/// teardown runs once its setups are done whatever its work tasks did, and does not decide
/// the run's outcome unless `on_failure_fail_dagrun`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRole {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_setup: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_teardown: bool,
    /// A teardown whose failure fails the run (Airflow's `on_failure_fail_dagrun`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_failure_fail_dagrun: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Operator {
    Bash {
        bash_command: String,
    },
    Empty,
    /// A Python callable, found and called by the SDK in a child `python3` that executes the
    /// DAG file again (see `docs/python-protocol.md`).
    Python {
        /// Module-level dotted name or `<lambda>`; informational (UI, CLI).
        python_callable: String,
        /// Another interpreter than `core.python` (Airflow's `ExternalPythonOperator`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        python_executable: Option<String>,
        #[serde(default)]
        python_kind: PythonKind,
        /// Line of the callable in the DAG file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_line: Option<u32>,
    },
    /// One HTTP request (Airflow's `HttpOperator`).
    Http(crate::HttpCall),
    /// One container run (Airflow's `DockerOperator`).
    Docker(Box<crate::DockerRun>),
    /// Waits for a file or a glob to match (Airflow's `FileSensor`); poked by the worker
    /// itself, without a process.
    FileSensor(crate::FileWait),
    /// Waits until the run's data interval end plus `delta` (`TimeDeltaSensor`): decided by
    /// the scheduler, no process and no worker slot.
    TimeDeltaSensor {
        #[serde(with = "duration_secs")]
        delta: Duration,
    },
    /// Waits until a time of the day in the DAG's time zone (`TimeSensor`): decided by the
    /// scheduler.
    TimeSensor {
        target_time: chrono::NaiveTime,
    },
    /// Waits until an instant (`DateTimeSensor`): decided by the scheduler.
    DateTimeSensor {
        target_time: DateTime<Utc>,
    },
    /// Starts a run of another DAG (Airflow's `TriggerDagRunOperator`).
    #[serde(rename = "trigger_dagrun")]
    TriggerDagRun(Box<crate::TriggerDagRun>),
    /// Runs nothing; clearing it clears a task of another DAG (Airflow's
    /// `ExternalTaskMarker`).
    ExternalTaskMarker(crate::ExternalTaskMarker),
    /// Waits for a task, a task group or a run of another DAG (Airflow's
    /// `ExternalTaskSensor`): decided by the scheduler from the store at each poke, no
    /// process and no worker slot.
    ExternalTaskSensor(Box<crate::ExternalTaskSensor>),
}

/// What a Python task's callable is for; the SDK decides what its result means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonKind {
    /// `@task`, `PythonOperator`: the return value is the XCom.
    #[default]
    Task,
    /// `@task.branch`, `BranchPythonOperator`: the returned ids are followed, the other
    /// direct downstream tasks skipped.
    Branch,
    /// `@task.short_circuit`, `ShortCircuitOperator`: a falsy result skips everything
    /// downstream.
    ShortCircuit,
    /// `@task.bash`: the callable returns a command that runs with bash.
    Bash,
    /// `LatestOnlyOperator`: skips downstream unless the run is the latest.
    LatestOnly,
    /// `PythonSensor`, `@task.sensor`, a `BaseSensorOperator`'s `poke`: each call is one
    /// poke; a truthy result (or a done `PokeReturnValue`) ends the wait.
    Sensor,
}

impl PythonKind {
    /// Every kind, as DAG files name it in `python_kind:`.
    pub const NAMES: [&'static str; 6] = [
        "task",
        "branch",
        "short_circuit",
        "bash",
        "latest_only",
        "sensor",
    ];

    pub fn name(self) -> &'static str {
        match self {
            PythonKind::Task => "task",
            PythonKind::Branch => "branch",
            PythonKind::ShortCircuit => "short_circuit",
            PythonKind::Bash => "bash",
            PythonKind::LatestOnly => "latest_only",
            PythonKind::Sensor => "sensor",
        }
    }

    pub fn from_name(name: &str) -> Option<PythonKind> {
        Self::NAMES.iter().position(|n| *n == name).map(|i| {
            [
                Self::Task,
                Self::Branch,
                Self::ShortCircuit,
                Self::Bash,
                Self::LatestOnly,
                Self::Sensor,
            ][i]
        })
    }
}

impl Operator {
    /// Every kind, as DAG files name it in `operator:`.
    pub const KINDS: [&'static str; 12] = [
        "bash",
        "date_time_sensor",
        "docker",
        "empty",
        "external_task_marker",
        "external_task_sensor",
        "file_sensor",
        "http",
        "python",
        "time_delta_sensor",
        "time_sensor",
        "trigger_dagrun",
    ];

    /// The kind, as DAG files name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Operator::Bash { .. } => "bash",
            Operator::Empty => "empty",
            Operator::Python { .. } => "python",
            Operator::Http(_) => "http",
            Operator::Docker(_) => "docker",
            Operator::FileSensor(_) => "file_sensor",
            Operator::TimeDeltaSensor { .. } => "time_delta_sensor",
            Operator::TimeSensor { .. } => "time_sensor",
            Operator::DateTimeSensor { .. } => "date_time_sensor",
            Operator::TriggerDagRun(_) => "trigger_dagrun",
            Operator::ExternalTaskMarker(_) => "external_task_marker",
            Operator::ExternalTaskSensor(_) => "external_task_sensor",
        }
    }

    /// What a sensor operator waits for, as the UI shows it.
    pub fn wait_summary(&self) -> Option<String> {
        match self {
            Operator::FileSensor(wait) => Some(format!("{} ({})", wait.filepath, wait.fs_conn_id)),
            Operator::TimeDeltaSensor { delta } => {
                Some(format!("{}s after the data interval", delta.as_secs_f64()))
            }
            Operator::TimeSensor { target_time } => Some(format!("until {target_time}")),
            Operator::DateTimeSensor { target_time } => Some(format!(
                "until {}",
                target_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )),
            Operator::ExternalTaskSensor(sensor) => Some(sensor.summary()),
            _ => None,
        }
    }

    /// The wait on time alone this operator is, which the scheduler decides itself.
    pub fn time_wait(&self) -> Option<crate::TimeWait> {
        match self {
            Operator::TimeDeltaSensor { delta } => Some(crate::TimeWait::AfterInterval(*delta)),
            Operator::TimeSensor { target_time } => Some(crate::TimeWait::TimeOfDay(*target_time)),
            Operator::DateTimeSensor { target_time } => Some(crate::TimeWait::Until(*target_time)),
            _ => None,
        }
    }

    /// The wait on another DAG this operator is, which the scheduler decides itself.
    pub fn external_wait(&self) -> Option<&crate::ExternalTaskSensor> {
        match self {
            Operator::ExternalTaskSensor(sensor) => Some(sensor),
            _ => None,
        }
    }

    /// Whether a try of it has nothing to run: the scheduler marks it done without a worker
    /// (Airflow's `EmptyOperator` and its subclass `ExternalTaskMarker`).
    pub fn runs_nothing(&self) -> bool {
        matches!(self, Operator::Empty | Operator::ExternalTaskMarker(_))
    }
}

impl Dag {
    /// A DAG without tasks on `schedule`, everything else as a DAG file that says nothing
    /// more gets it (UTC, no start or end, no catch-up, Airflow's limits).
    pub fn new(dag_id: impl Into<String>, schedule: Schedule) -> Dag {
        Dag {
            dag_id: dag_id.into(),
            description: None,
            schedule,
            timezone: chrono_tz::UTC,
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: DEFAULT_MAX_ACTIVE_RUNS,
            max_active_tasks: DEFAULT_MAX_ACTIVE_TASKS,
            dagrun_timeout: None,
            max_consecutive_failed_dag_runs: 0,
            callbacks: Default::default(),
            tags: Vec::new(),
            params: serde_json::Map::new(),
            default_args: serde_json::Map::new(),
            asset_schedule: None,
            tasks: Vec::new(),
        }
    }

    /// The params as specs, in file order. Entries that are not valid specs (the DAG file
    /// loader rejects those) are left out.
    pub fn param_specs(&self) -> Vec<crate::Param> {
        crate::param::read_params(&self.params).0
    }

    /// Each param's default value (`null` when it has none): what templates see as `params`
    /// before a run's `conf` overrides them.
    pub fn param_defaults(&self) -> serde_json::Map<String, serde_json::Value> {
        self.param_specs()
            .into_iter()
            .map(|p| (p.name, p.default.unwrap_or(serde_json::Value::Null)))
            .collect()
    }

    pub fn task(&self, task_id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.task_id == task_id)
    }

    /// The mapped tasks that map over `task_id`'s result, in file order: what that result
    /// must be fit for (a list or a dict, not too long).
    pub fn mapped_consumers<'a>(&'a self, task_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.iter().filter(move |t| {
            t.mapping
                .as_ref()
                .is_some_and(|m| m.upstream_tasks().contains(&task_id))
        })
    }

    /// Direct downstream task ids of `task_id`, in file order.
    pub fn downstream_of<'a>(&'a self, task_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .iter()
            .filter(move |t| t.dependencies.iter().any(|d| d == task_id))
    }

    /// `task_id` and everything downstream of it, transitively.
    pub fn with_all_downstream(&self, task_id: &str) -> Vec<String> {
        self.downstream_closure([task_id])
    }

    /// `roots` (those that name a task, in the given order) and everything downstream of
    /// them, transitively, breadth first; each task once. Linear in the DAG's size.
    pub fn downstream_closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for task in &self.tasks {
            for dependency in &task.dependencies {
                children
                    .entry(dependency.as_str())
                    .or_default()
                    .push(task.task_id.as_str());
            }
        }
        let known: HashSet<&str> = self.tasks.iter().map(|t| t.task_id.as_str()).collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out: Vec<&str> = Vec::new();
        for root in roots {
            if let Some(&task_id) = known.get(root) {
                if seen.insert(task_id) {
                    out.push(task_id);
                }
            }
        }
        let mut next = 0;
        while next < out.len() {
            for &child in children
                .get(out[next])
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if seen.insert(child) {
                    out.push(child);
                }
            }
            next += 1;
        }
        out.into_iter().map(str::to_string).collect()
    }
}

impl TaskRole {
    /// Neither a setup nor a teardown: an ordinary ("work") task.
    pub fn is_work(&self) -> bool {
        !self.is_setup && !self.is_teardown
    }
}

impl Task {
    /// A task with every optional setting at its default; used by loaders and tests.
    pub fn new(task_id: impl Into<String>, operator: Operator) -> Self {
        // Airflow's DockerOperator skips on no exit code unless told; BashOperator on 99.
        let skip_on_exit_code = match operator {
            Operator::Docker(_) => Vec::new(),
            _ => vec![DEFAULT_SKIP_EXIT_CODE],
        };
        // A file sensor (or a wait on another DAG) is a sensor whatever its file says; other
        // kinds opt in.
        let sensor = matches!(
            operator,
            Operator::FileSensor(_) | Operator::ExternalTaskSensor(_)
        )
        .then(crate::Sensing::default);
        Task {
            task_id: task_id.into(),
            operator,
            dependencies: Vec::new(),
            trigger_rule: TriggerRule::AllSuccess,
            retries: 0,
            retry_delay: Duration::from_secs(300),
            retry_exponential_backoff: false,
            max_retry_delay: None,
            execution_timeout: None,
            env: BTreeMap::new(),
            cwd: None,
            pool: DEFAULT_POOL.to_string(),
            queue: DEFAULT_QUEUE.to_string(),
            priority_weight: 1,
            skip_on_exit_code,
            do_xcom_push: true,
            task_group: None,
            role: TaskRole::default(),
            mapping: None,
            past: PastDependency::default(),
            max_active_tis_per_dag: None,
            max_active_tis_per_dagrun: None,
            map_group: None,
            outlets: Vec::new(),
            inlets: Vec::new(),
            callbacks: TaskCallbacks::new(),
            sensor,
        }
    }
}

pub(crate) mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

mod opt_duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

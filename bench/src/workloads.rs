//! The workloads W1–W14 of `shared/design/WORKLOADS.md`, each run on a fresh
//! `$UPDRAFT_HOME`, and the soak of issue 14 (asked for by name only: it takes an hour).

mod api;
mod bigdag;
mod chain40;
mod fan200;
mod idle100;
mod latency;
mod manydags;
mod parse1000;
mod python;
mod scale_history;
mod sensors;
mod soak;
mod startup;

pub use soak::{SOAK_API_SERVERS, SOAK_SCHEDULERS, SOAK_WORKERS};
mod throughput;
mod ui;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cluster::ClusterShape;
use crate::dag_folder;
use crate::deployment::Deployment;
use crate::history::History;
use crate::measurement::Measurement;
use crate::metadata::{Database, Metadata, RunRecord};
use crate::postgres::Server;
use crate::updraft::{Home, Updraft};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Chain40,
    Fan200,
    Idle100,
    Startup,
    Throughput,
    Parse1000,
    Latency,
    Python,
    BigDag,
    ManyDags,
    History,
    Sensors,
    Api,
    Ui,
    Soak,
}

impl Workload {
    /// What `all` runs: every workload but the soak.
    pub const ALL: [Workload; 14] = [
        Workload::Chain40,
        Workload::Fan200,
        Workload::Idle100,
        Workload::Startup,
        Workload::Throughput,
        Workload::Parse1000,
        Workload::Latency,
        Workload::Python,
        Workload::BigDag,
        Workload::ManyDags,
        Workload::History,
        Workload::Sensors,
        Workload::Api,
        Workload::Ui,
    ];

    /// Every workload there is, the soak included.
    const EVERY: [Workload; 15] = {
        let mut every = [Workload::Soak; 15];
        let mut i = 0;
        while i < Workload::ALL.len() {
            every[i] = Workload::ALL[i];
            i += 1;
        }
        every
    };

    pub fn id(self) -> &'static str {
        match self {
            Workload::Chain40 => "W1",
            Workload::Fan200 => "W2",
            Workload::Idle100 => "W3",
            Workload::Startup => "W4",
            Workload::Throughput => "W5",
            Workload::Parse1000 => "W6",
            Workload::Latency => "W7",
            Workload::Python => "W8",
            Workload::BigDag => "W9",
            Workload::ManyDags => "W10",
            Workload::History => "W11",
            Workload::Sensors => "W12",
            Workload::Api => "W13",
            Workload::Ui => "W14",
            Workload::Soak => "SOAK",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::Chain40 => "chain40",
            Workload::Fan200 => "fan200",
            Workload::Idle100 => "idle100",
            Workload::Startup => "startup",
            Workload::Throughput => "throughput",
            Workload::Parse1000 => "parse1000",
            Workload::Latency => "latency",
            Workload::Python => "python",
            Workload::BigDag => "bigdag",
            Workload::ManyDags => "manydags",
            Workload::History => "history",
            Workload::Sensors => "sensors",
            Workload::Api => "api",
            Workload::Ui => "ui",
            Workload::Soak => "soak",
        }
    }

    pub fn label(self) -> String {
        format!("{} {}", self.id(), self.name())
    }

    /// `all`, or ids / names separated by commas, in the order given.
    pub fn parse_list(text: &str) -> Result<Vec<Workload>> {
        if text.trim().eq_ignore_ascii_case("all") {
            return Ok(Workload::ALL.to_vec());
        }
        let mut list = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let Some(w) = Workload::EVERY
                .into_iter()
                .find(|w| w.id().eq_ignore_ascii_case(word) || w.name().eq_ignore_ascii_case(word))
            else {
                bail!(
                    "unknown workload {word:?}: expected all, w1…w14, a name like chain40, or soak"
                );
            };
            if !list.contains(&w) {
                list.push(w);
            }
        }
        if list.is_empty() {
            bail!("no workload selected");
        }
        Ok(list)
    }

    /// One repetition, on a fresh home.
    pub fn run(self, bench: &Bench) -> Result<Measurement> {
        match self {
            Workload::Chain40 => chain40::run(bench),
            Workload::Fan200 => fan200::run(bench),
            Workload::Idle100 => idle100::run(bench),
            Workload::Startup => startup::run(bench),
            Workload::Throughput => throughput::run(bench),
            Workload::Parse1000 => parse1000::run(bench),
            Workload::Latency => latency::run(bench),
            Workload::Python => python::run(bench),
            Workload::BigDag => bigdag::run(bench),
            Workload::ManyDags => manydags::run(bench),
            Workload::History => scale_history::run(bench),
            Workload::Sensors => sensors::run(bench),
            Workload::Api => api::run(bench),
            Workload::Ui => ui::run(bench),
            Workload::Soak => soak::run(bench),
        }
    }

    /// The sizes this workload ran with, for the report.
    pub fn parameters(self, s: &Sizes) -> Value {
        match self {
            Workload::Chain40 => json!({"tasks": s.chain_length}),
            Workload::Fan200 => json!({"parallel_tasks": s.fan_width, "tasks": s.fan_width + 2}),
            Workload::Idle100 => json!({
                "dags": s.idle_dags + 2, "tasks_per_idle_dag": s.idle_dag_tasks,
                "idle_seconds": s.idle_seconds, "settle_seconds": s.settle_seconds}),
            Workload::Startup => json!({"dags": s.idle_dags + 2}),
            Workload::Throughput => json!({
                "runs": s.throughput_runs, "tasks_per_run": s.throughput_width,
                "task_instances": s.throughput_runs * s.throughput_width}),
            Workload::Parse1000 => json!({"files": s.parse_files, "tasks_per_file": s.parse_tasks}),
            Workload::Latency => json!({"triggers": s.latency_triggers, "tasks": 2}),
            Workload::Python => json!({
                "chain_tasks": s.chain_length, "fan_parallel_tasks": s.fan_width,
                "fan_tasks": s.fan_width + 2, "floor_starts": s.python_floor_starts}),
            Workload::BigDag => json!({
                "layers": s.bigdag_layers, "width": s.bigdag_width,
                "tasks": s.bigdag_layers * s.bigdag_width,
                "small_dag": {"layers": s.bigdag_small_layers, "width": s.bigdag_small_width,
                    "tasks": s.bigdag_small_layers * s.bigdag_small_width,
                    "runs": s.bigdag_small_runs}}),
            Workload::ManyDags => json!({
                "dags": s.manydags_dags, "tasks_per_dag": 3, "schedule": "* * * * *",
                "ticks": s.manydags_ticks, "quiet_after_tick_s": s.manydags_quiet_after_s,
                "quiet_window_s": s.manydags_quiet_window_s}),
            Workload::History => json!({
                "dags": s.api_dags, "tasks_per_dag": s.api_tasks_per_dag, "runs": s.api_runs,
                "task_instances": s.api_runs * s.api_tasks_per_dag,
                "measured": ["W1", "W2", "W7", "W4"]}),
            Workload::Sensors => json!({
                "sensors": s.sensor_count, "time_sensors": s.sensor_count.div_ceil(3),
                "reschedule_file_sensors": (s.sensor_count + 1) / 3,
                "external_task_sensors": s.sensor_count / 3,
                "poke_interval_s": 60, "waiting_seconds": s.idle_seconds}),
            Workload::Api => json!({
                "dags": s.api_dags, "tasks_per_dag": s.api_tasks_per_dag, "runs": s.api_runs,
                "task_instances": s.api_runs * s.api_tasks_per_dag,
                "requests_per_route": s.api_requests, "load_connections": s.api_connections,
                "load_requests": s.api_load_requests}),
            Workload::Ui => json!({
                "dags": s.api_dags + 1, "runs": s.api_runs + s.ui_grid_runs,
                "task_instances": s.api_runs * s.api_tasks_per_dag
                    + s.ui_grid_runs * s.ui_grid_layers * s.ui_grid_width,
                "grid_dag": {"runs": s.ui_grid_runs, "tasks": s.ui_grid_layers * s.ui_grid_width},
                "requests_per_view": s.ui_requests, "browser_loads": s.ui_browser_loads}),
            Workload::Soak => soak::parameters(s),
        }
    }
}

/// The sizes of the workloads: WORKLOADS.md's in a full run, smaller in `--quick`.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub chain_length: usize,
    pub fan_width: usize,
    pub idle_dags: usize,
    pub idle_dag_tasks: usize,
    pub idle_seconds: f64,
    /// Wait after start-up before the idle measurement begins.
    pub settle_seconds: f64,
    pub throughput_runs: usize,
    pub throughput_width: usize,
    pub parse_files: usize,
    pub parse_tasks: usize,
    pub latency_triggers: usize,
    /// W8: how many times each Python start-up floor is timed.
    pub python_floor_starts: usize,
    /// W9: the big DAG (layers × width tasks), and the small DAG of its shape run
    /// `bigdag_small_runs` times beside it.
    pub bigdag_layers: usize,
    pub bigdag_width: usize,
    pub bigdag_small_layers: usize,
    pub bigdag_small_width: usize,
    pub bigdag_small_runs: usize,
    /// W10: DAGs of 3 tasks scheduled every minute, and the minute ticks measured after the
    /// first one following start-up.
    pub manydags_dags: usize,
    pub manydags_ticks: usize,
    /// W10: the CPU between ticks is sampled from this long after each tick, for this long.
    pub manydags_quiet_after_s: f64,
    pub manydags_quiet_window_s: f64,
    /// W12: sensors waiting at once (half time sensors, half rescheduled file sensors).
    pub sensor_count: usize,
    /// W13: the DAGs of the history, their tasks, and the runs (half of them of one DAG).
    pub api_dags: usize,
    pub api_tasks_per_dag: usize,
    pub api_runs: usize,
    /// W13: requests timed per route over one connection.
    pub api_requests: usize,
    /// W13: the load: keep-alive connections at once, and requests in all.
    pub api_connections: usize,
    pub api_load_requests: usize,
    /// W14: the wide DAG (layers × width tasks, runs), requests per view, browser loads.
    pub ui_grid_layers: usize,
    pub ui_grid_width: usize,
    pub ui_grid_runs: usize,
    pub ui_requests: usize,
    pub ui_browser_loads: usize,
    /// The soak: how long the load and the kills go on, one process SIGKILLed and restarted
    /// every `soak_kill_interval_s`, a run of its DAG triggered every
    /// `soak_trigger_interval_s`, the long-lived processes sampled every
    /// `soak_sample_interval_s`.
    pub soak_minutes: f64,
    pub soak_kill_interval_s: f64,
    pub soak_trigger_interval_s: f64,
    pub soak_sample_interval_s: f64,
    /// The soak's cluster runs with short worker and scheduler leases (as the cluster tests
    /// do), so that the tries of a killed process come back within seconds, not 30 s: what
    /// lets the quick soak fit in CI's time.
    pub soak_short_leases: bool,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            chain_length: 40,
            fan_width: 200,
            idle_dags: 100,
            idle_dag_tasks: 5,
            idle_seconds: 60.0,
            settle_seconds: 5.0,
            throughput_runs: 10,
            throughput_width: 1000,
            parse_files: 1000,
            parse_tasks: 10,
            latency_triggers: 100,
            python_floor_starts: 20,
            bigdag_layers: 500,
            bigdag_width: 100,
            bigdag_small_layers: 10,
            bigdag_small_width: 10,
            bigdag_small_runs: 10,
            manydags_dags: 1000,
            manydags_ticks: 3,
            manydags_quiet_after_s: 20.0,
            manydags_quiet_window_s: 38.0,
            sensor_count: 1000,
            api_dags: 100,
            api_tasks_per_dag: 10,
            api_runs: 100_000,
            api_requests: 2_000,
            api_connections: 8,
            api_load_requests: 20_000,
            ui_grid_layers: 10,
            ui_grid_width: 20,
            ui_grid_runs: 100,
            ui_requests: 500,
            ui_browser_loads: 20,
            soak_minutes: 60.0,
            soak_kill_interval_s: 60.0,
            soak_trigger_interval_s: 2.0,
            soak_sample_interval_s: 10.0,
            soak_short_leases: false,
        }
    }

    pub fn quick() -> Sizes {
        Sizes {
            idle_seconds: 2.0,
            settle_seconds: 0.5,
            throughput_runs: 2,
            throughput_width: 100,
            parse_files: 100,
            latency_triggers: 10,
            python_floor_starts: 3,
            bigdag_layers: 20,
            bigdag_width: 10,
            bigdag_small_layers: 5,
            bigdag_small_width: 4,
            bigdag_small_runs: 3,
            manydags_dags: 20,
            manydags_ticks: 1,
            manydags_quiet_after_s: 10.0,
            manydags_quiet_window_s: 5.0,
            sensor_count: 100,
            api_dags: 10,
            api_runs: 2_000,
            api_requests: 100,
            api_load_requests: 1_000,
            ui_requests: 30,
            ui_browser_loads: 3,
            soak_minutes: 1.0,
            soak_kill_interval_s: 10.0,
            soak_sample_interval_s: 2.0,
            soak_short_leases: true,
            ..Sizes::full()
        }
    }
}

/// What every workload needs.
pub struct Bench<'a> {
    pub updraft: &'a Updraft,
    pub database: Database,
    /// The server of `--database postgres`.
    pub postgres: Option<Server>,
    /// The cluster of `--database postgres`.
    pub cluster: ClusterShape,
    pub sizes: &'a Sizes,
    /// Where W5 records a `perf` profile of the updraft processes, if asked.
    pub perf_w5: Option<PathBuf>,
    /// Where the soak writes its samples as CSV, if asked.
    pub soak_samples: Option<PathBuf>,
    /// What every fresh home holds before the workload writes its own DAG files (W11).
    pub prefill: Option<Prefill>,
}

/// W11: every fresh home holds the history's DAGs, registered by a first start of updraft
/// (which also migrated the database), and with `rows` its runs and task instances too.
/// Without rows the homes differ only in the rows, so the ratio of a figure with to without is
/// what the rows cost.
#[derive(Debug, Clone)]
pub struct Prefill {
    pub history: History,
    pub rows: bool,
}

impl<'a> Bench<'a> {
    /// A fresh `$UPDRAFT_HOME`, on a fresh database when the database is PostgreSQL, holding
    /// [`Bench::prefill`]'s DAGs and rows.
    pub fn home(&self) -> Result<Home> {
        let home = self.empty_home()?;
        if let Some(prefill) = &self.prefill {
            if prefill.rows {
                fill_history(self, &home, &prefill.history)?;
            } else {
                register_history(self, &home, &prefill.history)?;
            }
        }
        Ok(home)
    }

    /// This bench, its homes prefilled.
    pub fn prefilled(&self, prefill: Prefill) -> Bench<'a> {
        Bench {
            updraft: self.updraft,
            database: self.database,
            postgres: self.postgres.clone(),
            cluster: self.cluster,
            sizes: self.sizes,
            perf_w5: self.perf_w5.clone(),
            soak_samples: self.soak_samples.clone(),
            prefill: Some(prefill),
        }
    }

    /// The DAGs a home holds before the workload's own.
    pub fn prefilled_dags(&self) -> usize {
        self.prefill.as_ref().map_or(0, |p| p.history.all_dags())
    }

    fn empty_home(&self) -> Result<Home> {
        match self.database {
            Database::Sqlite => Home::new(),
            Database::Postgres => {
                let server = self
                    .postgres
                    .as_ref()
                    .context("--database postgres without a server")?;
                Home::on_postgres(server.fresh_database()?)
            }
        }
    }
}

/// The DAG folder of W3 and W4: `idle_dags` small DAGs plus the DAGs of W1 and W2.
fn write_idle_folder(home: &Home, sizes: &Sizes) -> Result<()> {
    let small = (0..sizes.idle_dags).map(|i| {
        let id = format!("idle_{i:03}");
        (
            format!("{id}.yaml"),
            dag_folder::chain(&id, sizes.idle_dag_tasks),
        )
    });
    dag_folder::write(&home.dags(), small)?;
    dag_folder::write(
        &home.dags(),
        [
            (
                "chain40.yaml".to_owned(),
                dag_folder::chain("chain40", sizes.chain_length),
            ),
            (
                "fan200.yaml".to_owned(),
                dag_folder::fan("fan200", sizes.fan_width),
            ),
        ],
    )
}

/// Starts the standalone (or the cluster) in `home` and waits until it is up with `dags` DAGs
/// besides the prefilled ones.
fn start(bench: &Bench, home: &Home, dags: usize) -> Result<Deployment> {
    start_with_all(bench, home, dags + bench.prefilled_dags())
}

/// Starts the standalone (or the cluster) in `home` and waits until it is up with `dags` DAGs
/// in all.
fn start_with_all(bench: &Bench, home: &Home, dags: usize) -> Result<Deployment> {
    let mut deployment = Deployment::spawn(bench, home)?;
    deployment.wait_ready(bench, home, dags)?;
    Ok(deployment)
}

/// Writes `history`'s DAG files into `home` and starts updraft once: it migrates the database
/// and registers the DAGs.
fn register_history(bench: &Bench, home: &Home, history: &History) -> Result<()> {
    dag_folder::write(&home.dags(), history.dag_files())?;
    start_with_all(bench, home, history.all_dags())?.stop()
}

/// [`register_history`], then with updraft stopped writes the history's rows. Returns the
/// seconds the rows took.
fn fill_history(bench: &Bench, home: &Home, history: &History) -> Result<f64> {
    register_history(bench, home, history)?;
    let filling = std::time::Instant::now();
    match bench.database {
        Database::Sqlite => history.write_sqlite(&home.sqlite_path())?,
        Database::Postgres => history.write_postgres(
            home.postgres_url()
                .context("a PostgreSQL home without a database")?,
        )?,
    }
    Ok(filling.elapsed().as_secs_f64())
}

/// A task instance that ran, instants in microseconds since the epoch.
#[derive(Debug, Clone)]
struct TaskTimes {
    task_id: String,
    start: i64,
    end: i64,
}

/// A finished run: it succeeded, with `tasks` task instances that all succeeded.
struct SuccessfulRun {
    run: RunRecord,
    end: i64,
    /// In task id order.
    tasks: Vec<TaskTimes>,
    /// XCom `return_value`s as `(task id, JSON text)`, in task id order.
    return_values: Vec<(String, String)>,
}

/// Writes one DAG file (YAML) into a fresh home, starts updraft, triggers the DAG once with
/// `--wait`, and returns the finished run and the trigger's wall time in seconds.
fn single_run(
    bench: &Bench,
    dag_id: &str,
    source: String,
    tasks: usize,
) -> Result<(SuccessfulRun, f64)> {
    single_run_of_file(bench, dag_id, format!("{dag_id}.yaml"), source, tasks)
}

/// As [`single_run`], with the DAG file's name given (its extension says its language).
fn single_run_of_file(
    bench: &Bench,
    dag_id: &str,
    file_name: String,
    source: String,
    tasks: usize,
) -> Result<(SuccessfulRun, f64)> {
    let home = bench.home()?;
    dag_folder::write(&home.dags(), [(file_name, source)])?;
    let running = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let clock = std::time::Instant::now();
    let run_id = bench.updraft.trigger(&home, dag_id, true)?;
    let wall = clock.elapsed().as_secs_f64();
    let done = successful_run(&*metadata, dag_id, &run_id, tasks)?;
    running.stop()?;
    Ok((done, wall))
}

/// One DAG file of [`repeated_runs_of_files`].
struct DagFile {
    dag_id: &'static str,
    file_name: String,
    source: String,
    tasks: usize,
}

/// Starts updraft once with all `files` in its DAG folder, then runs each DAG `runs` times,
/// one run at a time, in order; per file, its runs. The first run of a DAG pays what is started
/// on first use (for Python, the fork server and the DAG version's preloader).
fn repeated_runs_of_files(
    bench: &Bench,
    files: &[DagFile],
    runs: usize,
) -> Result<Vec<Vec<SuccessfulRun>>> {
    let home = bench.home()?;
    dag_folder::write(
        &home.dags(),
        files
            .iter()
            .map(|f| (f.file_name.clone(), f.source.clone())),
    )?;
    let running = start(bench, &home, files.len())?;
    let metadata = bench.database.open(&home)?;
    let mut all = Vec::with_capacity(files.len());
    for file in files {
        let mut done = Vec::with_capacity(runs);
        for _ in 0..runs {
            let run_id = bench.updraft.trigger(&home, file.dag_id, true)?;
            done.push(successful_run(
                &*metadata,
                file.dag_id,
                &run_id,
                file.tasks,
            )?);
        }
        all.push(done);
    }
    running.stop()?;
    Ok(all)
}

fn successful_run(
    metadata: &dyn Metadata,
    dag_id: &str,
    run_id: &str,
    tasks: usize,
) -> Result<SuccessfulRun> {
    let run = metadata.run(dag_id, run_id)?;
    if run.state != "success" {
        bail!("run {run_id} of {dag_id} is {}, not success", run.state);
    }
    let end = run
        .end_date
        .with_context(|| format!("run {run_id} of {dag_id} has no end date"))?;
    let instances = metadata.task_instances(&run)?;
    if instances.len() != tasks {
        bail!(
            "run {run_id} of {dag_id} has {} task instances, expected {tasks}",
            instances.len()
        );
    }
    let tasks = instances
        .into_iter()
        .map(|ti| match (ti.state.as_str(), ti.start_date, ti.end_date) {
            ("success", Some(start), Some(end)) => Ok(TaskTimes {
                task_id: ti.task_id,
                start,
                end,
            }),
            _ => bail!(
                "task {} of run {run_id} is {} (start {:?}, end {:?})",
                ti.task_id,
                ti.state,
                ti.start_date,
                ti.end_date
            ),
        })
        .collect::<Result<Vec<_>>>()?;
    let return_values = metadata.return_values(&run)?;
    Ok(SuccessfulRun {
        run,
        end,
        tasks,
        return_values,
    })
}

fn millis(micros: i64) -> f64 {
    micros as f64 / 1e3
}

fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

fn sleep_seconds(s: f64) {
    std::thread::sleep(Duration::from_secs_f64(s.max(0.0)));
}

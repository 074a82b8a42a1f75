//! The Prometheus families updraft exports (`updraft_<thing>_<unit>[_total]`), their help
//! texts, buckets and labels. Labels stay bounded: DAG, task, pool, state, route; never a run
//! id or a map index.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::histogram::AtomicHistogram;

/// A series' labels, by name.
pub(crate) type Labels<const N: usize> = [(&'static str, String); N];
type Histograms<const N: usize> = Family<Labels<N>, AtomicHistogram, fn() -> AtomicHistogram>;

/// Every family's name as `/metrics` shows it in its `# TYPE` line (counters with `_total`,
/// histograms without their `_bucket`/`_sum`/`_count` series).
pub const METRIC_NAMES: &[&str] = &[
    "updraft_scheduler_loop_duration_seconds",
    "updraft_scheduler_heartbeat_total",
    "updraft_task_instances",
    "updraft_ti_successes_total",
    "updraft_ti_failures_total",
    "updraft_ti_started_total",
    "updraft_ti_finished_total",
    "updraft_task_duration_seconds",
    "updraft_task_queued_duration_seconds",
    "updraft_dag_run_duration_seconds",
    "updraft_dag_run_schedule_delay_seconds",
    "updraft_pool_open_slots",
    "updraft_pool_queued_slots",
    "updraft_pool_running_slots",
    "updraft_executor_open_slots",
    "updraft_executor_running_tasks",
    "updraft_dag_processing_duration_seconds",
    "updraft_dag_processing_import_errors",
    "updraft_dag_bag_size",
    "updraft_api_request_duration_seconds",
];

/// The families of [`METRIC_NAMES`] that are histograms.
pub const HISTOGRAMS: &[&str] = &[
    "updraft_scheduler_loop_duration_seconds",
    "updraft_task_duration_seconds",
    "updraft_task_queued_duration_seconds",
    "updraft_dag_run_duration_seconds",
    "updraft_dag_run_schedule_delay_seconds",
    "updraft_dag_processing_duration_seconds",
    "updraft_api_request_duration_seconds",
];

/// Short things: a scheduler pass, an API request, a scan of the DAG folder.
const FAST: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Tries, waits in the queue, runs and schedule delays: milliseconds to hours.
const SLOW: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

fn fast() -> AtomicHistogram {
    AtomicHistogram::new(FAST)
}

fn slow() -> AtomicHistogram {
    AtomicHistogram::new(SLOW)
}

pub(crate) struct Families {
    pub registry: Registry,
    pub scheduler_loop: AtomicHistogram,
    pub scheduler_heartbeat: Counter,
    pub task_instances: Family<Labels<1>, Gauge>,
    pub ti_successes: Family<Labels<2>, Counter>,
    pub ti_failures: Family<Labels<2>, Counter>,
    pub ti_started: Family<Labels<2>, Counter>,
    pub ti_finished: Family<Labels<3>, Counter>,
    pub task_duration: Histograms<2>,
    pub task_queued: Histograms<2>,
    pub run_duration: Histograms<2>,
    pub schedule_delay: Histograms<1>,
    pub pool_open: Family<Labels<1>, Gauge>,
    pub pool_queued: Family<Labels<1>, Gauge>,
    pub pool_running: Family<Labels<1>, Gauge>,
    pub executor_open: Gauge,
    pub executor_running: Gauge,
    pub parse_duration: AtomicHistogram,
    pub import_errors: Gauge,
    pub dag_bag_size: Gauge,
    pub api_latency: Histograms<3>,
}

impl Families {
    pub fn new() -> Families {
        let f = Families {
            registry: Registry::with_prefix("updraft"),
            scheduler_loop: fast(),
            scheduler_heartbeat: Counter::default(),
            task_instances: Family::default(),
            ti_successes: Family::default(),
            ti_failures: Family::default(),
            ti_started: Family::default(),
            ti_finished: Family::default(),
            task_duration: Family::new_with_constructor(slow),
            task_queued: Family::new_with_constructor(slow),
            run_duration: Family::new_with_constructor(slow),
            schedule_delay: Family::new_with_constructor(slow),
            pool_open: Family::default(),
            pool_queued: Family::default(),
            pool_running: Family::default(),
            executor_open: Gauge::default(),
            executor_running: Gauge::default(),
            parse_duration: fast(),
            import_errors: Gauge::default(),
            dag_bag_size: Gauge::default(),
            api_latency: Family::new_with_constructor(fast),
        };
        f.registered()
    }

    /// Registers clones (they share their values) of every family.
    fn registered(mut self) -> Families {
        let r = &mut self.registry;
        r.register_with_unit(
            "scheduler_loop_duration",
            "Time of one scheduler pass (Airflow: scheduler.scheduler_loop_duration)",
            Unit::Seconds,
            self.scheduler_loop.clone(),
        );
        r.register(
            "scheduler_heartbeat",
            "Scheduler heartbeats (Airflow: scheduler_heartbeat)",
            self.scheduler_heartbeat.clone(),
        );
        r.register(
            "task_instances",
            "Unfinished task instances by state, counted every few seconds",
            self.task_instances.clone(),
        );
        r.register(
            "ti_successes",
            "Tries that succeeded (Airflow: ti_successes)",
            self.ti_successes.clone(),
        );
        r.register(
            "ti_failures",
            "Tries that failed, retried or not (Airflow: ti_failures)",
            self.ti_failures.clone(),
        );
        r.register(
            "ti_started",
            "Tries started by this process's worker (Airflow: ti.start)",
            self.ti_started.clone(),
        );
        r.register(
            "ti_finished",
            "Tries ended, by the state they ended in (Airflow: ti.finish)",
            self.ti_finished.clone(),
        );
        r.register_with_unit(
            "task_duration",
            "Run time of a try (Airflow: dag.<dag_id>.<task_id>.duration)",
            Unit::Seconds,
            self.task_duration.clone(),
        );
        r.register_with_unit(
            "task_queued_duration",
            "Time a try waited queued before a worker took it (Airflow: dag.<dag_id>.<task_id>.queued_duration)",
            Unit::Seconds,
            self.task_queued.clone(),
        );
        r.register_with_unit(
            "dag_run_duration",
            "Time from a run's start to its end, by end state (Airflow: dagrun.duration.<state>)",
            Unit::Seconds,
            self.run_duration.clone(),
        );
        r.register_with_unit(
            "dag_run_schedule_delay",
            "Time from a scheduled run's due instant to its start (Airflow: dagrun.schedule_delay)",
            Unit::Seconds,
            self.schedule_delay.clone(),
        );
        r.register(
            "pool_open_slots",
            "Free slots of a pool (Airflow: pool.open_slots)",
            self.pool_open.clone(),
        );
        r.register(
            "pool_queued_slots",
            "Slots of a pool held by queued task instances (Airflow: pool.queued_slots)",
            self.pool_queued.clone(),
        );
        r.register(
            "pool_running_slots",
            "Slots of a pool held by running task instances (Airflow: pool.running_slots)",
            self.pool_running.clone(),
        );
        r.register(
            "executor_open_slots",
            "Tries this process's worker could start now (Airflow: executor.open_slots)",
            self.executor_open.clone(),
        );
        r.register(
            "executor_running_tasks",
            "Tries this process's worker runs (Airflow: executor.running_tasks)",
            self.executor_running.clone(),
        );
        r.register_with_unit(
            "dag_processing_duration",
            "Time of one scan of the DAG folder (Airflow: dag_processing.total_parse_time)",
            Unit::Seconds,
            self.parse_duration.clone(),
        );
        r.register(
            "dag_processing_import_errors",
            "DAG files that failed to load at the last scan (Airflow: dag_processing.import_errors)",
            self.import_errors.clone(),
        );
        r.register(
            "dag_bag_size",
            "DAGs loaded at the last scan (Airflow: dagbag_size)",
            self.dag_bag_size.clone(),
        );
        r.register_with_unit(
            "api_request_duration",
            "Time to answer an API or UI request, by route template, method and status",
            Unit::Seconds,
            self.api_latency.clone(),
        );
        self
    }
}

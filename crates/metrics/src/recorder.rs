//! [`Metrics`]: one method per event, each recording the event into the Prometheus families
//! and, when StatsD is on, under Airflow's StatsD names.

use std::time::Duration;

use cadence::prelude::*;
use cadence::StatsdClient;
use prometheus_client::encoding::prometheus_text;

use crate::families::{Families, Labels};
use crate::{MetricsConfig, MetricsError};

/// How a try ended, for `ti_successes` and `ti_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryEnd {
    Success,
    /// Failed, or up for retry.
    Failure,
    /// Skipped, rescheduled (a sensor's poke), …: counted by state only.
    Other,
}

/// A process's metrics. Every method is cheap: atomic additions on the series of its labels
/// (found under a read lock that only a series' first use upgrades), and a line pushed on a
/// queue when StatsD is on.
pub struct Metrics {
    families: Families,
    statsd: Option<StatsdClient>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("statsd", &self.statsd.is_some())
            .finish_non_exhaustive()
    }
}

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels<N> {
    pairs.map(|(name, value)| (name, value.to_string()))
}

impl Metrics {
    /// New metrics, not installed: what [`crate::install`] installs, and what tests use alone.
    pub fn new(config: &MetricsConfig) -> Result<Metrics, MetricsError> {
        let statsd = config
            .statsd
            .as_ref()
            .map(crate::statsd::client)
            .transpose()?;
        Ok(Metrics {
            families: Families::new(),
            statsd,
        })
    }

    /// The Prometheus text exposition of every series so far.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.families.registry)?;
        Ok(text)
    }

    fn statsd(&self, send: impl FnOnce(&StatsdClient)) {
        if let Some(client) = &self.statsd {
            send(client);
        }
    }

    /// One scheduler pass ended, after `took`.
    pub fn scheduler_loop(&self, took: Duration) {
        self.families.scheduler_loop.observe(took.as_secs_f64());
        self.statsd(|s| {
            let _ = s.time("scheduler.scheduler_loop_duration", took);
        });
    }

    /// The scheduler recorded that it is alive.
    pub fn scheduler_heartbeat(&self) {
        self.families.scheduler_heartbeat.inc();
        self.statsd(|s| {
            let _ = s.incr("scheduler_heartbeat");
        });
    }

    /// How many task instances are in each of these (unfinished) states now.
    pub fn task_instances(&self, counts: &[(&str, u32)]) {
        for (state, count) in counts {
            self.families
                .task_instances
                .get_or_create(&labels([("state", state)]))
                .set(i64::from(*count));
            self.statsd(|s| {
                let _ = s.gauge(&format!("task_instances.{state}"), u64::from(*count));
            });
        }
    }

    /// A worker of this process started a try that waited `queued` since it was queued.
    pub fn try_started(&self, dag_id: &str, task_id: &str, queued: Option<Duration>) {
        let task = labels([("dag_id", dag_id), ("task_id", task_id)]);
        self.families.ti_started.get_or_create(&task).inc();
        if let Some(queued) = queued {
            self.families
                .task_queued
                .get_or_create(&task)
                .observe(queued.as_secs_f64());
        }
        self.families.executor_running.inc();
        let open = self.families.executor_open.dec() - 1;
        self.statsd(|s| {
            let _ = s.incr(&format!("ti.start.{dag_id}.{task_id}"));
            if let Some(queued) = queued {
                let _ = s.time(&format!("dag.{dag_id}.{task_id}.queued_duration"), queued);
            }
            self.executor_statsd(s, open);
        });
    }

    /// A try of this process's worker ended in `state` after running for `took`.
    pub fn try_ended(&self, dag_id: &str, task_id: &str, state: &str, end: TryEnd, took: Duration) {
        let task = labels([("dag_id", dag_id), ("task_id", task_id)]);
        match end {
            TryEnd::Success => {
                self.families.ti_successes.get_or_create(&task).inc();
            }
            TryEnd::Failure => {
                self.families.ti_failures.get_or_create(&task).inc();
            }
            TryEnd::Other => {}
        }
        self.families
            .task_duration
            .get_or_create(&task)
            .observe(took.as_secs_f64());
        self.families
            .ti_finished
            .get_or_create(&labels([
                ("dag_id", dag_id),
                ("task_id", task_id),
                ("state", state),
            ]))
            .inc();
        self.families.executor_running.dec();
        let open = self.families.executor_open.inc() + 1;
        self.statsd(|s| {
            match end {
                TryEnd::Success => {
                    let _ = s.incr("ti_successes");
                }
                TryEnd::Failure => {
                    let _ = s.incr("ti_failures");
                }
                TryEnd::Other => {}
            }
            let _ = s.incr(&format!("ti.finish.{dag_id}.{task_id}.{state}"));
            let _ = s.time(&format!("dag.{dag_id}.{task_id}.duration"), took);
            self.executor_statsd(s, open);
        });
    }

    /// This process's worker runs at most `slots` tries at once.
    pub fn executor_slots(&self, slots: usize) {
        let slots = i64::try_from(slots).unwrap_or(i64::MAX);
        let open = slots - self.families.executor_running.get();
        self.families.executor_open.set(open);
        self.statsd(|s| self.executor_statsd(s, open));
    }

    fn executor_statsd(&self, s: &StatsdClient, open: i64) {
        let running = self.families.executor_running.get();
        let _ = s.gauge("executor.open_slots", open.max(0) as u64);
        let _ = s.gauge("executor.running_tasks", running.max(0) as u64);
    }

    /// A run of `dag_id` started, `delay` after the instant it was due (scheduled runs).
    pub fn dag_run_started(&self, dag_id: &str, delay: Option<Duration>) {
        let Some(delay) = delay else { return };
        self.families
            .schedule_delay
            .get_or_create(&labels([("dag_id", dag_id)]))
            .observe(delay.as_secs_f64());
        self.statsd(|s| {
            let _ = s.time(&format!("dagrun.schedule_delay.{dag_id}"), delay);
        });
    }

    /// A run of `dag_id` ended in `state`, `took` after it started.
    pub fn dag_run_ended(&self, dag_id: &str, state: &str, took: Duration) {
        self.families
            .run_duration
            .get_or_create(&labels([("dag_id", dag_id), ("state", state)]))
            .observe(took.as_secs_f64());
        self.statsd(|s| {
            let _ = s.time(&format!("dagrun.duration.{state}.{dag_id}"), took);
        });
    }

    /// The slots of every pool now (`(name, open, queued, running)`); pools not named are
    /// dropped from the export.
    pub fn pools(&self, pools: &[(&str, i64, u32, u32)]) {
        let f = &self.families;
        f.pool_open.clear();
        f.pool_queued.clear();
        f.pool_running.clear();
        for &(pool, open, queued, running) in pools {
            let label = labels([("pool", pool)]);
            f.pool_open.get_or_create(&label).set(open);
            f.pool_queued.get_or_create(&label).set(i64::from(queued));
            f.pool_running.get_or_create(&label).set(i64::from(running));
            self.statsd(|s| {
                let _ = s.gauge(&format!("pool.open_slots.{pool}"), open.max(0) as u64);
                let _ = s.gauge(&format!("pool.queued_slots.{pool}"), u64::from(queued));
                let _ = s.gauge(&format!("pool.running_slots.{pool}"), u64::from(running));
            });
        }
    }

    /// A scan of the DAG folder took `took` and loaded `dags` DAGs and `import_errors` errors.
    pub fn dag_processing(&self, took: Duration, dags: usize, import_errors: usize) {
        let f = &self.families;
        f.parse_duration.observe(took.as_secs_f64());
        f.dag_bag_size.set(i64::try_from(dags).unwrap_or(i64::MAX));
        f.import_errors
            .set(i64::try_from(import_errors).unwrap_or(i64::MAX));
        self.statsd(|s| {
            let _ = s.gauge("dag_processing.total_parse_time", took.as_secs_f64());
            let _ = s.gauge("dag_processing.import_errors", import_errors as u64);
            let _ = s.gauge("dagbag_size", dags as u64);
        });
    }

    /// An HTTP request to `route` (the route's template, `/api/v2/dags/{dag_id}`, never the
    /// raw path) was answered `status` after `took`.
    pub fn api_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let status = status.to_string();
        self.families
            .api_latency
            .get_or_create(&labels([
                ("method", method),
                ("route", route),
                ("status", &status),
            ]))
            .observe(took.as_secs_f64());
    }
}

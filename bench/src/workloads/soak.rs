//! The soak of issue 14: steady load on a PostgreSQL cluster of 3 schedulers, 2 API servers
//! and 2 workers for an hour (`--soak-minutes`), one process SIGKILLed and started again every
//! minute. Judged: no try lost or run twice, and the resident memory (≤ 5 % growth after the
//! warm-up), open file descriptors and database connections of the long-lived processes flat.
//!
//! The first process of each kind is never killed: those are the long-lived processes whose
//! memory and descriptors are judged. The others are the victims, a scheduler, an API server
//! and a worker in turn. A run of a 10-task DAG (a fan and a chain) is triggered every 2 s
//! through the REST API, and a 3-task DAG runs every minute on its own schedule; every try
//! appends `DAG RUN TASK TRY PID` to a file, which is checked against the task instances the
//! database ends with (see [`tries`]). Lost or duplicated tries, failed runs and processes that
//! exit by themselves fail the harness run once the report is written.

mod cluster;
mod figures;
mod load;
mod samples;
mod tries;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use self::cluster::{Kind, Shape, SoakCluster};
use self::load::Triggered;
use self::samples::{ConnectionCounter, ProcessSample, Sample};
use self::tries::{Instance, TryCheck, SCHEDULED_DAG, TRIGGERED_DAG};
use super::{Bench, Sizes};
use crate::dag_folder;
use crate::measurement::Measurement;
use crate::metadata::{Database, Metadata, PostgresMetadata};

pub const SOAK_SCHEDULERS: usize = 3;
pub const SOAK_API_SERVERS: usize = 2;
pub const SOAK_WORKERS: usize = 2;
/// Kinds of process: schedulers, API servers, workers.
const KINDS: usize = 3;

/// The settings of `Sizes::soak_short_leases` (those the cluster tests run with), each unless
/// `--set` gives it.
const SHORT_LEASES: [(&str, &str); 4] = [
    ("scheduler.lease", "3s"),
    ("scheduler.sweep_interval", "1s"),
    ("worker.lease", "3s"),
    ("worker.heartbeat_interval", "1s"),
];
/// How long the runs may take to finish once the load and the kills stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Samples taken once every run finished, and how far apart.
const AT_REST_SAMPLES: u32 = 5;
const AT_REST_INTERVAL: Duration = Duration::from_millis(500);
/// The user whose token triggers the runs.
const TRIGGER_USER: &str = "soak_trigger";

/// The sizes the soak ran with, for the report.
pub fn parameters(s: &Sizes) -> Value {
    json!({
        "minutes": s.soak_minutes,
        "schedulers": SOAK_SCHEDULERS, "api_servers": SOAK_API_SERVERS, "workers": SOAK_WORKERS,
        "kill_interval_s": s.soak_kill_interval_s,
        "trigger_interval_s": s.soak_trigger_interval_s,
        "sample_interval_s": s.soak_sample_interval_s,
        "triggered_dag_tasks": tries::triggered_tasks().len(),
        "scheduled_dag_tasks": tries::scheduled_tasks().len(),
        "scheduled_dag_schedule": "* * * * *",
        "short_leases": s.soak_short_leases,
    })
}

pub fn run(bench: &Bench) -> Result<Measurement> {
    if bench.database != Database::Postgres {
        bail!("the soak runs on a PostgreSQL cluster: run it with --database postgres");
    }
    let sizes = bench.sizes;
    let home = bench.home()?;
    let lines = home.path().join("tries.log");
    dag_folder::write(&home.dags(), tries::dag_files(&lines))?;
    let shape = Shape {
        schedulers: SOAK_SCHEDULERS,
        api_servers: SOAK_API_SERVERS,
        workers: SOAK_WORKERS,
        worker_concurrency: bench.cluster.worker_concurrency,
    };
    let mut cluster = SoakCluster::start(bench.updraft, &home, shape, lease_env(bench), 2)?;
    let servers = cluster.api_urls();
    let token = super::api::token(bench, &home, &servers[0], TRIGGER_USER, "User")?;
    let roles = Roles::of(&cluster);
    let database_url = home
        .postgres_url()
        .context("a PostgreSQL home without a database")?;
    let mut connections = ConnectionCounter::open(database_url)?;

    let stop = AtomicBool::new(false);
    let mut soak = Soak {
        samples: Vec::new(),
        at_rest: Vec::new(),
        kills: Vec::new(),
        crashes: Vec::new(),
        warm_up_until_s: KINDS as f64 * sizes.soak_kill_interval_s + sizes.soak_sample_interval_s,
    };
    let triggered = std::thread::scope(|scope| -> Result<Triggered> {
        let load = scope.spawn(|| {
            load::trigger_steadily(
                &servers,
                &token,
                TRIGGERED_DAG,
                Duration::from_secs_f64(sizes.soak_trigger_interval_s),
                &stop,
            )
        });
        let soaked = soak.go(sizes, &mut cluster, &roles, &mut connections);
        stop.store(true, Ordering::Relaxed);
        let triggered = load
            .join()
            .map_err(|_| anyhow::anyhow!("the soak's load thread panicked"))?;
        soaked?;
        Ok(triggered)
    })?;
    eprintln!(
        "  soak: {} kills, {} runs triggered; waiting for the runs to finish",
        soak.kills.len(),
        triggered.run_ids.len()
    );
    let metadata = PostgresMetadata::open(&home)?;
    let draining = Instant::now();
    let ended = Ended::read(&metadata, &mut cluster, &mut soak, &lines, database_url)?;
    eprintln!(
        "  soak: every run finished {:.1} s after the load stopped; stopping the cluster",
        draining.elapsed().as_secs_f64()
    );
    let every_run_finished =
        Duration::from_secs_f64(sizes.soak_minutes * 60.0) + draining.elapsed();
    soak.sample_at_rest(&cluster, &roles, &mut connections, every_run_finished);
    let long_lived_names: Vec<String> = roles
        .long_lived
        .iter()
        .map(|&i| cluster.processes[i].name.replace('-', "_"))
        .collect();
    cluster.stop()?;

    if let Some(path) = &bench.soak_samples {
        let all: Vec<Sample> = soak.samples.iter().chain(&soak.at_rest).cloned().collect();
        samples::write_csv(path, &long_lived_names, &all)?;
    }
    let mut check = TryCheck::of(&ended.lines_after, &ended.instances);
    // A try that started after the snapshot (of a scheduled run that began since) is not
    // the snapshot's to know.
    check.unknown = TryCheck::of(&ended.lines_before, &ended.instances).unknown;
    Ok(figures::measure(&soak, &triggered, &ended.runs, &check))
}

/// What the soak ended with, once every run finished: the database's runs and task
/// instances, and the try lines read just before and just after them.
struct Ended {
    runs: RunStates,
    instances: Vec<Instance>,
    /// Every try in these lines had started before the snapshot, so the snapshot knows it.
    lines_before: String,
    /// Every try the snapshot records a success of had written its line by then.
    lines_after: String,
}

impl Ended {
    /// Waits for the runs to finish, then reads; again if a scheduled run began meanwhile.
    fn read(
        metadata: &PostgresMetadata,
        cluster: &mut SoakCluster,
        soak: &mut Soak,
        lines: &std::path::Path,
        database_url: &str,
    ) -> Result<Ended> {
        let read_lines = || std::fs::read_to_string(lines).unwrap_or_default();
        loop {
            drain(metadata, cluster, soak)?;
            let lines_before = read_lines();
            let instances = instances(database_url)?;
            let runs = RunStates::of(database_url)?;
            let lines_after = read_lines();
            if runs.unfinished() == 0 {
                return Ok(Ended {
                    runs,
                    instances,
                    lines_before,
                    lines_after,
                });
            }
        }
    }
}

/// The processes the soak kills and the ones it judges, as indexes into the cluster.
struct Roles {
    /// The first of each kind, never killed: scheduler, API server, worker.
    long_lived: [usize; 3],
    /// The others, in the order they are killed: a scheduler, an API server and a worker in
    /// turn, each kind's victims in turn.
    victims: Vec<usize>,
}

impl Roles {
    fn of(cluster: &SoakCluster) -> Roles {
        let kinds = [Kind::Scheduler, Kind::ApiServer, Kind::Worker];
        let of_kind = |kind: Kind| -> Vec<usize> {
            (0..cluster.processes.len())
                .filter(|&i| cluster.processes[i].kind == kind)
                .collect()
        };
        let all = kinds.map(of_kind);
        let long_lived = [all[0][0], all[1][0], all[2][0]];
        let spares: Vec<&[usize]> = all.iter().map(|v| &v[1..]).collect();
        let rounds = spares.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut victims = Vec::new();
        // Two scheduler victims, one of each other kind: scheduler-2, api-server-2, worker-2,
        // scheduler-3, api-server-2, worker-2, and again.
        for round in 0..rounds {
            for spare in &spares {
                if !spare.is_empty() {
                    victims.push(spare[round % spare.len()]);
                }
            }
        }
        Roles {
            long_lived,
            victims,
        }
    }
}

/// What happened during the soak.
struct Soak {
    samples: Vec<Sample>,
    /// Samples once every run finished: the floor of open files with no task running, which
    /// the floor under load (where a worker holds each running task's pipes and log) cannot
    /// give in a short soak.
    at_rest: Vec<Sample>,
    /// `+SECONDS kill -9 NAME (pid P) → pid Q`, in order.
    kills: Vec<String>,
    /// Processes that exited by themselves.
    crashes: Vec<String>,
    /// Seconds into the soak by which every kind of process was killed once, and a sample
    /// taken after: the warm-up lasts at least this long, so that what is judged is a cluster
    /// that has been through its failovers (e.g. the workers' connections to the API server
    /// that stayed up, opened while the other was down and kept in their pools).
    warm_up_until_s: f64,
}

impl Soak {
    /// Samples taken before [`Soak::warm_up_until_s`].
    fn warm_up_samples(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| s.at_s < self.warm_up_until_s)
            .count()
    }

    /// A few samples a little apart once the load stopped and every run finished (one of them,
    /// at least, between two runs of the every-minute DAG).
    fn sample_at_rest(
        &mut self,
        cluster: &SoakCluster,
        roles: &Roles,
        connections: &mut ConnectionCounter,
        every_run_finished: Duration,
    ) {
        for n in 0..AT_REST_SAMPLES {
            std::thread::sleep(AT_REST_INTERVAL);
            let at = every_run_finished + AT_REST_INTERVAL * (n + 1);
            match sample(cluster, roles, connections, at) {
                Ok(sample) => self.at_rest.push(sample),
                Err(e) => eprintln!("  soak: warning: sample at rest skipped: {e:#}"),
            }
        }
    }

    /// Samples and kills until the soak's time is up (the load runs beside it).
    fn go(
        &mut self,
        sizes: &Sizes,
        cluster: &mut SoakCluster,
        roles: &Roles,
        connections: &mut ConnectionCounter,
    ) -> Result<()> {
        let duration = Duration::from_secs_f64(sizes.soak_minutes * 60.0);
        let sample_every = Duration::from_secs_f64(sizes.soak_sample_interval_s);
        let kill_every = Duration::from_secs_f64(sizes.soak_kill_interval_s);
        let started = Instant::now();
        let (mut next_sample, mut next_kill) = (Duration::ZERO, kill_every);
        while started.elapsed() < duration {
            let now = started.elapsed();
            if now >= next_sample {
                self.crashes.extend(cluster.restart_crashed()?);
                match sample(cluster, roles, connections, now) {
                    Ok(sample) => self.samples.push(sample),
                    Err(e) => eprintln!("  soak: warning: sample at {now:?} skipped: {e:#}"),
                }
                next_sample += sample_every;
            }
            if now >= next_kill && !roles.victims.is_empty() {
                let victim = roles.victims[self.kills.len() % roles.victims.len()];
                let (name, pid) = {
                    let process = &cluster.processes[victim];
                    (process.name.clone(), process.pid())
                };
                let new_pid = cluster.kill_and_restart(victim)?;
                let event = format!(
                    "{:>7.1}s kill -9 {name} (pid {pid}) → pid {new_pid}",
                    now.as_secs_f64()
                );
                eprintln!("  soak: {event}");
                self.kills.push(event);
                next_kill += kill_every;
            }
            let next = next_sample.min(next_kill).min(duration);
            std::thread::sleep(next.saturating_sub(started.elapsed()));
        }
        Ok(())
    }
}

/// The long-lived processes and the database now.
fn sample(
    cluster: &SoakCluster,
    roles: &Roles,
    connections: &mut ConnectionCounter,
    at: Duration,
) -> Result<Sample> {
    let processes = roles
        .long_lived
        .iter()
        .map(|&i| ProcessSample::of(cluster.processes[i].pid(), connections.port()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Sample {
        at_s: at.as_secs_f64(),
        processes,
        db_connections: connections.count()?,
    })
}

/// Waits until no run of either DAG is unfinished, restarting processes that exit.
fn drain(metadata: &PostgresMetadata, cluster: &mut SoakCluster, soak: &mut Soak) -> Result<()> {
    let started = Instant::now();
    loop {
        soak.crashes.extend(cluster.restart_crashed()?);
        let unfinished =
            metadata.unfinished_runs(TRIGGERED_DAG)? + metadata.unfinished_runs(SCHEDULED_DAG)?;
        if unfinished == 0 {
            return Ok(());
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!(
                "{unfinished} runs still unfinished {DRAIN_TIMEOUT:?} after the soak ended:\n{}",
                cluster.log_tails()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The short leases of `Sizes::soak_short_leases` as `UPDRAFT_…` variables, but for the keys
/// `--set` gives.
fn lease_env(bench: &Bench) -> Vec<(String, String)> {
    if !bench.sizes.soak_short_leases {
        return Vec::new();
    }
    SHORT_LEASES
        .iter()
        .filter(|(key, _)| !bench.updraft.settings().iter().any(|s| s.key == *key))
        .map(|(key, value)| {
            (
                format!("UPDRAFT_{}", key.replace('.', "__").to_ascii_uppercase()),
                (*value).to_owned(),
            )
        })
        .collect()
}

/// Every task instance of the soak's DAGs, with its run's state.
fn instances(database_url: &str) -> Result<Vec<Instance>> {
    let mut client = crate::postgres::connect(database_url)?;
    let rows = client
        .query(
            "SELECT r.dag_id, r.run_id, r.state, ti.task_id, ti.state, ti.try_number \
             FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id \
             WHERE r.dag_id IN ($1, $2)",
            &[&TRIGGERED_DAG, &SCHEDULED_DAG],
        )
        .context("cannot read the soak's task instances")?;
    rows.iter()
        .map(|r| {
            let try_number: i64 = r.try_get(5)?;
            Ok(Instance {
                dag_id: r.try_get(0)?,
                run_id: r.try_get(1)?,
                run_state: r.try_get(2)?,
                task_id: r.try_get(3)?,
                state: r.try_get(4)?,
                try_number: u32::try_from(try_number).unwrap_or(0),
            })
        })
        .collect()
}

/// The runs of the soak's DAGs by state.
struct RunStates {
    /// `(dag id, run id, state)`.
    runs: Vec<(String, String, String)>,
}

impl RunStates {
    fn of(database_url: &str) -> Result<RunStates> {
        let mut client = crate::postgres::connect(database_url)?;
        let rows = client
            .query(
                "SELECT dag_id, run_id, state FROM dag_run WHERE dag_id IN ($1, $2)",
                &[&TRIGGERED_DAG, &SCHEDULED_DAG],
            )
            .context("cannot read the soak's runs")?;
        let runs = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        Ok(RunStates { runs })
    }

    fn count(&self, dag_id: &str, state: &str) -> usize {
        self.runs
            .iter()
            .filter(|(d, _, s)| d == dag_id && s == state)
            .count()
    }

    fn unfinished(&self) -> usize {
        self.runs
            .iter()
            .filter(|(_, _, s)| s == "queued" || s == "running")
            .count()
    }

    fn not_succeeded(&self) -> Vec<String> {
        self.runs
            .iter()
            .filter(|(_, _, s)| s != "success")
            .map(|(d, r, s)| format!("{d} {r} is {s}"))
            .collect()
    }

    fn has(&self, dag_id: &str, run_id: &str) -> bool {
        self.runs.iter().any(|(d, r, _)| d == dag_id && r == run_id)
    }
}

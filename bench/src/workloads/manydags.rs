//! W10 `manydags`: 1,000 DAGs of 3 `true` tasks scheduled every minute (`* * * * *`, a start
//! date in the past, no catch-up): the delay from each minute tick to its runs' start and to
//! their first task's start, and updraft's CPU between ticks.
//!
//! At start-up each DAG gets the run of its latest missed tick; those runs are not measured.
//! The measured ticks are the next minute boundaries, the first at least [`SETTLE`] after
//! start-up. A tick is the run's data interval end, read back from the store with the run's
//! and its tasks' start dates (the same machine's wall clock). The CPU between ticks is
//! sampled in a window that starts a while after each tick, once its runs are done.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};

use super::{millis, start, Bench};
use crate::dag_folder;
use crate::deployment::Deployment;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::metadata::ScheduledRun;
use crate::stats;

const TASKS: usize = 3;
const MINUTE: i64 = 60_000_000;
/// The least time from start-up to the first measured tick: the runs of start-up's own tick
/// are done by then, and do not mix with the measured ones.
const SETTLE: i64 = 10_000_000;
/// How long after the last tick its runs may take to finish.
const FINISH_TIMEOUT: i64 = 600_000_000;

pub fn run(bench: &Bench) -> Result<Measurement> {
    let s = bench.sizes;
    ensure!(
        s.manydags_quiet_after_s + s.manydags_quiet_window_s < 60.0,
        "W10's CPU window must end before the next tick"
    );
    ensure!(s.manydags_ticks > 0, "W10 needs at least one tick");
    let home = bench.home()?;
    dag_folder::write(
        &home.dags(),
        (0..s.manydags_dags).map(|d| {
            let id = dag_id(d);
            (
                format!("{id}.yaml"),
                dag_folder::every_minute_chain(&id, TASKS),
            )
        }),
    )?;
    let mut running = start(bench, &home, s.manydags_dags)?;
    let metadata = bench.database.open(&home)?;

    let first_tick = (now_micros()? + SETTLE + MINUTE - 1) / MINUTE * MINUTE;
    let last_tick = first_tick + (s.manydags_ticks as i64 - 1) * MINUTE;
    let after = (s.manydags_quiet_after_s * 1e6) as i64;
    let window = (s.manydags_quiet_window_s * 1e6) as i64;
    let (mut cpu_s, mut wall_s) = (0.0, 0.0);
    for tick in 0..s.manydags_ticks as i64 {
        let from = first_tick + tick * MINUTE + after;
        wait_until(&mut running, from)?;
        let before = running.usage()?;
        let began = now_micros()?;
        wait_until(&mut running, from + window)?;
        let usage = running.usage()?;
        cpu_s += usage.cpu_s - before.cpu_s;
        wall_s += (now_micros()? - began) as f64 / 1e6;
    }

    let expected = s.manydags_dags * s.manydags_ticks;
    let runs = loop {
        let runs = metadata.scheduled_runs(first_tick, last_tick)?;
        let finished = runs
            .iter()
            .filter(|r| r.state != "queued" && r.state != "running")
            .count();
        if runs.len() >= expected && finished == runs.len() {
            break runs;
        }
        if now_micros()? > last_tick + FINISH_TIMEOUT {
            bail!(
                "{} of {expected} scheduled runs finished {}s after the last tick",
                finished,
                FINISH_TIMEOUT / 1_000_000
            );
        }
        running.check_alive()?;
        std::thread::sleep(Duration::from_millis(200));
    };
    running.stop()?;
    check_runs(&runs, s.manydags_dags, first_tick, s.manydags_ticks)?;

    let to_run_start = delays(&runs, |r| r.start_date)?;
    let to_first_task = delays(&runs, |r| r.first_task_start)?;
    let mut m = Measurement::default();
    for (key, label, values, p, goal) in [
        (
            "tick_to_run_start_p50_ms",
            "tick → its run's start, p50",
            &to_run_start,
            50.0,
            Some(100.0),
        ),
        (
            "tick_to_run_start_p99_ms",
            "tick → its run's start, p99",
            &to_run_start,
            99.0,
            Some(1000.0),
        ),
        (
            "tick_to_first_task_p50_ms",
            "tick → its run's first task start, p50",
            &to_first_task,
            50.0,
            None,
        ),
        (
            "tick_to_first_task_p99_ms",
            "tick → its run's first task start, p99",
            &to_first_task,
            99.0,
            None,
        ),
    ] {
        let figure = Figure::new(key, label, Unit::Millis, stats::percentile(values, p));
        m.figure(match goal {
            Some(limit) => figure.goal(Goal::AtMost(limit)),
            None => figure,
        });
    }
    m.figure(
        Figure::new(
            "cpu_between_ticks_percent",
            "updraft CPU between ticks, % of a core",
            Unit::Percent,
            cpu_s / wall_s * 100.0,
        )
        .goal(Goal::AtMost(2.0)),
    );
    m.count("ticks", s.manydags_ticks as u64);
    m.count("runs_success", runs.len() as u64);
    m.count(
        "task_instances_success",
        runs.iter().map(|r| r.tasks_success as u64).sum(),
    );
    Ok(m)
}

fn dag_id(d: usize) -> String {
    format!("every_minute_{d:04}")
}

/// Every DAG ran once per tick, on the tick, and every run and task succeeded.
fn check_runs(runs: &[ScheduledRun], dags: usize, first_tick: i64, ticks: usize) -> Result<()> {
    for tick in 0..ticks as i64 {
        let at = first_tick + tick * MINUTE;
        let of_tick = runs.iter().filter(|r| r.data_interval_end == at).count();
        if of_tick != dags {
            bail!("{of_tick} runs of the tick at {at} µs, expected one per DAG ({dags})");
        }
    }
    if let Some(odd) = runs
        .iter()
        .find(|r| (r.data_interval_end - first_tick) % MINUTE != 0)
    {
        bail!(
            "a run of {} ends its data interval at {} µs, not on a minute",
            odd.dag_id,
            odd.data_interval_end
        );
    }
    if let Some(bad) = runs
        .iter()
        .find(|r| r.state != "success" || r.tasks_success != TASKS as i64)
    {
        bail!(
            "a run of {} is {} with {} of {TASKS} tasks succeeded",
            bad.dag_id,
            bad.state,
            bad.tasks_success
        );
    }
    Ok(())
}

/// Per run, milliseconds from its tick to the instant `of` picks.
fn delays(runs: &[ScheduledRun], of: impl Fn(&ScheduledRun) -> Option<i64>) -> Result<Vec<f64>> {
    runs.iter()
        .map(|r| {
            of(r)
                .map(|at| millis(at - r.data_interval_end))
                .with_context(|| format!("a run of {} has not started", r.dag_id))
        })
        .collect()
}

fn now_micros() -> Result<i64> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    i64::try_from(since.as_micros()).context("the clock is past 2262")
}

/// Sleeps until the wall clock reads `at` (µs since the epoch), checking that updraft lives.
fn wait_until(running: &mut Deployment, at: i64) -> Result<()> {
    loop {
        running.check_alive()?;
        let left = at - now_micros()?;
        if left <= 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_micros(left.min(1_000_000) as u64));
    }
}

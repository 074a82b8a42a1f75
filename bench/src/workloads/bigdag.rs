//! W9 `bigdag`: one DAG of 50,000 `true` tasks, 500 layers of 100, task *i* of a layer
//! depending on tasks *i* and *i*+1 (mod 100) of the layer before: trigger → done, peak
//! memory, and updraft's own CPU per task instance next to the same on a small DAG of that
//! shape (10 layers of 10) run by the same standalone.
//!
//! The DAG is a Python file (`BashOperator`s built in loops): its YAML would pass the 1 MiB
//! limit of a YAML DAG file. The small DAG runs first, several times one after the other, so
//! that its CPU time is many clock ticks; then the big one runs once.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{seconds, start, successful_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;

const BIG: &str = "bigdag";
const SMALL: &str = "bigdag_small";
const TIMEOUT: Duration = Duration::from_secs(1800);
/// The 300 MB, in MiB.
const PEAK_RSS_GOAL_MIB: f64 = 300e6 / 1_048_576.0;

pub fn run(bench: &Bench) -> Result<Measurement> {
    let s = bench.sizes;
    let big_tasks = s.bigdag_layers * s.bigdag_width;
    let small_tasks = s.bigdag_small_layers * s.bigdag_small_width;
    let home = bench.home()?;
    dag_folder::write(
        &home.dags(),
        [
            (
                format!("{BIG}.py"),
                dag_folder::python_layers(BIG, s.bigdag_layers, s.bigdag_width),
            ),
            (
                format!("{SMALL}.py"),
                dag_folder::python_layers(SMALL, s.bigdag_small_layers, s.bigdag_small_width),
            ),
        ],
    )?;
    let mut running = start(bench, &home, 2)?;
    let metadata = bench.database.open(&home)?;

    let before_small = running.usage()?;
    let mut small_runs = Vec::with_capacity(s.bigdag_small_runs);
    for _ in 0..s.bigdag_small_runs {
        let run_id = bench.updraft.trigger(&home, SMALL, true)?;
        small_runs.push(successful_run(&*metadata, SMALL, &run_id, small_tasks)?);
    }
    let after_small = running.usage()?;

    let clock = Instant::now();
    let run_id = bench.updraft.trigger(&home, BIG, false)?;
    while metadata.unfinished_runs(BIG)? > 0 {
        running.check_alive()?;
        if clock.elapsed() > TIMEOUT {
            bail!("the run of {big_tasks} tasks is not finished after {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after_big = running.usage()?;
    let big = successful_run(&*metadata, BIG, &run_id, big_tasks)?;
    running.stop()?;

    let small_tis = (small_runs.len() * small_tasks) as f64;
    let cpu_ms_per_ti = |cpu_s: f64, tis: f64| cpu_s * 1e3 / tis;
    let small_cpu = cpu_ms_per_ti(after_small.cpu_s - before_small.cpu_s, small_tis);
    let big_cpu = cpu_ms_per_ti(after_big.cpu_s - after_small.cpu_s, big_tasks as f64);
    let small_run_s: Vec<f64> = small_runs
        .iter()
        .map(|d| seconds(d.end - d.run.queued_at))
        .collect();

    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "run_s",
            "big DAG: trigger → run success",
            Unit::Seconds,
            seconds(big.end - big.run.queued_at),
        )
        .goal(Goal::AtMost(40.0)),
    );
    m.figure(
        Figure::new(
            "peak_rss_mib",
            "peak resident (VmHWM), all updraft processes",
            Unit::Mebibytes,
            after_big.peak_rss_mib,
        )
        .goal(Goal::AtMost(PEAK_RSS_GOAL_MIB)),
    );
    m.figure(Figure::new(
        "peak_rss_before_run_mib",
        "peak resident before the big run (start-up, parsing, the small runs)",
        Unit::Mebibytes,
        after_small.peak_rss_mib,
    ));
    m.figure(Figure::new(
        "rss_after_run_mib",
        "resident after the big run",
        Unit::Mebibytes,
        after_big.rss_mib,
    ));
    m.figure(Figure::new(
        "updraft_cpu_ms_per_ti",
        "big DAG: updraft CPU per task instance",
        Unit::CpuMillisPerTask,
        big_cpu,
    ));
    m.figure(Figure::new(
        "small_updraft_cpu_ms_per_ti",
        "small DAG of that shape: updraft CPU per task instance",
        Unit::CpuMillisPerTask,
        small_cpu,
    ));
    m.figure(
        Figure::new(
            "cpu_per_ti_ratio",
            "updraft CPU per task instance: big / small",
            Unit::Ratio,
            big_cpu / small_cpu,
        )
        .goal(Goal::AtMost(1.5)),
    );
    m.figure(Figure::new(
        "task_cpu_ms_per_ti",
        "big DAG: task process CPU per task instance",
        Unit::CpuMillisPerTask,
        cpu_ms_per_ti(
            after_big.children_cpu_s - after_small.children_cpu_s,
            big_tasks as f64,
        ),
    ));
    m.figure(Figure::new(
        "small_run_s",
        "small DAG: trigger → run success, median",
        Unit::Seconds,
        stats::median(&small_run_s),
    ));
    m.count("runs_success", 1 + small_runs.len() as u64);
    m.count("task_instances_success", big.tasks.len() as u64);
    m.count(
        "small_task_instances_success",
        small_runs.iter().map(|d| d.tasks.len() as u64).sum(),
    );
    Ok(m)
}

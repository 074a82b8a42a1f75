//! W12 `sensors`: a run of 1,000 sensors waiting at once — a third time sensors (held by the
//! scheduler as due instants, `deferred`), a third file sensors in reschedule mode (each poke
//! a short claim, `up_for_reschedule` in between) waiting for a file that never comes, a
//! third `ExternalTaskSensor`s (held `deferred` by the scheduler, which pokes the database)
//! waiting for a DAG that never runs: the worker slots they hold and the CPU updraft burns
//! while they wait.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{sleep_seconds, start, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};

const DAG: &str = "sensors";
/// Airflow's default poke interval: each rescheduled sensor pokes about once a minute.
const POKE_INTERVAL_S: u32 = 60;
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the slots held are sampled while the sensors wait.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// The DAG: `count` sensors, in turn a time sensor, a file sensor and an external task
/// sensor.
pub fn dag(count: usize, missing: &std::path::Path) -> String {
    let mut text = format!("dag_id: {DAG}\nmax_active_tasks: {count}\ntasks:\n");
    for i in 0..count {
        let id = dag_folder::task_id(i);
        match i % 3 {
            0 => text.push_str(&format!(
                "  - task_id: {id}\n    operator: time_delta_sensor\n    time_delta_sensor: {{delta: 1d}}\n"
            )),
            1 => text.push_str(&format!(
                "  - task_id: {id}\n    operator: file_sensor\n    file_sensor: {{filepath: '{}'}}\n    \
                 sensor: {{mode: reschedule, poke_interval: {POKE_INTERVAL_S}, timeout: 1d}}\n",
                missing.display()
            )),
            _ => text.push_str(&format!(
                "  - task_id: {id}\n    operator: external_task_sensor\n    \
                 external_task_sensor: {{external_dag_id: never_runs, external_task_id: t}}\n    \
                 sensor: {{poke_interval: {POKE_INTERVAL_S}, timeout: 1d}}\n"
            )),
        }
    }
    text
}

pub fn run(bench: &Bench) -> Result<Measurement> {
    let sizes = bench.sizes;
    let count = sizes.sensor_count;
    let home = bench.home()?;
    let missing = home.dags().join("never").join("arrives.csv");
    dag_folder::write(
        &home.dags(),
        [(format!("{DAG}.yaml"), dag(count, &missing))],
    )?;
    let mut running = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let run_id = bench.updraft.trigger(&home, DAG, false)?;
    let run = metadata.run(DAG, &run_id)?;
    // Until every sensor waits: the time and external sensors deferred, the file sensors
    // poked once.
    let clock = Instant::now();
    let settle = loop {
        running.check_alive()?;
        let states = metadata.task_instances(&run)?;
        let deferred = states.iter().filter(|t| t.state == "deferred").count();
        let rescheduled = states
            .iter()
            .filter(|t| t.state == "up_for_reschedule")
            .count();
        if deferred + rescheduled == count {
            break (deferred, rescheduled, clock.elapsed().as_secs_f64());
        }
        if clock.elapsed() > SETTLE_TIMEOUT {
            bail!("after {SETTLE_TIMEOUT:?} only {deferred} deferred and {rescheduled} rescheduled of {count} sensors");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    sleep_seconds(sizes.settle_seconds);
    let before = running.usage()?;
    let window = Instant::now();
    let (mut held_max, mut held_sum, mut samples) = (0usize, 0usize, 0usize);
    while window.elapsed().as_secs_f64() < sizes.idle_seconds {
        let held = metadata
            .task_instances(&run)?
            .iter()
            .filter(|t| matches!(t.state.as_str(), "queued" | "running"))
            .count();
        held_max = held_max.max(held);
        held_sum += held;
        samples += 1;
        std::thread::sleep(SAMPLE_EVERY);
    }
    let waited = window.elapsed().as_secs_f64();
    running.check_alive()?;
    let after = running.usage()?;
    running.stop()?;

    let cpu = after.cpu_s - before.cpu_s + after.children_cpu_s - before.children_cpu_s;
    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "cpu_percent_of_core",
            "CPU while the sensors wait, % of one core",
            Unit::Percent,
            cpu * 100.0 / waited,
        )
        .goal(Goal::AtMost(1.0)),
    );
    m.figure(Figure::new(
        "slots_held_max",
        "worker slots held while they wait (queued or running), most sampled",
        Unit::Slots,
        held_max as f64,
    ));
    m.figure(Figure::new(
        "slots_held_mean",
        "worker slots held while they wait, mean of the samples",
        Unit::Slots,
        held_sum as f64 / samples.max(1) as f64,
    ));
    m.figure(Figure::new(
        "all_waiting_s",
        "trigger → every sensor waiting",
        Unit::Seconds,
        settle.2,
    ));
    m.count("sensors", count as u64);
    m.count("deferred", settle.0 as u64);
    m.count("up_for_reschedule", settle.1 as u64);
    Ok(m)
}

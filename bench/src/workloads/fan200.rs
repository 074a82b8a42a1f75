//! W2 `fan200`: `start` → 200 parallel `true` tasks → `end`, triggered once.

use std::time::Instant;

use anyhow::Result;

use super::{seconds, start, successful_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::updraft::Home;

const DAG: &str = "fan200";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let tasks = bench.sizes.fan_width + 2;
    let home = Home::new()?;
    dag_folder::write(
        &home.dags(),
        [(
            format!("{DAG}.yaml"),
            dag_folder::fan(DAG, bench.sizes.fan_width),
        )],
    )?;
    let standalone = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let clock = Instant::now();
    let run_id = bench.updraft.trigger(&home, DAG, true)?;
    let wall = clock.elapsed().as_secs_f64();
    let done = successful_run(&*metadata, DAG, &run_id, tasks)?;
    standalone.stop()?;

    let run_s = seconds(done.end - done.run.queued_at);
    let mut m = Measurement::default();
    m.figure(
        Figure::new("run_s", "trigger → run success", Unit::Seconds, run_s).goal(Goal::AtMost(0.3)),
    );
    m.figure(Figure::new(
        "task_instances_per_s",
        "task instances per second",
        Unit::TasksPerSecond,
        tasks as f64 / run_s,
    ));
    m.figure(Figure::new(
        "trigger_wait_wall_s",
        "`dags trigger --wait` wall time",
        Unit::Seconds,
        wall,
    ));
    m.count("task_instances_success", done.tasks.len() as u64);
    Ok(m)
}

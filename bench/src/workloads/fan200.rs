//! W2 `fan200`: `start` → 200 parallel `true` tasks → `end`, triggered once.

use anyhow::Result;

use super::{seconds, single_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};

const DAG: &str = "fan200";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let tasks = bench.sizes.fan_width + 2;
    let (done, wall) = single_run(
        bench,
        DAG,
        dag_folder::fan(DAG, bench.sizes.fan_width),
        tasks,
    )?;

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

//! W1 `chain40`: one DAG of 40 `true` tasks in a straight chain, triggered once.

use std::time::Instant;

use anyhow::Result;

use super::{millis, seconds, start, successful_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;
use crate::updraft::Home;

const DAG: &str = "chain40";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let n = bench.sizes.chain_length;
    let home = Home::new()?;
    dag_folder::write(
        &home.dags(),
        [(format!("{DAG}.yaml"), dag_folder::chain(DAG, n))],
    )?;
    let standalone = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let clock = Instant::now();
    let run_id = bench.updraft.trigger(&home, DAG, true)?;
    let wall = clock.elapsed().as_secs_f64();
    let done = successful_run(&*metadata, DAG, &run_id, n)?;
    standalone.stop()?;

    let hops: Vec<f64> = done
        .tasks
        .windows(2)
        .map(|w| millis(w[1].start - w[0].end))
        .collect();
    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "run_s",
            "trigger → run success",
            Unit::Seconds,
            seconds(done.end - done.run.queued_at),
        )
        .goal(Goal::AtMost(0.2)),
    );
    m.figure(
        Figure::new(
            "hop_median_ms",
            "median hop (task end → next start)",
            Unit::Millis,
            stats::median(&hops),
        )
        .goal(Goal::AtMost(2.0)),
    );
    m.figure(Figure::new(
        "hop_max_ms",
        "slowest hop",
        Unit::Millis,
        stats::max(&hops),
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

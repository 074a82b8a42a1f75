//! W1 `chain40`: one DAG of 40 `true` tasks in a straight chain, triggered once.

use anyhow::Result;

use super::{millis, seconds, single_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;

const DAG: &str = "chain40";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let n = bench.sizes.chain_length;
    let (done, wall) = single_run(bench, DAG, dag_folder::chain(DAG, n), n)?;

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

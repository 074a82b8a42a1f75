//! W7 `latency`: a DAG of 2 tasks triggered 100 times in sequence (each run awaited):
//! trigger → first task start, and first task end → second task start.

use anyhow::Result;

use super::{millis, start, successful_run, Bench};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;

const DAG: &str = "latency";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let triggers = bench.sizes.latency_triggers;
    let home = bench.home()?;
    dag_folder::write(
        &home.dags(),
        [(format!("{DAG}.yaml"), dag_folder::chain(DAG, 2))],
    )?;
    let running = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let run_ids = (0..triggers)
        .map(|_| bench.updraft.trigger(&home, DAG, true))
        .collect::<Result<Vec<_>>>()?;
    let done = run_ids
        .iter()
        .map(|id| successful_run(&*metadata, DAG, id, 2))
        .collect::<Result<Vec<_>>>()?;
    running.stop()?;

    let to_start: Vec<f64> = done
        .iter()
        .map(|d| millis(d.tasks[0].start - d.run.queued_at))
        .collect();
    let hop: Vec<f64> = done
        .iter()
        .map(|d| millis(d.tasks[1].start - d.tasks[0].end))
        .collect();
    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "trigger_to_start_p50_ms",
            "trigger → first task start, p50",
            Unit::Millis,
            stats::percentile(&to_start, 50.0),
        )
        .goal(Goal::AtMost(5.0)),
    );
    m.figure(
        Figure::new(
            "trigger_to_start_p99_ms",
            "trigger → first task start, p99",
            Unit::Millis,
            stats::percentile(&to_start, 99.0),
        )
        .goal(Goal::AtMost(20.0)),
    );
    m.figure(Figure::new(
        "hop_p50_ms",
        "first end → second start, p50",
        Unit::Millis,
        stats::percentile(&hop, 50.0),
    ));
    m.figure(Figure::new(
        "hop_p99_ms",
        "first end → second start, p99",
        Unit::Millis,
        stats::percentile(&hop, 99.0),
    ));
    m.count("runs_success", done.len() as u64);
    Ok(m)
}

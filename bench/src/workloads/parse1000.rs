//! W6 `parse1000`: 1,000 DAG files of 10 tasks; `dags list` on a fresh home parses and
//! registers them all (cold), and again with nothing changed (warm).

use std::time::Instant;

use anyhow::{ensure, Result};

use super::Bench;
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::updraft::Home;

pub fn run(bench: &Bench) -> Result<Measurement> {
    let files = bench.sizes.parse_files;
    let home = bench.home()?;
    let dags = (0..files).map(|i| {
        let id = format!("parse_{i:04}");
        (
            format!("{id}.yaml"),
            dag_folder::pipeline(&id, bench.sizes.parse_tasks),
        )
    });
    dag_folder::write(&home.dags(), dags)?;
    let list = |home: &Home| -> Result<(f64, usize)> {
        let clock = Instant::now();
        let listed = bench.updraft.cli_json(home, &["dags", "list"])?;
        Ok((
            clock.elapsed().as_secs_f64(),
            listed.as_array().map_or(0, Vec::len),
        ))
    };
    let (cold, cold_count) = list(&home)?;
    let (warm, warm_count) = list(&home)?;
    ensure!(
        cold_count == files && warm_count == files,
        "`dags list` showed {cold_count} then {warm_count} DAGs, expected {files}"
    );
    // The same command on an empty, already created home: what any CLI call costs.
    let empty = bench.home()?;
    list(&empty)?;
    let (floor, _) = list(&empty)?;

    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "cold_s",
            "`dags list`, fresh home: parse + register all",
            Unit::Seconds,
            cold,
        )
        .goal(Goal::AtMost(1.0)),
    );
    m.figure(
        Figure::new(
            "warm_s",
            "`dags list` again, nothing changed",
            Unit::Seconds,
            warm,
        )
        .goal(Goal::AtMost(0.05)),
    );
    m.figure(Figure::new(
        "cli_floor_s",
        "`dags list` with an empty folder",
        Unit::Seconds,
        floor,
    ));
    m.count("dags_listed", cold_count as u64);
    Ok(m)
}

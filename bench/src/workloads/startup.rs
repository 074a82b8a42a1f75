//! W4 `startup`: from process start until the health endpoint says healthy and the 102 DAGs
//! of the W3 folder are listed.

use anyhow::{ensure, Result};

use super::{write_idle_folder, Bench};
use crate::deployment::Deployment;
use crate::measurement::{Figure, Goal, Measurement, Unit};

pub fn run(bench: &Bench) -> Result<Measurement> {
    // With W11's prefill, its DAGs are listed too.
    let dags = bench.sizes.idle_dags + 2 + bench.prefilled_dags();
    let home = bench.home()?;
    write_idle_folder(&home, bench.sizes)?;
    let mut running = Deployment::spawn(bench, &home)?;
    let ready = running.wait_ready(bench, &home, dags)?;
    // What a user sees: `dags list` shows them all.
    let listed = bench.updraft.cli_json(&home, &["dags", "list"])?;
    let listed = listed.as_array().map_or(0, Vec::len);
    ensure!(
        listed == dags,
        "`dags list` shows {listed} DAGs, expected {dags}"
    );
    let usage = running.usage()?;
    running.stop()?;

    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "startup_s",
            "process start → healthy, all DAGs listed",
            Unit::Seconds,
            ready.as_secs_f64(),
        )
        .goal(Goal::AtMost(0.3)),
    );
    m.figure(Figure::new(
        "startup_rss_mib",
        "resident memory by then",
        Unit::Mebibytes,
        usage.rss_mib,
    ));
    m.count("dags_listed", listed as u64);
    Ok(m)
}

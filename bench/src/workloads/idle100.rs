//! W3 `idle100`: 100 unscheduled DAGs of 5 tasks plus W1's and W2's DAGs loaded, nothing
//! running: resident memory of the updraft processes and the CPU they burn while idle.

use anyhow::Result;

use super::{sleep_seconds, start, write_idle_folder, Bench};
use crate::measurement::{Figure, Goal, Measurement, Unit};

pub fn run(bench: &Bench) -> Result<Measurement> {
    let sizes = bench.sizes;
    let dags = sizes.idle_dags + 2;
    let home = bench.home()?;
    write_idle_folder(&home, sizes)?;
    let mut running = start(bench, &home, dags)?;
    sleep_seconds(sizes.settle_seconds);
    let before = running.usage()?;
    sleep_seconds(sizes.idle_seconds);
    running.check_alive()?;
    let after = running.usage()?;
    running.stop()?;

    let cpu_per_minute = (after.cpu_s - before.cpu_s) * 60.0 / sizes.idle_seconds;
    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "idle_rss_mib",
            "resident memory, all updraft processes",
            Unit::Mebibytes,
            after.rss_mib,
        )
        .goal(Goal::AtMost(30.0)),
    );
    m.figure(Figure::new(
        "peak_rss_mib",
        "peak resident (VmHWM) since start",
        Unit::Mebibytes,
        after.peak_rss_mib,
    ));
    m.figure(
        Figure::new(
            "idle_cpu_s_per_min",
            "CPU per idle minute",
            Unit::CpuSeconds,
            cpu_per_minute,
        )
        .goal(Goal::AtMost(0.1)),
    );
    m.count("dags", dags as u64);
    m.count("updraft_processes", after.processes as u64);
    Ok(m)
}

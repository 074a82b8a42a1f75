//! W5 `throughput`: 10 runs of a DAG of 1,000 independent `true` tasks, triggered back to
//! back: task instances per second end to end, peak memory, and CPU per task instance.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{seconds, start, successful_run, Bench};
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::{dag_folder, procfs};

const DAG: &str = "throughput";
const TIMEOUT: Duration = Duration::from_secs(900);

pub fn run(bench: &Bench) -> Result<Measurement> {
    let (runs, width) = (bench.sizes.throughput_runs, bench.sizes.throughput_width);
    let total = runs * width;
    let home = bench.home()?;
    dag_folder::write(
        &home.dags(),
        [(format!("{DAG}.yaml"), dag_folder::parallel(DAG, width))],
    )?;
    let mut running = start(bench, &home, 1)?;
    let metadata = bench.database.open(&home)?;
    let perf = match &bench.perf_w5 {
        Some(file) => Some(Perf::attach(&running.pids(), file)?),
        None => None,
    };
    let before = running.usage()?;
    let machine_before = procfs::machine_busy_s()?;
    let clock = Instant::now();
    let run_ids = (0..runs)
        .map(|_| bench.updraft.trigger(&home, DAG, false))
        .collect::<Result<Vec<_>>>()?;
    while metadata.unfinished_runs(DAG)? > 0 {
        running.check_alive()?;
        if clock.elapsed() > TIMEOUT {
            bail!("{runs} runs of {width} tasks not finished after {TIMEOUT:?}");
        }
        // The figures come from the runs' own timestamps: polling finer would only load the
        // database being measured (on PostgreSQL, a prepared query every 5 ms was ~2 % of it).
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = clock.elapsed().as_secs_f64();
    let after = running.usage()?;
    let machine_busy = procfs::machine_busy_s()? - machine_before;
    if let Some(perf) = perf {
        perf.finish()?;
    }
    let done = run_ids
        .iter()
        .map(|id| successful_run(&*metadata, DAG, id, width))
        .collect::<Result<Vec<_>>>()?;
    running.stop()?;

    let first_trigger = done.iter().map(|d| d.run.queued_at).min().unwrap_or(0);
    let last_end = done
        .iter()
        .flat_map(|d| d.tasks.iter().map(|t| t.end))
        .max()
        .unwrap_or(0);
    let span = seconds(last_end - first_trigger);
    let per_ti = |cpu_s: f64| cpu_s * 1e3 / total as f64;
    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "task_instances_per_s",
            "task instances per second (first trigger → last task end)",
            Unit::TasksPerSecond,
            total as f64 / span,
        )
        .goal(Goal::AtLeast(1000.0)),
    );
    m.figure(Figure::new(
        "duration_s",
        "first trigger → last task end",
        Unit::Seconds,
        span,
    ));
    m.figure(
        Figure::new(
            "peak_rss_mib",
            "peak resident (VmHWM), all updraft processes",
            Unit::Mebibytes,
            after.peak_rss_mib,
        )
        .goal(Goal::AtMost(100.0)),
    );
    m.figure(Figure::new(
        "updraft_cpu_ms_per_ti",
        "updraft CPU per task instance",
        Unit::CpuMillisPerTask,
        per_ti(after.cpu_s - before.cpu_s),
    ));
    m.figure(Figure::new(
        "task_cpu_ms_per_ti",
        "task process CPU per task instance",
        Unit::CpuMillisPerTask,
        per_ti(after.children_cpu_s - before.children_cpu_s),
    ));
    m.figure(Figure::new(
        "machine_cpu_ms_per_ti",
        "machine CPU per task instance (every process: updraft, tasks, database, harness)",
        Unit::CpuMillisPerTask,
        per_ti(machine_busy),
    ));
    m.figure(Figure::new(
        "wall_s",
        "harness wall time (triggers by CLI + wait)",
        Unit::Seconds,
        wall,
    ));
    m.count("runs_success", done.len() as u64);
    m.count(
        "task_instances_success",
        done.iter().map(|d| d.tasks.len() as u64).sum(),
    );
    Ok(m)
}

/// `perf record` (DWARF call graphs: release builds have no frame pointers) attached to the
/// updraft processes for the duration of the runs.
struct Perf {
    child: Child,
}

impl Perf {
    fn attach(pids: &[i32], file: &Path) -> Result<Perf> {
        let pids = pids
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let child = Command::new("perf")
            .args(["record", "--call-graph", "dwarf", "-F", "999", "-o"])
            .arg(file)
            .args(["-p", &pids])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run perf (install linux-perf, or drop --perf-w5)")?;
        // Let it attach before the work starts.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Perf { child })
    }

    fn finish(mut self) -> Result<()> {
        // Child ids fit in a pid_t.
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).context("cannot stop perf")?;
        let status = self.child.wait().context("cannot wait for perf")?;
        // perf writes its file on SIGINT and then ends by it again (perf 6.x), or exits 0.
        let stopped_by_us = status.signal() == Some(Signal::SIGINT as i32);
        if !status.success() && !stopped_by_us {
            bail!("perf record exited with {status}");
        }
        Ok(())
    }
}

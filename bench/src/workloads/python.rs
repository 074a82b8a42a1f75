//! W8 `python`: W1 and W2 with Python `@task` functions instead of `true`, each returning the
//! instant its callable began, which the next task takes as its argument.
//!
//! Claimed → callable running is exact per task instance: the store sets `start_date` when a
//! worker claims the try, and the callable's first statement is `time.time()`, returned as its
//! XCom; both are the same machine's wall clock. Python's own start-up floor on this machine is
//! timed beside it: `python3 -c pass` (whatever `python3` is on PATH, e.g. a pyenv shim), and the
//! real interpreter behind it with `-c pass` and `-c 'import updraft'` (the SDK of this repo).
//!
//! One `standalone` runs each DAG twice: the goals are judged on the second runs (what every
//! run after the first costs), and the first runs, which start the fork server and each DAG
//! version's preloader, are reported beside them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::{millis, repeated_runs_of_files, seconds, Bench, DagFile, SuccessfulRun};
use crate::dag_folder;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;
use crate::updraft::workspace_root;

const CHAIN: &str = "python_chain40";
const FAN: &str = "python_fan200";

pub fn run(bench: &Bench) -> Result<Measurement> {
    let n = bench.sizes.chain_length;
    let fan_tasks = bench.sizes.fan_width + 2;
    let files = [
        DagFile {
            dag_id: CHAIN,
            file_name: format!("{CHAIN}.py"),
            source: dag_folder::python_chain(CHAIN, n),
            tasks: n,
        },
        DagFile {
            dag_id: FAN,
            file_name: format!("{FAN}.py"),
            source: dag_folder::python_fan(FAN, bench.sizes.fan_width),
            tasks: fan_tasks,
        },
    ];
    // Each DAG twice: the first run after start-up starts the fork server (the chain's) and
    // the DAG version's preloader; the second is what every later run costs.
    let runs = repeated_runs_of_files(bench, &files, 2)?;
    let [chain_runs, fan_runs] = <[Vec<SuccessfulRun>; 2]>::try_from(runs)
        .map_err(|_| anyhow::anyhow!("expected the runs of two DAGs"))?;
    let [chain_first, chain] = <[SuccessfulRun; 2]>::try_from(chain_runs)
        .map_err(|_| anyhow::anyhow!("expected two runs of the chain"))?;
    let [fan_first, fan] = <[SuccessfulRun; 2]>::try_from(fan_runs)
        .map_err(|_| anyhow::anyhow!("expected two runs of the fan"))?;

    let chain_to_callable = claimed_to_callable(&chain)?;
    let fan_to_callable = claimed_to_callable(&fan)?;
    let mut to_callable = chain_to_callable.clone();
    to_callable.extend(&fan_to_callable);
    let hops: Vec<f64> = chain
        .tasks
        .windows(2)
        .map(|w| millis(w[1].start - w[0].end))
        .collect();
    let run_s = |run: &SuccessfulRun| seconds(run.end - run.run.queued_at);
    let fan_s = run_s(&fan);

    let mut m = Measurement::default();
    m.figure(
        Figure::new(
            "chain_run_s",
            "chain of 40 @tasks: trigger → run success (its second run)",
            Unit::Seconds,
            run_s(&chain),
        )
        .goal(Goal::AtMost(0.6)),
    );
    m.figure(Figure::new(
        "chain_first_run_s",
        "chain: its first run after start-up (starts the fork server and the preloader)",
        Unit::Seconds,
        run_s(&chain_first),
    ));
    m.figure(Figure::new(
        "chain_hop_median_ms",
        "chain: median hop (task end → next claimed)",
        Unit::Millis,
        stats::median(&hops),
    ));
    m.figure(
        Figure::new(
            "fan_run_s",
            "start → 200 parallel @tasks → end: trigger → run success (its second run)",
            Unit::Seconds,
            fan_s,
        )
        .goal(Goal::AtMost(1.0)),
    );
    m.figure(Figure::new(
        "fan_first_run_s",
        "fan: its first run (starts its preloader)",
        Unit::Seconds,
        run_s(&fan_first),
    ));
    m.figure(Figure::new(
        "fan_task_instances_per_s",
        "fan: task instances per second",
        Unit::TasksPerSecond,
        fan_tasks as f64 / fan_s,
    ));
    m.figure(
        Figure::new(
            "claimed_to_callable_p50_ms",
            "claimed → callable running, p50 (second runs)",
            Unit::Millis,
            stats::percentile(&to_callable, 50.0),
        )
        .goal(Goal::AtMost(10.0)),
    );
    m.figure(
        Figure::new(
            "claimed_to_callable_p99_ms",
            "claimed → callable running, p99 (second runs)",
            Unit::Millis,
            stats::percentile(&to_callable, 99.0),
        )
        .goal(Goal::AtMost(30.0)),
    );

    // Apart: a chain's try waits for nothing, while the fan's 200 are claimed together and
    // wait for the 2 cores.
    for (key, label, values, p) in [
        (
            "chain_claimed_to_callable_p50_ms",
            "chain alone: claimed → callable running, p50",
            &chain_to_callable,
            50.0,
        ),
        (
            "chain_claimed_to_callable_p99_ms",
            "chain alone: claimed → callable running, p99",
            &chain_to_callable,
            99.0,
        ),
        (
            "fan_claimed_to_callable_p50_ms",
            "fan alone: claimed → callable running, p50",
            &fan_to_callable,
            50.0,
        ),
        (
            "fan_claimed_to_callable_p99_ms",
            "fan alone: claimed → callable running, p99",
            &fan_to_callable,
            99.0,
        ),
    ] {
        m.figure(Figure::new(
            key,
            label,
            Unit::Millis,
            stats::percentile(values, p),
        ));
    }

    let starts = bench.sizes.python_floor_starts;
    let interpreter = real_interpreter()?;
    let sdk = workspace_root().join("sdk/python/src");
    m.figure(Figure::new(
        "python3_on_path_pass_ms",
        "floor: `python3 -c pass` (python3 on PATH), median",
        Unit::Millis,
        median_start(Path::new("python3"), "pass", None, starts)?,
    ));
    m.figure(Figure::new(
        "python_pass_ms",
        "floor: `<interpreter> -c pass`, median",
        Unit::Millis,
        median_start(&interpreter, "pass", None, starts)?,
    ));
    m.figure(Figure::new(
        "python_import_updraft_ms",
        "floor: `<interpreter> -c 'import updraft'`, median",
        Unit::Millis,
        median_start(&interpreter, "import updraft", Some(&sdk), starts)?,
    ));
    m.count(
        "task_instances_success",
        (chain.tasks.len() + fan.tasks.len()) as u64,
    );
    m.count("callables_timed", to_callable.len() as u64);
    Ok(m)
}

/// Per task instance, in milliseconds: the instant its callable began (its XCom) minus the
/// instant it was claimed (`start_date`). Every task must have returned its instant.
fn claimed_to_callable(done: &SuccessfulRun) -> Result<Vec<f64>> {
    if done.return_values.len() != done.tasks.len() {
        bail!(
            "{} of {} Python tasks returned a value",
            done.return_values.len(),
            done.tasks.len()
        );
    }
    done.tasks
        .iter()
        .zip(&done.return_values)
        .map(|(ti, (task_id, value))| {
            if *task_id != ti.task_id {
                bail!("no return value of task {}", ti.task_id);
            }
            let began: f64 = value
                .trim()
                .parse()
                .with_context(|| format!("task {task_id} returned {value:?}, not an instant"))?;
            Ok(began * 1e3 - millis(ti.start))
        })
        .collect()
}

/// The interpreter `python3` on PATH runs in the end (a pyenv shim execs another binary).
fn real_interpreter() -> Result<std::path::PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run python3")?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        bail!(
            "python3 did not say where its interpreter is ({})",
            out.status
        );
    }
    Ok(path.into())
}

/// Median wall time in milliseconds of `interpreter -c code`, started `times` times.
fn median_start(
    interpreter: &Path,
    code: &str,
    python_path: Option<&Path>,
    times: usize,
) -> Result<f64> {
    let mut walls = Vec::with_capacity(times);
    for _ in 0..times.max(1) {
        let mut command = Command::new(interpreter);
        command.args(["-c", code]).stdout(Stdio::null());
        if let Some(path) = python_path {
            command.env("PYTHONPATH", path);
        }
        let clock = Instant::now();
        let status = command
            .status()
            .with_context(|| format!("cannot start {}", interpreter.display()))?;
        walls.push(clock.elapsed().as_secs_f64() * 1e3);
        if !status.success() {
            bail!("{} -c {code:?} failed: {status}", interpreter.display());
        }
    }
    Ok(stats::median(&walls))
}

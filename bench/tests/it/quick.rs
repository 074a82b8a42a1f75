//! The quick mode end to end: every workload runs and reports sane figures. Timing thresholds
//! are deliberately not checked here (CI machines vary); the goals live in the report.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `$UPDRAFT_BIN`, or else `updraft` built into the target directory this test was built in
/// (with `updraft`'s own features, not those `cargo test --workspace` adds for its tests).
pub fn updraft_binary() -> PathBuf {
    // tests/all.sh names the binary the workspace's test build made: building here would
    // replace it (other features) while other test processes may be starting it.
    if let Some(binary) = std::env::var_os("UPDRAFT_BIN") {
        return PathBuf::from(binary);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .args(["build", "-p", "updraft"])
        .current_dir(workspace);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build -p updraft failed");
    let binary = profile_dir.join("updraft");
    assert!(
        binary.is_file(),
        "no updraft binary at {} after cargo build -p updraft",
        binary.display()
    );
    binary
}

fn figure<'a>(workload: &'a Value, key: &str) -> &'a Value {
    workload["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .unwrap_or_else(|| panic!("no figure {key} in {workload}"))
}

pub fn median(workload: &Value, key: &str) -> f64 {
    figure(workload, key)["median"].as_f64().unwrap()
}

/// Runs `updraft-bench ARGS` on this workspace's updraft and expects it to succeed: its
/// printed table and its JSON report.
fn bench(args: &[&str]) -> (String, Value) {
    let out_dir = tempfile::tempdir().unwrap();
    let json_path = out_dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_updraft-bench"))
        .args(args)
        .arg("--updraft")
        .arg(updraft_binary())
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "updraft-bench failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    (stdout, report)
}

#[test]
fn quick_mode_runs_every_workload_with_sane_figures() {
    let _harness = crate::one_harness_at_a_time();
    let (stdout, report) = bench(&["--quick", "--workloads", "all"]);
    assert!(stdout.contains("W7 latency"), "no table printed:\n{stdout}");
    assert_eq!(report["quick"], true);
    assert_eq!(report["repetitions"], 1);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["machine"]["memory_mib"].as_u64().unwrap() > 0);
    let filesystem = report["machine"]["homes_filesystem"].as_str().unwrap();
    assert!(
        !filesystem.is_empty() && filesystem != "unknown",
        "{filesystem}"
    );
    assert!(report["parallelism"].as_u64().unwrap() >= 1);
    assert!(report["date"].as_str().unwrap().starts_with("20"));
    let sizes = &report["sizes"];
    let size = |k: &str| sizes[k].as_u64().unwrap();

    let workloads = report["workloads"].as_array().unwrap();
    let ids: Vec<&str> = workloads
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10", "W11", "W12", "W13", "W14"]
    );
    for w in workloads {
        for f in w["figures"].as_array().unwrap() {
            let median = f["median"].as_f64();
            assert!(
                median.is_some_and(|m| m.is_finite() && m >= 0.0),
                "{}: figure {} is not a finite non-negative number: {f}",
                w["id"],
                f["key"]
            );
            assert_eq!(f["values"].as_array().unwrap().len(), 1);
        }
    }
    let counts = |i: usize| &workloads[i]["counts"];

    // W1: every task of the chain ran, one after the other.
    assert_eq!(counts(0)["task_instances_success"], size("chain_length"));
    assert!(median(&workloads[0], "run_s") > 0.0);
    assert!(median(&workloads[0], "hop_median_ms") > 0.0);
    // W2: start, the fan, end.
    assert_eq!(counts(1)["task_instances_success"], size("fan_width") + 2);
    assert!(median(&workloads[1], "task_instances_per_s") > 0.0);
    // W3: the standalone and its reaper, every DAG loaded, memory measured.
    assert_eq!(counts(2)["dags"], size("idle_dags") + 2);
    assert_eq!(counts(2)["updraft_processes"], 2);
    assert!(median(&workloads[2], "idle_rss_mib") > 1.0);
    // W4: every DAG listed.
    assert_eq!(counts(3)["dags_listed"], size("idle_dags") + 2);
    assert!(median(&workloads[3], "startup_s") > 0.0);
    // W5: every run and task instance succeeded.
    assert_eq!(counts(4)["runs_success"], size("throughput_runs"));
    assert_eq!(
        counts(4)["task_instances_success"],
        size("throughput_runs") * size("throughput_width")
    );
    assert!(median(&workloads[4], "task_instances_per_s") > 0.0);
    assert!(median(&workloads[4], "peak_rss_mib") > 1.0);
    // W6: every file parsed and registered.
    assert_eq!(counts(5)["dags_listed"], size("parse_files"));
    // W7: every triggered run succeeded.
    assert_eq!(counts(6)["runs_success"], size("latency_triggers"));
    assert!(
        median(&workloads[6], "trigger_to_start_p99_ms")
            >= median(&workloads[6], "trigger_to_start_p50_ms")
    );
    // W8: every Python task of both DAGs ran and returned the instant its callable began.
    let python_tasks = size("chain_length") + size("fan_width") + 2;
    assert_eq!(counts(7)["task_instances_success"], python_tasks);
    assert_eq!(counts(7)["callables_timed"], python_tasks);
    assert!(
        median(&workloads[7], "claimed_to_callable_p99_ms")
            >= median(&workloads[7], "claimed_to_callable_p50_ms")
    );
    assert!(median(&workloads[7], "python_import_updraft_ms") > 0.0);
    assert_scale_counts(&workloads[8..11], sizes);
    // W12: every sensor waited (the time and external sensors deferred, the file sensors
    // rescheduled), holding no worker slot between pokes.
    let sensors = size("sensor_count");
    assert_eq!(counts(11)["sensors"], sensors);
    // A third of them file sensors (every third from the second), the rest deferred.
    let file_sensors = (sensors + 1) / 3;
    assert_eq!(counts(11)["deferred"], sensors - file_sensors);
    assert_eq!(counts(11)["up_for_reschedule"], file_sensors);
    assert_eq!(median(&workloads[11], "slots_held_max"), 0.0);
    // W13: the API answered what the history holds, and every timed read was answered.
    assert_w13_counts(&workloads[12], sizes);
    // W14: the history with the wide DAG, every view answered, the whole grid in the browser.
    let w14 = &workloads[13];
    assert_eq!(counts(13)["runs"], size("api_runs") + size("ui_grid_runs"));
    let wide_tasks = size("ui_grid_layers") * size("ui_grid_width");
    assert_eq!(
        counts(13)["task_instances"],
        size("api_runs") * size("api_tasks_per_dag") + size("ui_grid_runs") * wide_tasks
    );
    assert_eq!(counts(13)["grid_cells"], size("ui_grid_runs") * wide_tasks);
    assert_eq!(counts(13)["browser_loads"], size("ui_browser_loads"));
    for view in [
        "home",
        "dags",
        "grid",
        "grid100",
        "graph",
        "gantt",
        "run",
        "task",
        "cluster",
        "variables",
    ] {
        let p50 = median(w14, &format!("{view}_p50_ms"));
        let p99 = median(w14, &format!("{view}_p99_ms"));
        assert!(p50 > 0.0 && p99 >= p50, "{view}: p50 {p50}, p99 {p99}");
    }
    assert!(
        median(w14, "grid_browser_load_ms") >= median(w14, "grid_browser_response_ms"),
        "the load event before the HTML arrived"
    );
}

/// W9–W11's counts and figures: every run and task instance of each succeeded.
fn assert_scale_counts(scale: &[Value], sizes: &Value) {
    let size = |k: &str| sizes[k].as_u64().unwrap();
    // W9: the big DAG once and the small one `bigdag_small_runs` times, every task done.
    let (w9, counts) = (&scale[0], &scale[0]["counts"]);
    assert_eq!(counts["runs_success"], 1 + size("bigdag_small_runs"));
    assert_eq!(
        counts["task_instances_success"],
        size("bigdag_layers") * size("bigdag_width")
    );
    assert_eq!(
        counts["small_task_instances_success"],
        size("bigdag_small_runs") * size("bigdag_small_layers") * size("bigdag_small_width")
    );
    assert!(median(w9, "peak_rss_mib") > 1.0);
    assert!(median(w9, "updraft_cpu_ms_per_ti") > 0.0);
    assert!(median(w9, "small_updraft_cpu_ms_per_ti") > 0.0);
    // W10: every DAG ran once per tick, its 3 tasks done, each run after its tick.
    let (w10, counts) = (&scale[1], &scale[1]["counts"]);
    let runs = size("manydags_dags") * size("manydags_ticks");
    assert_eq!(counts["ticks"], size("manydags_ticks"));
    assert_eq!(counts["runs_success"], runs);
    assert_eq!(counts["task_instances_success"], runs * 3);
    let p50 = median(w10, "tick_to_run_start_p50_ms");
    assert!(p50 > 0.0 && median(w10, "tick_to_run_start_p99_ms") >= p50);
    assert!(median(w10, "tick_to_first_task_p50_ms") >= p50);
    // W11: W1, W2, W7 and W4 ran on the history, which holds every run written.
    let (w11, counts) = (&scale[2], &scale[2]["counts"]);
    assert_eq!(counts["history_runs"], size("api_runs"));
    assert_eq!(
        counts["history_task_instances"],
        size("api_runs") * size("api_tasks_per_dag")
    );
    assert_eq!(counts["w1_task_instances_success"], size("chain_length"));
    assert_eq!(counts["w2_task_instances_success"], size("fan_width") + 2);
    assert_eq!(counts["w7_runs_success"], size("latency_triggers"));
    assert_eq!(
        counts["w4_dags_listed"],
        size("idle_dags") + 2 + size("api_dags")
    );
    for ratio in [
        "w1_run",
        "w1_hop",
        "w2_run",
        "w7_p50",
        "w7_p99",
        "w4_startup",
    ] {
        assert!(median(w11, &format!("{ratio}_ratio")) > 0.0, "{ratio}");
    }
}

/// W13's counts and figures: the history written, each route checked against it, the load
/// fully answered, and each route's p99 at least its p50.
pub fn assert_w13_counts(w13: &Value, sizes: &Value) {
    let size = |k: &str| sizes[k].as_u64().unwrap();
    let counts = &w13["counts"];
    assert_eq!(counts["runs"], size("api_runs"));
    assert_eq!(
        counts["task_instances"],
        size("api_runs") * size("api_tasks_per_dag")
    );
    assert_eq!(counts["dags_listed"], size("api_dags").min(100));
    // The busiest DAG holds half of the runs and more.
    assert!(counts["runs_total_entries"].as_u64().unwrap() >= size("api_runs") / 2);
    assert_eq!(counts["task_instances_listed"], size("api_tasks_per_dag"));
    assert_eq!(counts["load_requests"], size("api_load_requests"));
    for route in ["dags", "runs", "tis"] {
        let p50 = median(w13, &format!("{route}_p50_ms"));
        let p99 = median(w13, &format!("{route}_p99_ms"));
        assert!(p50 > 0.0 && p99 >= p50, "{route}: p50 {p50}, p99 {p99}");
    }
    assert!(median(w13, "reads_per_s") > 0.0);
}

/// `--set` reaches every updraft process (here the `config list` that reports the parallelism)
/// and is listed in the report; a malformed one is refused before anything runs.
#[test]
fn settings_reach_updraft_and_the_report() {
    let _harness = crate::one_harness_at_a_time();
    let (stdout, report) = bench(&[
        "--quick",
        "--workloads",
        "w1",
        "--set",
        "core.parallelism=7",
        "--set",
        "worker.direct_exec=false",
    ]);
    assert!(
        stdout.contains("settings core.parallelism=7 worker.direct_exec=false"),
        "{stdout}"
    );
    assert_eq!(report["parallelism"], 7);
    assert_eq!(
        report["settings"],
        serde_json::json!(["core.parallelism=7", "worker.direct_exec=false"])
    );

    let out = Command::new(env!("CARGO_BIN_EXE_updraft-bench"))
        .args(["--quick", "--set", "parallelism=7", "--updraft"])
        .arg(updraft_binary())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the key must be SECTION.KEY"), "{stderr}");
}

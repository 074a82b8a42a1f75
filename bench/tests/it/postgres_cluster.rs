//! The quick mode on PostgreSQL: the harness starts a cluster of two schedulers, an API server
//! and a remote worker on a fresh database, and every workload of the issues' PostgreSQL
//! reports (W1, W2, W5, and W13 on the API server) completes. Skipped loudly when no
//! PostgreSQL server is reachable, except under CI, which must run it.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::quick::{assert_w13_counts, median, updraft_binary};

const URL_VARIABLE: &str = "UPDRAFT_TEST_POSTGRES_URL";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server's URL, or `None` (after saying so) when it cannot be reached outside CI.
pub fn reachable_postgres() -> Option<String> {
    let url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_string());
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL not reachable at {url} ({e}); CI must run the PostgreSQL tests")
        }
        Err(e) => {
            eprintln!(
                "\n*****************************************************************\n\
                 SKIPPED: PostgreSQL not reachable at {url} ({e}), set {URL_VARIABLE}\n\
                 *****************************************************************\n"
            );
            None
        }
    }
}

#[test]
fn quick_mode_runs_on_a_postgres_cluster_of_two_schedulers() {
    let _harness = crate::one_harness_at_a_time();
    let Some(url) = reachable_postgres() else {
        return;
    };
    let updraft = updraft_binary();
    let out_dir = tempfile::tempdir().unwrap();
    let json_path = out_dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_updraft-bench"))
        .args([
            "--quick",
            "--workloads",
            "w1,w2,w5,w13",
            "--database",
            "postgres",
            "--schedulers",
            "2",
            "--postgres-url",
            &url,
            "--updraft",
        ])
        .arg(&updraft)
        .arg("--json")
        .arg(&json_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness_pid = out.id();
    let out = out.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "updraft-bench failed:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("W5 throughput"),
        "no table printed:\n{stdout}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["database"], "postgres");
    assert_eq!(report["cluster"]["schedulers"], 2);
    assert_eq!(report["cluster"]["workers"], 1);
    let sizes = &report["sizes"];
    let size = |k: &str| sizes[k].as_u64().unwrap();
    let workloads = report["workloads"].as_array().unwrap();
    let ids: Vec<&str> = workloads
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["W1", "W2", "W5", "W13"]);
    let counts = |i: usize| &workloads[i]["counts"];
    assert_eq!(counts(0)["task_instances_success"], size("chain_length"));
    assert!(median(&workloads[0], "hop_median_ms") > 0.0);
    assert_eq!(counts(1)["task_instances_success"], size("fan_width") + 2);
    assert_eq!(counts(2)["runs_success"], size("throughput_runs"));
    assert_eq!(
        counts(2)["task_instances_success"],
        size("throughput_runs") * size("throughput_width")
    );
    // Every process of the cluster is measured: two schedulers, the API server, the worker.
    assert!(median(&workloads[2], "peak_rss_mib") > 4.0);
    assert_w13_counts(&workloads[3], sizes);

    // Nothing is left behind on the server.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let databases = format!("updraft\\_bench\\_{harness_pid}\\_%");
    let leftover: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
            &[&databases],
        )
        .unwrap()
        .get(0);
    assert_eq!(leftover, 0, "the harness left its databases on the server");
}

/// A harness killed mid-run (here with SIGKILL, the worst case) leaves nothing running: its
/// updraft processes die with it. The database and the home it could not remove are reclaimed
/// by the next run of the harness.
#[test]
fn a_killed_harness_leaves_no_process_and_the_next_run_reclaims_its_leftovers() {
    let _harness = crate::one_harness_at_a_time();
    let Some(url) = reachable_postgres() else {
        return;
    };
    let updraft = updraft_binary();
    let bench = |workloads: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_updraft-bench"));
        command
            .args([
                "--quick",
                "--workloads",
                workloads,
                "--database",
                "postgres",
            ])
            .args(["--postgres-url", &url, "--updraft"])
            .arg(&updraft)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        command
    };
    // W3 keeps a cluster up and idle for a while.
    let mut harness = bench("w3").spawn().unwrap();
    let pid = harness.id();
    let home_prefix = format!("updraft-bench-{pid}-");
    let databases = format!("updraft\\_bench\\_{pid}\\_%");
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut count_databases = || -> i64 {
        admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
                &[&databases],
            )
            .unwrap()
            .get(0)
    };
    let cluster_up = eventually(Duration::from_secs(30), || {
        (count_databases() > 0 && !processes_in(&home_prefix).is_empty()).then_some(())
    });
    assert!(
        cluster_up.is_some(),
        "the harness never started its cluster"
    );

    harness.kill().unwrap();
    harness.wait().unwrap();
    let survivors = eventually(Duration::from_secs(10), || {
        processes_in(&home_prefix).is_empty().then_some(())
    });
    assert!(
        survivors.is_some(),
        "updraft processes outlived the harness: {:?}",
        processes_in(&home_prefix)
    );
    assert!(count_databases() > 0, "nothing was left to reclaim");
    assert!(homes(&home_prefix) > 0);

    let status = bench("w1").status().unwrap();
    assert!(status.success());
    assert_eq!(
        count_databases(),
        0,
        "the abandoned database is still there"
    );
    assert_eq!(homes(&home_prefix), 0, "the abandoned home is still there");
}

/// Pids of the processes whose command line names a path starting with `prefix` in the
/// temporary directory (the harness passes each process its home).
fn processes_in(prefix: &str) -> Vec<u32> {
    let needle = std::env::temp_dir().join(prefix);
    let needle = needle.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&*needle))
        })
        .collect()
}

/// How many directories in the temporary directory start with `prefix`.
fn homes(prefix: &str) -> usize {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

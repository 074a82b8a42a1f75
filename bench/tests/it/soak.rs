//! The soak in its CI form: `--quick --workloads soak` runs the cluster of 3 schedulers, 2 API
//! servers and 2 workers on PostgreSQL for a minute, a process SIGKILLed and restarted every
//! 10 s, with runs triggered every 2 s. Every run succeeds, no try is lost or runs twice, and
//! the long-lived processes' open files and the database connections do not grow. (Resident
//! memory is reported, not asserted: a minute of a debug build says little about it.)

use std::process::Command;

use serde_json::Value;

use super::postgres_cluster::reachable_postgres;
use super::quick::{median, updraft_binary};

/// Growth tolerated in CI, where a minute is short and a machine may be slow: a connection
/// opened between the two reads of a sample (connections to the database and those clients
/// hold open are left out of the open files, but read a moment after them). A leak over the
/// kills (one per process killed) goes well past it. The pools opening one more connection
/// under a burst shows in the database's count.
const FD_TOLERANCE: f64 = 2.0;
const CONNECTION_TOLERANCE: f64 = 3.0;

#[test]
fn the_quick_soak_loses_no_try_and_leaks_no_file_or_connection() {
    let _harness = crate::one_harness_at_a_time();
    let Some(url) = reachable_postgres() else {
        return;
    };
    let out_dir = tempfile::tempdir().unwrap();
    let json_path = out_dir.path().join("bench.json");
    let samples_path = out_dir.path().join("samples.csv");
    // No --database: the soak alone implies PostgreSQL.
    let out = Command::new(env!("CARGO_BIN_EXE_updraft-bench"))
        .args(["--quick", "--workloads", "soak", "--postgres-url", &url])
        .arg("--updraft")
        .arg(updraft_binary())
        .arg("--json")
        .arg(&json_path)
        .arg("--soak-samples")
        .arg(&samples_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the soak failed:\n{stderr}\n{stdout}");
    assert!(stdout.contains("SOAK soak"), "no table printed:\n{stdout}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["database"], "postgres");
    assert_eq!(report["cluster"]["schedulers"], 3);
    assert_eq!(report["cluster"]["api_servers"], 2);
    assert_eq!(report["cluster"]["workers"], 2);
    let soak = &report["workloads"][0];
    assert_eq!(soak["id"], "SOAK");
    assert!(soak.get("failures").is_none(), "{soak:#}");
    let figure = |key: &str| median(soak, key);

    // A minute with a kill every 10 s: a scheduler, an API server and a worker at least.
    assert!(figure("kills") >= 3.0, "{soak:#}");
    assert!(figure("runs_triggered") >= 10.0, "{soak:#}");
    assert!(
        figure("runs_succeeded") >= figure("runs_triggered"),
        "{soak:#}"
    );
    assert_eq!(figure("runs_not_succeeded"), 0.0);
    assert_eq!(figure("tries_lost"), 0.0);
    assert_eq!(figure("tries_duplicated"), 0.0);
    // Ten tasks per triggered run, each tried at least once.
    assert!(
        figure("tries") >= 10.0 * figure("runs_triggered"),
        "{soak:#}"
    );

    for process in ["scheduler", "api_server", "worker"] {
        assert!(figure(&format!("{process}_rss_mib")) > 1.0, "{soak:#}");
        let fds = figure(&format!("{process}_fds"));
        assert!(fds > 3.0, "{process} holds {fds} files: {soak:#}");
        let growth = figure(&format!("{process}_fd_growth"));
        assert!(
            growth <= FD_TOLERANCE,
            "{process}'s open files grew by {growth}:\n{soak:#}\n{}",
            std::fs::read_to_string(&samples_path).unwrap_or_default()
        );
    }
    assert!(figure("db_connections") > 0.0, "{soak:#}");
    let growth = figure("db_connection_growth");
    assert!(
        growth <= CONNECTION_TOLERANCE,
        "the database connections grew by {growth}:\n{soak:#}\n{}",
        std::fs::read_to_string(&samples_path).unwrap_or_default()
    );

    let samples = std::fs::read_to_string(&samples_path).unwrap();
    let mut rows = samples.lines();
    assert_eq!(
        rows.next(),
        Some(
            "at_s,scheduler_1_rss_kib,scheduler_1_fds,api_server_1_rss_kib,api_server_1_fds,\
             worker_1_rss_kib,worker_1_fds,db_connections"
        )
    );
    assert!(rows.count() >= 10, "too few samples:\n{samples}");
}

#[test]
fn the_soak_refuses_sqlite() {
    let _harness = crate::one_harness_at_a_time();
    let out = Command::new(env!("CARGO_BIN_EXE_updraft-bench"))
        .args(["--workloads", "soak", "--database", "sqlite", "--no-build"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the soak runs on a PostgreSQL cluster")
            && stderr.contains("--database postgres"),
        "{stderr}"
    );
}

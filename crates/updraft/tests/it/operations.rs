//! The commands an operator runs against a SQLite home: liveness probes (`jobs check`), the
//! live workers (`worker list`), pools, and a configuration listing that keeps secrets.

use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{eventually, Home, Role};

/// The worker token of the API server and worker these tests start.
const TOKEN: &str = "operations-test-token";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `jobs check --job-type KIND` with `extra` arguments.
fn check(home: &Home, kind: &str, extra: &[&str]) -> Output {
    let mut args = vec!["jobs", "check", "--job-type", kind];
    args.extend(extra);
    home.run(&args)
}

/// Waits until `jobs check --job-type KIND` passes; returns its output.
fn wait_until_alive(home: &Home, kind: &str, log: impl Fn() -> String) -> Output {
    eventually(Duration::from_secs(30), || {
        let out = check(home, kind, &[]);
        out.status.success().then_some(out)
    })
    .unwrap_or_else(|| panic!("no live {kind} after 30 s\n{}", log()))
}

fn assert_none_alive(home: &Home, kind: &str) {
    let out = check(home, kind, &[]);
    assert!(!out.status.success(), "{kind}: {}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("No alive {kind} jobs found")),
        "{kind}: {}",
        stderr(&out)
    );
}

#[test]
fn jobs_check_passes_only_while_a_standalone_runs() {
    let home = Home::new();
    assert_none_alive(&home, "scheduler");

    let mut standalone = home.standalone();
    let out = wait_until_alive(&home, "scheduler", || {
        std::fs::read_to_string(home.path().join("standalone.log")).unwrap_or_default()
    });
    assert!(
        stdout(&out).contains("Found 1 alive scheduler job(s)."),
        "{}",
        stdout(&out)
    );
    // Narrower probes: another host, or more schedulers than there are.
    let elsewhere = check(&home, "scheduler", &["--hostname", "no-such-host.invalid"]);
    assert!(!elsewhere.status.success());
    let two = check(&home, "scheduler", &["--limit", "2"]);
    assert!(!two.status.success());
    assert!(stderr(&two).contains("found 1, need 2"), "{}", stderr(&two));
    // A standalone is no worker and no API server.
    assert_none_alive(&home, "worker");
    assert_none_alive(&home, "api-server");

    assert!(standalone.sigterm().success());
    // A clean shutdown forgets the heartbeat at once.
    assert_none_alive(&home, "scheduler");
}

#[test]
fn jobs_check_passes_while_a_scheduler_runs() {
    let home = Home::new();
    let mut scheduler = home.role(&["scheduler"], &[]);
    wait_until_alive(&home, "scheduler", || scheduler.log());
    assert!(scheduler.sigterm().success(), "{}", scheduler.log());
    assert_none_alive(&home, "scheduler");
}

/// What the roles named `names` logged in `home`, for failure messages.
fn role_logs(home: &Home, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| {
            let log = std::fs::read_to_string(home.path().join(format!("{name}.log")));
            format!("---- {name}\n{}", log.unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The live workers, as `worker list --output json` shows them.
fn workers(home: &Home) -> Vec<Value> {
    home.json(&["worker", "list"])
        .as_array()
        .expect("worker list prints an array")
        .clone()
}

#[test]
fn worker_list_shows_a_remote_worker_and_what_it_runs() {
    let home = Home::new();
    let release = home.path().join("release");
    home.write_dag(
        "hold.yaml",
        &format!(
            "tasks:\n  - task_id: hold\n    bash_command: while [ ! -e {} ]; do sleep 0.1; done; echo released\n",
            release.display()
        ),
    );
    let [_scheduler, _api, mut worker] = remote_cluster(&home, &["--queues", "default,extra"]);
    let logs = || role_logs(&home, &["scheduler", "api-server", "worker"]);

    let listed = eventually(Duration::from_secs(30), || {
        let list = workers(&home);
        (!list.is_empty()).then_some(list)
    })
    .unwrap_or_else(|| panic!("the worker never showed up in `worker list`\n{}", logs()));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let listed = &listed[0];
    assert_eq!(listed["state"], "running", "{listed:#}");
    assert_eq!(listed["queues"], serde_json::json!(["default", "extra"]));
    assert_eq!(listed["running"], serde_json::json!([]));
    let worker_id = listed["worker_id"]
        .as_str()
        .expect("a worker id")
        .to_string();
    wait_until_alive(&home, "worker", logs);
    wait_until_alive(&home, "api-server", logs);
    let table = home.ok(&["worker", "list"]);
    assert!(table.contains(&worker_id), "{table}");

    let run_id = home.trigger("hold");
    let expected = serde_json::json!([format!("hold/{run_id}/hold#1")]);
    eventually(Duration::from_secs(30), || {
        let list = workers(&home);
        (list.len() == 1 && list[0]["running"] == expected).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the running task never showed in `worker list`: {:#?}\n{}",
            workers(&home),
            logs()
        )
    });
    std::fs::write(&release, "").unwrap();
    let states = home.wait_for_run("hold", &run_id, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}\n{}", logs());
    let log = home.ok(&["tasks", "logs", "hold", &run_id, "hold"]);
    assert!(log.contains("released"), "{log}");

    // A worker that stopped is no longer listed.
    assert!(worker.sigterm().success(), "{}", logs());
    assert_eq!(workers(&home), Vec::<Value>::new());
    assert_none_alive(&home, "worker");
}

/// On a SQLite file there is no change feed: the API server wakes the scheduler on the file
/// when a remote worker's try ends, so a chain moves on at once, not at the scheduler's
/// half-minute reading of what it keeps.
#[test]
fn a_remote_workers_finishes_wake_the_scheduler_on_the_same_sqlite_file() {
    let home = Home::new();
    home.write_dag(
        "chain.yaml",
        "tasks:\n  - task_id: a\n    bash_command: \"true\"\n\
         \x20 - task_id: b\n    bash_command: \"true\"\n    dependencies: [a]\n\
         \x20 - task_id: c\n    bash_command: \"true\"\n    dependencies: [b]\n",
    );
    let _cluster = remote_cluster(&home, &[]);
    let logs = || role_logs(&home, &["scheduler", "api-server", "worker"]);
    wait_until_alive(&home, "worker", logs);
    eventually(Duration::from_secs(30), || {
        (home.json(&["dags", "list"]).as_array()?.len() == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("the DAG was never listed\n{}", logs()));
    let run_id = home.trigger("chain");
    let states = home.wait_for_run("chain", &run_id, Duration::from_secs(15));
    assert_eq!(states["state"], "success", "{states:#}\n{}", logs());
}

#[test]
fn pools_round_trip_and_refuse_bad_input() {
    let home = Home::new();
    let pools = |home: &Home| -> Vec<(String, u64, String)> {
        home.json(&["pools", "list"])
            .as_array()
            .expect("pools list prints an array")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().expect("a name").to_string(),
                    p["slots"].as_u64().expect("slots"),
                    p["description"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let default = ("default_pool".to_string(), 128, "Default pool".to_string());
    assert_eq!(pools(&home), vec![default.clone()]);

    let out = home.ok(&["pools", "set", "gpu", "2", "the GPUs"]);
    assert!(out.contains("Pool gpu has 2 slots."), "{out}");
    let listed = pools(&home);
    assert!(
        listed.contains(&("gpu".into(), 2, "the GPUs".into())),
        "{listed:?}"
    );
    home.ok(&["pools", "set", "gpu", "5"]);
    let listed = pools(&home);
    let gpu: Vec<_> = listed.iter().filter(|p| p.0 == "gpu").collect();
    assert_eq!(gpu, vec![&("gpu".to_string(), 5, String::new())]);
    let table = home.ok(&["pools", "list"]);
    assert!(table.contains("gpu") && table.contains('5'), "{table}");

    let out = home.ok(&["pools", "delete", "gpu"]);
    assert!(out.contains("Pool gpu deleted."), "{out}");
    assert!(!pools(&home).iter().any(|p| p.0 == "gpu"));

    // Each refusal is a one-line error, exit non-zero, and changes nothing.
    let before = pools(&home);
    for (args, message) in [
        (vec!["pools", "delete", "gpu"], "pool gpu not found"),
        (vec!["pools", "delete", "default_pool"], "cannot be deleted"),
        (vec!["pools", "set", " ", "3"], "a pool needs a name"),
    ] {
        let out = home.run(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    for slots in ["-1", "many", "1.5", "99999999999"] {
        let out = home.run(&["pools", "set", "gpu", slots]);
        assert!(!out.status.success(), "slots {slots} accepted");
        let err = stderr(&out);
        assert!(
            err.contains(slots) && err.contains("<SLOTS>"),
            "slots {slots}: {err}"
        );
    }
    assert_eq!(pools(&home), before);
    assert_eq!(before, vec![default]);
}

#[test]
fn config_list_does_not_show_secrets() {
    let home = Home::new();
    let secret = "s3cret-worker-token";
    std::fs::write(
        home.path().join("updraft.toml"),
        format!("[api]\nworker_token = \"{secret}\"\n"),
    )
    .unwrap();
    for args in [
        vec!["config", "list"],
        vec!["config", "list", "--output", "json"],
    ] {
        let out = home.run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.contains(secret), "{args:?} shows the token:\n{text}");
        assert!(text.contains("***"), "{args:?}:\n{text}");
    }
    // From the environment, and with a database password.
    let out = home
        .command()
        .args(["config", "list", "--output", "json"])
        .env("UPDRAFT_API__WORKER_TOKEN", "env-token-value")
        .env(
            "UPDRAFT_DATABASE__URL",
            "postgres://u:db-password@db/updraft",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("env-token-value"), "{text}");
    assert!(!text.contains("db-password"), "{text}");
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["api"]["worker_token"], "***");
    assert_eq!(config["database"]["url"], "postgres://u:***@db/updraft");
}

/// A scheduler, an API server and a remote worker (with `worker_args`) on `home`'s database.
fn remote_cluster(home: &Home, worker_args: &[&str]) -> [Role; 3] {
    let token = [("UPDRAFT_API__WORKER_TOKEN", TOKEN)];
    let scheduler = home.role(&["scheduler"], &[]);
    let api = home.role(
        &["api-server", "--host", "127.0.0.1", "--port", "0"],
        &token,
    );
    let url = api.url.clone().expect("an API address");
    let mut args = vec!["worker", "--server", &url];
    args.extend_from_slice(worker_args);
    let worker = home.role(&args, &token);
    [scheduler, api, worker]
}

//! Python tasks started through the SDK's fork server (`worker.python_fork_server`, on by
//! default): values pass as through a started interpreter, the child sees the environment a
//! started one would, a timeout kills its whole group, a killed server loses no task, and a
//! killed worker takes the server and its tasks along.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::fixture::{eventually, process_alive, state_of, unsafe_kill, Home};
use crate::python_dags::python_ready;

/// Marks the task logs of tries the fork server started.
const FORKED: &str = "forked by the Python fork server";

/// The fork servers among `parent`'s children.
fn fork_servers_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent)
                && String::from_utf8_lossy(&cmdline).contains("updraft._forkserver")
                && process_alive(*pid)
        })
        .collect()
}

/// The XCom `return_value` of a task of a run.
pub fn return_value(home: &Home, run_id: &str, task_id: &str) -> Value {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let value: String = db
        .query_row(
            "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id \
             WHERE r.run_id = ?1 AND x.task_id = ?2 AND x.key = 'return_value'",
            [run_id, task_id],
            |row| row.get(0),
        )
        .unwrap();
    serde_json::from_str(&value).unwrap()
}

fn read_pid(path: &Path) -> u32 {
    eventually(Duration::from_secs(30), || {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    })
    .unwrap_or_else(|| panic!("{} was never written", path.display()))
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    eventually(limit, || (!process_alive(pid)).then_some(())).is_some()
}

const VALUES: &str = r#"
from datetime import datetime

from airflow.decorators import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def values():
    @task
    def first():
        print("first ran")
        return {"n": 20}

    @task
    def second(got):
        return got["n"] + 1

    second(first())


values()
"#;

#[test]
fn a_forked_task_passes_its_value_on() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag("values.py", VALUES);
    let doc = home.json(&["dags", "test", "values"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    let run_id = doc["run_id"].as_str().unwrap();
    for task in ["first", "second"] {
        let log = home.ok(&["tasks", "logs", "values", run_id, task]);
        assert!(log.contains(FORKED), "{task}: {log}");
    }
    let log = home.ok(&["tasks", "logs", "values", run_id, "first"]);
    assert!(log.contains("first ran"), "{log}");
    assert_eq!(return_value(&home, run_id, "second"), Value::from(21));
}

const ENVIRONMENT: &str = r#"
import os
from datetime import datetime

from airflow.decorators import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def environment():
    @task
    def show():
        print("cwd " + os.getcwd())
        return dict(os.environ)

    show()


environment()
"#;

/// The environment the `show` task returned, through the fork server or not.
fn environment_of(home: &Home, fork_server: bool) -> Map<String, Value> {
    let out = home
        .command()
        .args(["dags", "test", "environment", "--output", "json"])
        .env(
            "UPDRAFT_WORKER__PYTHON_FORK_SERVER",
            fork_server.to_string(),
        )
        .env("UPDRAFT_TEST_WORKER_VARIABLE", "from the worker")
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["state"], "success", "{doc:#}");
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "environment", run_id, "show"]);
    assert_eq!(log.contains(FORKED), fork_server, "{log}");
    match return_value(home, run_id, "show") {
        Value::Object(env) => env,
        other => panic!("not an environment: {other}"),
    }
}

#[test]
fn a_forked_task_sees_the_environment_a_started_one_does() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag("environment.py", ENVIRONMENT);
    let forked = environment_of(&home, true);
    let started = environment_of(&home, false);
    // Per try: the run, the claim, the try's socket and the directory of its DAG source;
    // and the switch itself, which the worker's environment passes on.
    let per_try = |key: &str| {
        key.starts_with("AIRFLOW_CTX_")
            || [
                "UPDRAFT_CLAIM_ID",
                "UPDRAFT_SUPERVISOR",
                "PYTHONPATH",
                "UPDRAFT_RUN_ID",
                "UPDRAFT_LOGICAL_DATE",
                "UPDRAFT_WORKER__PYTHON_FORK_SERVER",
            ]
            .contains(&key)
    };
    let stable = |env: &Map<String, Value>| -> Map<String, Value> {
        env.iter()
            .filter(|(key, _)| !per_try(key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(stable(&forked), stable(&started));
    assert_eq!(forked["UPDRAFT_TEST_WORKER_VARIABLE"], "from the worker");
    for key in ["UPDRAFT_CLAIM_ID", "PYTHONPATH"] {
        assert!(forked.contains_key(key), "{key} missing: {forked:#?}");
    }
    // The SDK first, then the try's own copy of the DAG file, then the DAG folder.
    let entries = |env: &Map<String, Value>| -> Vec<String> {
        env["PYTHONPATH"]
            .as_str()
            .unwrap()
            .split(':')
            .map(str::to_owned)
            .collect()
    };
    let (forked_path, started_path) = (entries(&forked), entries(&started));
    assert_eq!(forked_path.len(), started_path.len(), "{forked_path:?}");
    assert_eq!(forked_path[0], started_path[0]);
    assert_eq!(forked_path[2..], started_path[2..]);
}

fn stubborn_dag(dir: &Path) -> String {
    format!(
        r#"
import os
import subprocess
import time
from datetime import datetime, timedelta

from airflow.decorators import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def stubborn():
    @task(execution_timeout=timedelta(seconds=3), retries=0)
    def linger():
        grandchild = subprocess.Popen(["sleep", "300"])
        with open("{dir}/grandchild.pid.tmp", "w") as f:
            f.write(str(grandchild.pid))
        os.rename("{dir}/grandchild.pid.tmp", "{dir}/grandchild.pid")
        with open("{dir}/leader.pid.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename("{dir}/leader.pid.tmp", "{dir}/leader.pid")
        time.sleep(300)

    linger()


stubborn()
"#,
        dir = dir.display()
    )
}

#[test]
fn a_timeout_kills_the_forked_task_and_what_it_started() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    let pids = tempfile::tempdir().unwrap();
    home.write_dag("stubborn.py", &stubborn_dag(pids.path()));
    let out = home.run(&["dags", "test", "stubborn", "--output", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&doc, "linger"), "failed", "{doc:#}");
    let leader = read_pid(&pids.path().join("leader.pid"));
    let grandchild = read_pid(&pids.path().join("grandchild.pid"));
    let survivors: Vec<u32> = [leader, grandchild]
        .into_iter()
        .filter(|pid| !gone_within(*pid, Duration::from_secs(10)))
        .collect();
    for pid in &survivors {
        unsafe_kill(*pid, libc::SIGKILL);
    }
    assert!(survivors.is_empty(), "{survivors:?} outlived the timeout");
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "stubborn", run_id, "linger"]);
    assert!(log.contains(FORKED), "{log}");
    assert!(log.contains("timed out after 3s"), "{log}");
}

#[test]
fn a_killed_fork_server_loses_no_task() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag("values.py", VALUES);
    let standalone = home.standalone();
    let worker = standalone.child.id();
    eventually(Duration::from_secs(30), || {
        let dags = home.json(&["dags", "list"]);
        (dags.as_array()?.len() == 1).then_some(())
    })
    .expect("the DAG was never listed");
    let run = home.trigger("values");
    let doc = home.wait_for_run("values", &run, Duration::from_secs(60));
    assert_eq!(doc["state"], "success", "{doc:#}");
    let servers = fork_servers_of(worker);
    assert_eq!(servers.len(), 1, "{servers:?}");
    let killed = servers[0];
    unsafe_kill(killed, libc::SIGKILL);
    assert!(gone_within(killed, Duration::from_secs(10)));

    let run = home.trigger("values");
    let doc = home.wait_for_run("values", &run, Duration::from_secs(60));
    assert_eq!(doc["state"], "success", "{doc:#}");
    assert_eq!(state_of(&doc, "second"), "success", "{doc:#}");
    assert_eq!(return_value(&home, &run, "second"), Value::from(21));
    // A new server took over.
    let servers = fork_servers_of(worker);
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_ne!(servers[0], killed);
}

fn sleeper_dag(dir: &Path) -> String {
    format!(
        r#"
import os
import subprocess
import time
from datetime import datetime

from airflow.decorators import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def sleeper():
    @task
    def wait():
        grandchild = subprocess.Popen(["sleep", "300"])
        with open("{dir}/pids.tmp", "w") as f:
            f.write(str(os.getpid()) + " " + str(grandchild.pid))
        os.rename("{dir}/pids.tmp", "{dir}/pids")
        time.sleep(300)

    wait()


sleeper()
"#,
        dir = dir.display()
    )
}

#[test]
fn a_killed_worker_takes_the_fork_server_and_its_tasks_along() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    let pids = tempfile::tempdir().unwrap();
    home.write_dag("sleeper.py", &sleeper_dag(pids.path()));
    let mut standalone = home.standalone();
    let worker = standalone.child.id();
    eventually(Duration::from_secs(30), || {
        let dags = home.json(&["dags", "list"]);
        (dags.as_array()?.len() == 1).then_some(())
    })
    .expect("the DAG was never listed");
    home.trigger("sleeper");
    let path = pids.path().join("pids");
    let text = eventually(Duration::from_secs(60), || {
        std::fs::read_to_string(&path).ok()
    })
    .expect("the task never started");
    let task_pids: Vec<u32> = text
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect();
    let servers = fork_servers_of(worker);
    assert_eq!(servers.len(), 1, "{servers:?}");
    standalone.sigkill();
    let all: Vec<u32> = servers.iter().chain(&task_pids).copied().collect();
    let survivors: Vec<u32> = all
        .iter()
        .copied()
        .filter(|pid| !gone_within(*pid, Duration::from_secs(10)))
        .collect();
    for pid in &survivors {
        unsafe_kill(*pid, libc::SIGKILL);
    }
    assert!(
        survivors.is_empty(),
        "{survivors:?} of {all:?} outlived their worker"
    );
}

/// Every import of the file notes the process it ran in, and what its tasks read of it.
const PRELOADED: &str = r#"
import os
from datetime import datetime

from airflow.decorators import dag, task
from airflow.models import Variable

with open(os.environ["IMPORTS_FILE"], "a") as imports:
    imports.write(f"{os.getpid()}\n")

READS_VARIABLE = os.environ.get("READS_VARIABLE") == "1"
if READS_VARIABLE:
    WHERE = Variable.get("where", default_var="nowhere")


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def preloaded():
    @task
    def one(n):
        return {"n": n, "pid": os.getpid(), "where": WHERE if READS_VARIABLE else None}

    one.expand(n=[1, 2, 3, 4])


preloaded()
"#;

/// The pids the DAG file was imported in, one line each.
fn imports(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The fork server has a DAG version's file executed once, by a preloader, and forks the
/// version's tries from it; a file that reads a variable while it is imported gets the
/// variable's value in each try, which executes the file as before.
#[test]
fn the_tries_of_a_dag_version_are_forked_from_one_import_of_its_file() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    let imports_file = home.path().join("imports");
    home.write_dag("preloaded.py", PRELOADED);
    home.ok(&["variables", "set", "where", "the store"]);
    let run = |reads_variable: &str| {
        std::fs::remove_file(&imports_file).ok();
        let out = home
            .command()
            .args(["dags", "test", "preloaded", "--output", "json"])
            .env("IMPORTS_FILE", &imports_file)
            .env("READS_VARIABLE", reads_variable)
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(doc["state"], "success", "{doc:#}");
        doc["run_id"].as_str().unwrap().to_owned()
    };

    // What each try returned: the process it ran in, and the variable's value it saw.
    let tries = |run_id: &str| -> Vec<(String, String)> {
        let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
        let mut query = db
            .prepare(
                "SELECT x.value FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id \
                 WHERE r.run_id = ?1 AND x.task_id = 'one' AND x.key = 'return_value' \
                 ORDER BY x.map_index",
            )
            .unwrap();
        let values = query
            .query_map([run_id], |row| row.get::<_, String>(0))
            .unwrap()
            .map(|value| {
                let value: Value = serde_json::from_str(&value.unwrap()).unwrap();
                (
                    value["pid"].to_string(),
                    value["where"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        values
    };

    let preloaded = tries(&run("0"));
    assert_eq!(preloaded.len(), 4);
    let loaded = imports(&imports_file);
    for (pid, _) in &preloaded {
        assert!(
            !loaded.contains(pid),
            "try {pid} imported the file: {loaded:?}"
        );
    }
    // The preloader's import (and the parse's, when `dags test` parsed the file).
    assert!(!loaded.is_empty() && loaded.len() <= 2, "{loaded:?}");

    let each = tries(&run("1"));
    assert_eq!(each.len(), 4);
    let loaded = imports(&imports_file);
    for (pid, place) in &each {
        assert!(
            loaded.contains(pid),
            "try {pid} did not import the file: {loaded:?}"
        );
        assert_eq!(place, "the store");
    }
}

//! A worker claims only what it can start promptly (`worker.max_starting`): tries it could
//! not start yet stay queued in the store, for whichever worker gets to them first.

use std::path::Path;
use std::time::Duration;

use crate::fixture::{eventually, state_of, Home};
use crate::python_dags::python_ready;

/// Three parallel tasks of a DAG file whose import, once `gate` exists, waits for `open`: the
/// DAG processor parses it freely, and the tries' preloader is held until the test opens it.
fn gated_dag(dir: &Path) -> String {
    format!(
        r#"
import os
import time
from datetime import datetime

from airflow.decorators import dag, task

if os.path.exists("{dir}/gate"):
    while not os.path.exists("{dir}/open"):
        time.sleep(0.02)


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def gated():
    @task
    def one():
        return 1

    @task
    def two():
        return 2

    @task
    def three():
        return 3

    one()
    two()
    three()


gated()
"#,
        dir = dir.display()
    )
}

/// The number of the run's task instances in each of `states`.
fn counts(home: &Home, states: &[&str]) -> Vec<i64> {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    states
        .iter()
        .map(|state| {
            db.query_row(
                "SELECT COUNT(*) FROM task_instance WHERE dag_id = 'gated' AND state = ?1",
                [state],
                |row| row.get(0),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn tries_a_worker_cannot_start_yet_stay_queued() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    let gate = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("updraft.toml"),
        "[worker]\nmax_starting = 1\n",
    )
    .unwrap();
    home.write_dag("gated.py", &gated_dag(gate.path()));
    let _standalone = home.standalone();
    eventually(Duration::from_secs(30), || {
        let dags = home.json(&["dags", "list"]);
        (dags.as_array()?.len() == 1).then_some(())
    })
    .expect("the DAG was never listed");
    std::fs::write(gate.path().join("gate"), "").unwrap();
    let run = home.trigger("gated");

    // The first claim's try waits for its preloader, holding the worker's one start slot.
    let [running, queued] = eventually(Duration::from_secs(30), || {
        let found = counts(&home, &["running", "queued"]);
        (found[0] > 0).then_some([found[0], found[1]])
    })
    .expect("no task was ever claimed");
    assert_eq!((running, queued), (1, 2), "claimed and queued tries");

    std::fs::write(gate.path().join("open"), "").unwrap();
    let doc = home.wait_for_run("gated", &run, Duration::from_secs(60));
    assert_eq!(doc["state"], "success", "{doc:#}");
    for task in ["one", "two", "three"] {
        assert_eq!(state_of(&doc, task), "success", "{doc:#}");
    }
}

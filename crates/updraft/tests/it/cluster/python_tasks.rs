//! Python tasks on a remote worker: it reads the DAG file at the run's version, XComs and
//! variables through an API server, and its pushed XComs, variable and skipped branch reach
//! the database.

use std::time::Duration;

use super::{eventually, state_of, Cluster};

const DAG: &str = r#"
from datetime import datetime

from airflow.decorators import dag, task
from airflow.models import Variable


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def remote_py():
    @task
    def produce():
        Variable.set("remote_seen", "yes")
        return 21

    @task.branch
    def choose(n):
        return "double" if n == 21 else "other"

    @task
    def double(n):
        return n * 2

    @task
    def other():
        return "never"

    n = produce()
    chosen = choose(n)
    chosen >> [double(n), other()]


remote_py()
"#;

#[test]
fn a_remote_worker_runs_python_tasks_through_the_api() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    if !crate::python_dags::python_ready() {
        return;
    }
    cluster.write_dag("remote_py.py", DAG);
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 2);
    cluster.wait_for_scheduler();
    cluster.trigger("remote_py", "p_1");
    let states = eventually(Duration::from_secs(90), || {
        let states = cluster.states("remote_py", "p_1");
        matches!(states["state"].as_str(), Some("success" | "failed")).then_some(states)
    })
    .unwrap_or_else(|| {
        panic!(
            "the run did not finish: {:#}\n{}",
            cluster.states("remote_py", "p_1"),
            cluster.logs()
        )
    });
    assert_eq!(states["state"], "success", "{states:#}\n{}", cluster.logs());
    assert_eq!(state_of(&states, "produce"), "success");
    assert_eq!(state_of(&states, "choose"), "success");
    assert_eq!(state_of(&states, "double"), "success");
    assert_eq!(state_of(&states, "other"), "skipped");
    let seen = cluster.ok(&["variables", "get", "remote_seen"]);
    assert_eq!(seen.trim(), "yes");
}

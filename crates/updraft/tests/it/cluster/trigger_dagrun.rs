//! A trigger task on a remote worker: it creates the child run and reads its state through
//! an API server's task-execution API (the worker has no database), and the scheduler runs
//! the child.

use std::time::Duration;

use super::{eventually, state_of, Cluster};

const CHILD: &str = r#"
dag_id: remote_child
tasks:
  - task_id: check
    retries: 0
    bash_command: '[ "{{ dag_run.conf.token }}" = "abc-{{ dag_run.conf.n }}" ]'
"#;

const PARENT: &str = r#"
dag_id: remote_parent
tasks:
  - task_id: go
    operator: trigger_dagrun
    trigger_dagrun:
      trigger_dag_id: remote_child
      trigger_run_id: "child_of_{{ run_id }}"
      conf: {token: "abc-7", n: 7}
      wait_for_completion: true
      poke_interval: 0.3
  - {task_id: after, bash_command: "true", dependencies: [go]}
"#;

#[test]
fn a_remote_worker_triggers_a_run_and_waits_for_it_through_the_api() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.write_dag("remote_child.yaml", CHILD);
    cluster.write_dag("remote_parent.yaml", PARENT);
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 2);
    cluster.wait_for_scheduler();
    cluster.trigger("remote_parent", "p_1");
    let states = eventually(Duration::from_secs(90), || {
        let states = cluster.states("remote_parent", "p_1");
        matches!(states["state"].as_str(), Some("success" | "failed")).then_some(states)
    })
    .unwrap_or_else(|| {
        panic!(
            "the parent did not finish: {:#}\n{}",
            cluster.states("remote_parent", "p_1"),
            cluster.logs()
        )
    });
    assert_eq!(states["state"], "success", "{states:#}\n{}", cluster.logs());
    assert_eq!(state_of(&states, "after"), "success");
    let child = cluster.states("remote_child", "child_of_p_1");
    assert_eq!(child["state"], "success", "the conf reached it: {child:#}");
    assert_eq!(state_of(&child, "check"), "success");
}

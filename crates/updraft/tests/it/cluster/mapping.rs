//! Dynamic task mapping on a cluster: two schedulers own the runs of a DAG whose mapped task
//! expands over an upstream result; each mapped task is expanded once, its instances run on a
//! remote worker, and the reduce downstream sees every instance's result.

use std::time::Duration;

use super::Cluster;

const DAG: &str = r#"
tasks:
  - task_id: list_items
    bash_command: |
      echo '[{"ITEM": "a"}, {"ITEM": "b"}, {"ITEM": "c"}, {"ITEM": "d"}, {"ITEM": "e"}]'
  - task_id: each
    bash_command: echo "got $ITEM"
    expand:
      env: {xcom: list_items}
  - task_id: total
    bash_command: echo "all {{ ti.xcom_pull(task_ids='each') | join(',') }}"
    dependencies: [each]
"#;

#[test]
fn two_schedulers_expand_each_mapped_task_once() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.write_dag("mapped.yaml", DAG);
    let _schedulers = [cluster.scheduler(), cluster.scheduler()];
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 4);
    cluster.wait_for_scheduler();
    let run_ids: Vec<String> = (0..4).map(|i| format!("m_{i}")).collect();
    for run_id in &run_ids {
        cluster.trigger("mapped", run_id);
    }
    let states = cluster.wait_for_runs("mapped", &run_ids, Duration::from_secs(90));
    assert!(
        states.values().all(|s| s == "success"),
        "{states:?}\n{}",
        cluster.logs()
    );
    for run_id in &run_ids {
        let doc = cluster.states("mapped", run_id);
        let mut each: Vec<(i64, String)> = doc["task_instances"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ti| ti["task_id"] == "each")
            .map(|ti| {
                (
                    ti["map_index"].as_i64().unwrap(),
                    ti["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        each.sort();
        let expected: Vec<(i64, String)> = (0..5).map(|i| (i, "success".to_string())).collect();
        assert_eq!(each, expected, "run {run_id}: {doc:#}");
        let log = cluster.ok(&["tasks", "logs", "mapped", run_id, "total"]);
        assert!(
            log.contains("all got a,got b,got c,got d,got e"),
            "run {run_id}: {log}"
        );
    }
}

/// A mapped task group on PostgreSQL with a remote worker: per-index dependencies, the
/// same-index XComs read through the API, and the reduce after the group.
#[test]
fn a_mapped_task_group_runs_per_index_on_postgres() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    if !crate::python_dags::python_ready() {
        return;
    }
    cluster.write_dag("mapped_group.py", crate::mapped_groups::GROUP_PY);
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let _worker = cluster.worker(&[&api], "default", 3);
    cluster.wait_for_scheduler();
    let run_ids = ["g_1".to_string()];
    cluster.trigger("mapped_group", &run_ids[0]);
    let states = cluster.wait_for_runs("mapped_group", &run_ids, Duration::from_secs(120));
    assert!(
        states.values().all(|s| s == "failed"),
        "{states:?}\n{}",
        cluster.logs()
    );
    let doc = cluster.states("mapped_group", "g_1");
    crate::mapped_groups::check_group_run(&doc, |task, index| {
        let mut args = vec!["tasks", "logs", "mapped_group", "g_1", task];
        let index = index.map(|i| i.to_string());
        if let Some(index) = &index {
            args.extend(["--map-index", index]);
        }
        cluster.ok(&args)
    });
}

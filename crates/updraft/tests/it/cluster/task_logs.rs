//! What a remote worker logs reaches the database, where `tasks logs` reads it from any
//! machine: here the worker keeps its files in a folder of its own, so the log shown can only
//! come from the database.

use std::time::Duration;

use super::Cluster;

#[test]
fn why_a_task_could_not_start_is_in_its_log_on_every_machine() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    cluster.write_dag(
        "typo.yaml",
        "tasks:\n  - task_id: greet\n    retries: 0\n    bash_command: echo {{ no_such_name }}\n",
    );
    let _scheduler = cluster.scheduler();
    let api = cluster.api_server();
    let worker_logs = cluster.path("worker-logs");
    let _worker = cluster.worker_with_env(
        &[&api],
        "default",
        2,
        &[(
            "UPDRAFT_LOGGING__BASE_LOG_FOLDER",
            &worker_logs.to_string_lossy(),
        )],
    );
    cluster.wait_for_scheduler();
    cluster.trigger("typo", "t_1");
    let runs = cluster.wait_for_runs("typo", &["t_1".into()], Duration::from_secs(30));
    assert_eq!(runs["t_1"], "failed");

    let log = cluster.ok(&["tasks", "logs", "typo", "t_1", "greet"]);
    assert!(
        log.contains("cannot render bash_command") && log.contains("no_such_name"),
        "the reason is not in the stored log: {log}"
    );
    assert!(worker_logs.is_dir(), "the worker wrote its log elsewhere");
}

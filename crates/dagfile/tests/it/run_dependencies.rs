//! The keys of runs that depend on other runs: `dagrun_timeout`,
//! `max_consecutive_failed_dag_runs`, `depends_on_past` and its companions, the task limits.

use std::time::Duration;

use updraft_model::Dag;

use crate::parse::{check_err, check_ok};

const MINIMAL: &str = "tasks:\n  - task_id: a\n    bash_command: echo a\n";

#[test]
fn runs_that_depend_on_other_runs() {
    let dag = check_ok(
        "dagrun_timeout: 1h30m\n\
         max_consecutive_failed_dag_runs: 3\n\
         default_args: {depends_on_past: true, max_active_tis_per_dag: 2}\n\
         tasks:\n\
         \x20 - {task_id: a, bash_command: x}\n\
         \x20 - {task_id: b, bash_command: x, depends_on_past: false, max_active_tis_per_dag: null}\n\
         \x20 - {task_id: c, bash_command: x, wait_for_downstream: true,\n\
         \x20    ignore_first_depends_on_past: false, max_active_tis_per_dagrun: 1}\n",
    );
    assert_eq!(dag.dagrun_timeout, Some(Duration::from_secs(5400)));
    assert_eq!(dag.max_consecutive_failed_dag_runs, 3);
    let (a, b, c) = (&dag.tasks[0], &dag.tasks[1], &dag.tasks[2]);
    assert!(a.past.depends_on_past && a.past.applies());
    assert_eq!(a.max_active_tis_per_dag, Some(2));
    assert!(!b.past.applies());
    assert_eq!(b.max_active_tis_per_dag, None);
    assert!(c.past.wait_for_downstream && !c.past.ignore_first_depends_on_past);
    assert_eq!(c.max_active_tis_per_dagrun, Some(1));

    let plain = check_ok(MINIMAL);
    assert_eq!(plain.dagrun_timeout, None);
    assert_eq!(plain.max_consecutive_failed_dag_runs, 0);
    assert!(!plain.tasks[0].past.applies() && plain.tasks[0].past.ignore_first_depends_on_past);
    // As in Airflow, a zero timeout is none.
    assert_eq!(
        check_ok(&format!("dagrun_timeout: 0\n{MINIMAL}")).dagrun_timeout,
        None
    );

    check_err(
        &format!("dagrun_timeout: soon\n{MINIMAL}"),
        &["`dagrun_timeout`"],
    );
    check_err(
        &format!("max_consecutive_failed_dag_runs: -1\n{MINIMAL}"),
        &[
            "max_consecutive_failed_dag_runs",
            "a whole number of at least 0",
        ],
    );
    check_err(
        "tasks:\n  - {task_id: a, bash_command: x, max_active_tis_per_dag: 0}\n",
        &["max_active_tis_per_dag", "a whole number of at least 1"],
    );
    check_err(
        "tasks:\n  - {task_id: a, bash_command: x, depends_on_past: sometimes}\n",
        &["depends_on_past", "true or false"],
    );
}

#[test]
fn a_definition_stored_before_run_dependencies_reads_with_their_defaults() {
    let mut stored = serde_json::to_value(check_ok(MINIMAL)).unwrap();
    let task = stored["tasks"][0].as_object_mut().unwrap();
    assert!(
        !task.contains_key("past"),
        "neutral settings are not stored"
    );
    let dag: Dag = serde_json::from_value(stored).unwrap();
    assert_eq!(dag, check_ok(MINIMAL));
}

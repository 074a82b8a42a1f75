//! `identity_env`: the names and values of the variables that identify a task process.

use updraft_template::identity_env;

use crate::fixture::context;

#[test]
fn names_and_values() {
    let env = identity_env(&context());
    let expected = [
        ("UPDRAFT_DAG_ID", "etl"),
        ("UPDRAFT_RUN_ID", "scheduled__2026-01-01T00:00:00+00:00"),
        ("UPDRAFT_TASK_ID", "load"),
        ("UPDRAFT_TRY_NUMBER", "2"),
        ("UPDRAFT_LOGICAL_DATE", "2026-01-01T00:00:00+00:00"),
        ("AIRFLOW_CTX_DAG_ID", "etl"),
        ("AIRFLOW_CTX_TASK_ID", "load"),
        ("AIRFLOW_CTX_LOGICAL_DATE", "2026-01-01T00:00:00+00:00"),
        ("AIRFLOW_CTX_TRY_NUMBER", "2"),
        (
            "AIRFLOW_CTX_DAG_RUN_ID",
            "scheduled__2026-01-01T00:00:00+00:00",
        ),
    ];
    let actual: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(actual, expected);
}

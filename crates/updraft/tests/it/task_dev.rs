//! `tasks test` and `tasks render` through the binary: the task runs (or renders) in the CLI
//! process with its log on the terminal, and the database gains no run and no task instance.

use std::process::Output;

use crate::fixture::Home;

const DAG: &str = "\
params: {who: world}
tasks:
  - task_id: hello
    bash_command: 'echo hello {{ params.who }} on {{ ds }} with $FOO; echo the end'
    env: {STAGE: '{{ ds_nodash }}'}
  - task_id: broken
    bash_command: 'echo breaking; exit 2'
    dependencies: [hello]
  - task_id: pull
    bash_command: 'echo pulled {{ ti.xcom_pull(task_ids=\"hello\") }}'
";

/// (runs, task instances) in the home's database.
fn rows(home: &Home) -> (i64, i64) {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let count = |table: &str| {
        db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (count("dag_run"), count("task_instance"))
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tasks_test_runs_one_bash_task_with_params_and_env_and_records_nothing() {
    let home = Home::new();
    home.write_dag("dev.yaml", DAG);
    let out = home.run(&[
        "tasks",
        "test",
        "dev",
        "hello",
        "2026-03-04",
        "-t",
        r#"{"who": "tester"}"#,
        "--env-vars",
        r#"{"FOO": "bar"}"#,
    ]);
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("{stdout} hello tester on 2026-03-04 with bar"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[updraft] returned: \"the end\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("[updraft] task hello ended: success"),
        "{stdout}"
    );
    assert_eq!(rows(&home), (0, 0));

    let out = home.run(&["tasks", "test", "dev", "broken"]);
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("{stdout} breaking"), "{stdout}");
    assert!(
        stdout.contains("[updraft] task broken failed: exited with code 2"),
        "{stdout}"
    );
    assert_eq!(rows(&home), (0, 0));

    let out = home.run(&["tasks", "test", "dev", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("task \"nope\" not found in DAG \"dev\""),
        "{out:?}"
    );
    let out = home.run(&["tasks", "test", "dev", "hello", "-t", "[1]"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn tasks_test_in_an_existing_run_reads_its_xcoms_and_changes_none_of_its_rows() {
    let home = Home::new();
    home.write_dag("dev.yaml", DAG);
    // `broken` fails the run; `hello` pushed its XCom.
    let out = home.run(&["dags", "test", "dev", "2026-03-04", "--output", "json"]);
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let before = home.json(&["tasks", "states-for-dag-run", "dev", &run_id]);
    let counts = rows(&home);

    let stdout = home.ok(&["tasks", "test", "dev", "pull", &run_id]);
    assert!(stdout.contains("{stdout} pulled the end"), "{stdout}");
    // By its logical date too.
    let stdout = home.ok(&["tasks", "test", "dev", "pull", "2026-03-04"]);
    assert!(stdout.contains("{stdout} pulled the end"), "{stdout}");

    assert_eq!(rows(&home), counts);
    let after = home.json(&["tasks", "states-for-dag-run", "dev", &run_id]);
    assert_eq!(before, after);
}

#[test]
fn tasks_test_runs_a_python_task() {
    let home = Home::new();
    home.write_dag(
        "py_dev.py",
        r#"
import os
from airflow.sdk import DAG, task

with DAG(dag_id="py_dev", schedule=None, params={"n": 1}):
    @task
    def compute(params=None, test_mode=None):
        print("computing", params["n"], os.environ["FOO"], os.environ["AIRFLOW_TEST_MODE"])
        return params["n"] * 2

    compute()
"#,
    );
    let out = home.run(&[
        "tasks",
        "test",
        "py_dev",
        "compute",
        "-t",
        r#"{"n": 21}"#,
        "--env-vars",
        r#"{"FOO": "bar"}"#,
    ]);
    let stdout = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("{stdout} computing 21 bar True"),
        "{stdout}"
    );
    assert!(stdout.contains("[updraft] returned: 42"), "{stdout}");
    assert_eq!(rows(&home), (0, 0));
}

#[test]
fn tasks_render_prints_each_templated_field() {
    let home = Home::new();
    home.write_dag("dev.yaml", DAG);
    let stdout = home.ok(&["tasks", "render", "dev", "hello", "2026-03-04"]);
    let rule = "# ----------------------------------------------------------";
    let expected = format!(
        "{rule}\n# property: bash_command\n{rule}\necho hello world on 2026-03-04 with $FOO; echo the end\n\n\
         {rule}\n# property: env\n{rule}\n{{\n  \"STAGE\": \"20260304\"\n}}\n\n\
         {rule}\n# property: cwd\n{rule}\nNone\n\n"
    );
    assert_eq!(stdout, expected);
    assert_eq!(rows(&home), (0, 0));

    let out = home.run(&["tasks", "render", "dev", "hello", "not-a-date"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is neither a run of DAG \"dev\" nor a date"),
        "{out:?}"
    );
}

#[test]
fn tasks_render_asks_the_sdk_for_a_python_tasks_fields() {
    let home = Home::new();
    home.write_dag(
        "py_render.py",
        r#"
from airflow.sdk import DAG
from airflow.providers.standard.operators.python import PythonOperator

def never_called(day, who=None):
    raise RuntimeError("render must not call the task")

with DAG(dag_id="py_render", schedule=None, params={"who": "world"}):
    PythonOperator(task_id="op", python_callable=never_called, op_args=["{{ ds }}"],
                   op_kwargs={"who": "{{ params.who }}"})
"#,
    );
    let stdout = home.ok(&["tasks", "render", "py_render", "op", "2026-03-04"]);
    let rule = "# ----------------------------------------------------------";
    assert!(
        stdout.contains(&format!(
            "{rule}\n# property: op_args\n{rule}\n[\"2026-03-04\"]\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "# property: op_kwargs\n{rule}\n{{\"who\":\"world\"}}\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("# property: templates_dict\n{rule}\nNone\n")),
        "{stdout}"
    );
    assert_eq!(rows(&home), (0, 0));
}

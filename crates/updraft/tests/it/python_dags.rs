//! Python DAG files through the binary: parsed by child interpreters with the embedded SDK,
//! run as Python tasks by the worker, and broken files kept to themselves as import errors.

use std::time::Duration;

use serde_json::Value;

use crate::fixture::{state_of, Home};

/// Whether this binary carries the Python SDK (it is embedded from `sdk/python/src` at build
/// time) and a `python3` is there to run it. Without them these tests cannot run, and say so.
pub fn python_ready() -> bool {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../sdk/python/src/updraft/_run.py");
    if !sdk.is_file() {
        eprintln!("SKIPPED: the Python SDK (sdk/python/src/updraft) has not landed in this tree");
        return false;
    }
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    assert!(
        python.is_ok_and(|out| out.status.success()),
        "python3 is needed to run Python DAGs (core.python)"
    );
    true
}

/// XComs of the home's SQLite database: (task_id, key) → value.
fn xcoms(home: &Home) -> Vec<(String, String, Value)> {
    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT task_id, key, value FROM xcom ORDER BY task_id, key")
        .unwrap();
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    rows.map(|row| {
        let (task, key, value) = row.unwrap();
        (task, key, serde_json::from_str(&value).unwrap())
    })
    .collect()
}

const TASKFLOW: &str = r#"
from datetime import datetime

from airflow.decorators import dag, task
from airflow.operators.bash import BashOperator
from airflow.operators.python import get_current_context


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["py"])
def flow():
    @task
    def extract():
        get_current_context()["ti"].xcom_push(key="extra", value=[1, 2])
        return {"a": 1, "b": 2}

    @task
    def total(numbers):
        return numbers["a"] + numbers["b"]

    @task
    def report(n):
        print(f"the total is {n}")
        return n * 10

    shown = BashOperator(
        task_id="shown",
        bash_command="echo got {{ ti.xcom_pull(task_ids='total') }}",
    )
    t = total(extract())
    report(t)
    t >> shown


flow()
"#;

#[test]
fn a_taskflow_chain_passes_values_and_stores_its_xcoms() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag("flow.py", TASKFLOW);
    let dags = home.json(&["dags", "list"]);
    assert_eq!(dags[0]["dag_id"], "flow", "{dags:#}");
    assert_eq!(
        home.json(&["dags", "list-import-errors"]),
        serde_json::json!([])
    );
    let doc = home.json(&["dags", "test", "flow"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    for task in ["extract", "total", "report", "shown"] {
        assert_eq!(state_of(&doc, task), "success", "{task}: {doc:#}");
    }
    let run_id = doc["run_id"].as_str().unwrap();
    let xcoms = xcoms(&home);
    let find = |task: &str, key: &str| {
        xcoms
            .iter()
            .find(|(t, k, _)| t == task && k == key)
            .map(|(_, _, v)| v.clone())
    };
    assert_eq!(
        find("extract", "return_value"),
        Some(serde_json::json!({"a": 1, "b": 2}))
    );
    assert_eq!(find("extract", "extra"), Some(serde_json::json!([1, 2])));
    assert_eq!(find("total", "return_value"), Some(serde_json::json!(3)));
    assert_eq!(find("report", "return_value"), Some(serde_json::json!(30)));
    // print() goes to the task log; a bash task's template reads the Python task's XCom.
    let log = home.ok(&["tasks", "logs", "flow", run_id, "report"]);
    assert!(log.contains("the total is 3"), "{log}");
    let log = home.ok(&["tasks", "logs", "flow", run_id, "shown"]);
    assert!(log.contains("got 3"), "{log}");
}

const BRANCHING: &str = r#"
from datetime import datetime

from airflow.decorators import dag, task
from airflow.exceptions import AirflowFailException


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def branching():
    @task.branch
    def pick():
        return "left"

    @task
    def left():
        from airflow.models import Variable
        print("the key is " + Variable.get("api_key"))
        return "went left"

    @task
    def right():
        return "went right"

    @task
    def after_right():
        return "after right"

    @task(trigger_rule="none_failed_min_one_success")
    def join():
        return "joined"

    @task(retries=3, retry_delay=0)
    def refuse():
        raise AirflowFailException("no retries for this")

    chosen = pick()
    l, r = left(), right()
    chosen >> [l, r]
    a = after_right()
    r >> a
    # Airflow's pattern: the join is downstream of both paths, not of the branch itself.
    [l, a] >> join()
    refuse()


branching()
"#;

#[test]
fn a_branch_skips_the_path_not_taken_and_a_fail_exception_is_not_retried() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag("branching.py", BRANCHING);
    home.ok(&["variables", "set", "api_key", "s3cr3t-value"]);
    // The run fails (`refuse`), so the command exits non-zero; its document still says why.
    let out = home.run(&["dags", "test", "branching", "--output", "json"]);
    assert!(!out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&doc, "pick"), "success", "{doc:#}");
    assert_eq!(state_of(&doc, "left"), "success", "{doc:#}");
    assert_eq!(state_of(&doc, "right"), "skipped", "{doc:#}");
    // Downstream of a skipped task, by the trigger rule.
    assert_eq!(state_of(&doc, "after_right"), "skipped", "{doc:#}");
    assert_eq!(state_of(&doc, "join"), "success", "{doc:#}");
    assert_eq!(state_of(&doc, "refuse"), "failed", "{doc:#}");
    assert_eq!(crate::fixture::try_of(&doc, "refuse"), 1, "{doc:#}");
    assert_eq!(doc["state"], "failed", "{doc:#}");
    // A secret the callable read is masked in its log.
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "branching", run_id, "left"]);
    assert!(log.contains("the key is ***"), "{log}");
    assert!(!log.contains("s3cr3t-value"), "{log}");
}

#[test]
fn broken_python_files_are_import_errors_and_other_dags_still_run() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    home.write_dag(
        "ok.yaml",
        "dag_id: still_fine\ntasks:\n  - task_id: a\n    bash_command: echo fine\n",
    );
    home.write_dag("flow.py", TASKFLOW);
    home.write_dag(
        "syntax.py",
        "from airflow import DAG\n\nwith DAG('s') as dag:\n    x = (\n",
    );
    home.write_dag(
        "raises.py",
        "from airflow import DAG\n\nconfig = {}\nDAG_ID = config['missing']\n",
    );
    home.write_dag(
        "forever.py",
        "from airflow import DAG\n\nwhile True:\n    pass\n",
    );
    home.write_dag(
        "huge.py",
        "from airflow import DAG\n\nblob = bytearray(10 * 1024 ** 3)\n",
    );
    // Not run at all: no mention of DAGs (safe mode), so it cannot hang the scan either.
    home.write_dag("helper.py", "while True:\n    pass\n");
    // Long enough for the good Python file to parse on a loaded CI machine (3 s was not).
    std::fs::write(
        home.path().join("updraft.toml"),
        "[dag_processor]\ndag_file_processor_timeout = \"8s\"\nmemory_limit_mib = 512\n",
    )
    .unwrap();
    let errors = home.json(&["dags", "list-import-errors"]);
    let error_of = |name: &str| -> String {
        errors
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["filename"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no import error for {name}: {errors:#}"))["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(errors.as_array().unwrap().len(), 4, "{errors:#}");
    let syntax = error_of("syntax.py");
    assert!(syntax.contains("SyntaxError"), "{syntax}");
    assert!(syntax.starts_with("line 4"), "{syntax}");
    let raises = error_of("raises.py");
    assert!(
        raises.starts_with("line 4: KeyError: 'missing'"),
        "{raises}"
    );
    assert!(raises.contains("Traceback"), "{raises}");
    let forever = error_of("forever.py");
    assert!(forever.contains("took longer than 8s"), "{forever}");
    let huge = error_of("huge.py");
    assert!(huge.contains("MemoryError"), "{huge}");

    let dags = home.json(&["dags", "list"]);
    let ids: Vec<&str> = dags
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dag_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["flow", "still_fine"], "{dags:#}");

    let mut standalone = home.standalone();
    let run_id = home.trigger("still_fine");
    let states = home.wait_for_run("still_fine", &run_id, Duration::from_secs(60));
    assert_eq!(states["state"], "success", "{states:#}");
    let run_id = home.trigger("flow");
    let states = home.wait_for_run("flow", &run_id, Duration::from_secs(120));
    assert_eq!(states["state"], "success", "{states:#}");
    standalone.sigterm();
}

const TEMPLATE_FILE: &str = r#"
from datetime import datetime
from airflow.sdk import dag, task

@dag(schedule=None, start_date=datetime(2024, 1, 1))
def template_file():
    @task(templates_exts=[".sql"])
    def show(query):
        print(f"query: {query}")
        return query

    show("sql/query.sql")

template_file()
"#;

/// The worker runs a task from the DAG file's pinned source, in a directory of its own; a
/// template file named relative to the DAG file is still found in the DAG folder, as Airflow
/// finds it on its search path.
#[test]
fn a_template_file_next_to_the_dag_file_is_read_and_rendered() {
    if !python_ready() {
        return;
    }
    let home = Home::new();
    std::fs::create_dir_all(home.dags().join("sql")).unwrap();
    std::fs::write(
        home.dags().join("sql/query.sql"),
        "select * from t where day = '{{ ds }}'",
    )
    .unwrap();
    home.write_dag("template_file.py", TEMPLATE_FILE);
    let doc = home.json(&["dags", "test", "template_file", "2024-03-01"]);
    assert_eq!(state_of(&doc, "show"), "success", "{doc:#}");
    assert_eq!(
        xcoms(&home),
        vec![(
            "show".to_owned(),
            "return_value".to_owned(),
            Value::from("select * from t where day = '2024-03-01'")
        )]
    );
}

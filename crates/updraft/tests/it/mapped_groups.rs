//! Mapped task groups and `XComArg.map`/`zip`/`concat` through the binary: every task of a
//! group expands to the group's values, instance i waits only for instance i of the group's
//! tasks upstream of it (a failure at one index leaves the others running, as in Airflow),
//! and a task after the group reduces the results.

use std::time::Duration;

use serde_json::Value;

use crate::fixture::{state_of, Home};

/// `(map_index, state)` of every instance of `task_id`, by map index.
pub(crate) fn instances(doc: &Value, task_id: &str) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = doc["task_instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ti| ti["task_id"] == task_id)
        .map(|ti| {
            (
                ti["map_index"].as_i64().unwrap(),
                ti["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn states(list: &[&str]) -> Vec<(i64, String)> {
    list.iter()
        .enumerate()
        .map(|(i, s)| (i as i64, s.to_string()))
        .collect()
}

pub(crate) const GROUP_PY: &str = r#"
from datetime import datetime
from airflow.sdk import dag, task, task_group
from airflow.providers.standard.operators.empty import EmptyOperator


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def mapped_group():
    @task
    def numbers():
        return [1, 2, 3]

    @task_group
    def op(num, base):
        @task
        def add(num, base, ti=None):
            if num == 2:
                raise ValueError("two is refused")
            print(f"add {ti.map_index}: {num} + {base}")
            return num + base

        @task
        def double(value, ti=None):
            print(f"double {ti.map_index}: {value}")
            return value * 2

        doubled = double(add(num, base))
        doubled >> EmptyOperator(task_id="done")
        return doubled

    @task(trigger_rule="all_done")
    def total(values):
        print(f"total of {list(values)}")
        return sum(values)

    total(op.partial(base=10).expand(num=numbers()))


mapped_group()
"#;

/// What a run of [`GROUP_PY`] must end in: index 1 fails in `op.add`, only its own
/// downstream instances are upstream-failed, and the reduce sees the other two.
pub(crate) fn check_group_run(doc: &Value, log_of: impl Fn(&str, Option<i64>) -> String) {
    assert_eq!(
        instances(doc, "op.add"),
        states(&["success", "failed", "success"])
    );
    assert_eq!(
        instances(doc, "op.double"),
        states(&["success", "upstream_failed", "success"])
    );
    assert_eq!(
        instances(doc, "op.done"),
        states(&["success", "upstream_failed", "success"])
    );
    assert_eq!(state_of(doc, "total"), "success");
    let log = log_of("op.double", Some(2));
    assert!(log.contains("double 2: 13"), "{log}");
    let log = log_of("total", None);
    assert!(log.contains("total of [22, 26]"), "{log}");
}

#[test]
fn a_mapped_task_group_runs_each_index_on_its_own_and_reduces_downstream() {
    let home = Home::new();
    home.write_dag("mapped_group.py", GROUP_PY);
    let out = home.run(&["dags", "test", "mapped_group", "--output", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // `op.done` is a leaf, and one of its instances is upstream-failed: Airflow fails the run.
    assert_eq!(doc["state"], "failed", "{doc:#}");
    let run_id = doc["run_id"].as_str().unwrap().to_string();
    check_group_run(&doc, |task, index| {
        let mut args = vec!["tasks", "logs", "mapped_group", &run_id, task];
        let index = index.map(|i| i.to_string());
        if let Some(index) = &index {
            args.extend(["--map-index", index]);
        }
        home.ok(&args)
    });

    // `tasks test --map-index`: one instance, with the run's results, nothing recorded.
    let out = home.ok(&[
        "tasks",
        "test",
        "mapped_group",
        "op.double",
        &run_id,
        "--map-index",
        "2",
    ]);
    assert!(out.contains("double 2: 13"), "{out}");
    assert!(out.contains("[updraft] returned: 26"), "{out}");
    let out = home.run(&["tasks", "test", "mapped_group", "op.add", &run_id]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("task \"op.add\" is mapped: name the instance to test with --map-index N"),
        "{text}"
    );
    let out = home.run(&[
        "tasks",
        "test",
        "mapped_group",
        "op.add",
        &run_id,
        "--map-index",
        "7",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("map index 7 is out of range for task 'op.add' (3 instances)"),
        "{text}"
    );
}

const GROUP_YAML: &str = r#"
dag_id: yaml_group
tasks:
  - task_id: greetings
    bash_command: |
      echo '[{"WORD": "hello"}, {"WORD": "bonjour"}]'
  - task_id: say.upper
    task_group: say
    map_group: say
    bash_command: echo "$WORD" | tr a-z A-Z
    expand:
      env: {xcom: greetings}
  - task_id: say.mark
    task_group: say
    map_group: say
    dependencies: [say.upper]
    bash_command: echo "{{ ti.map_index }} $WORD!"
    expand:
      env: {xcom: greetings}
  - task_id: say.end
    operator: empty
    task_group: say
    map_group: say
    dependencies: [say.mark]
    expand:
      env: {xcom: greetings}
  - task_id: all
    bash_command: echo "{{ ti.xcom_pull(task_ids='say.mark') | join(',') }}"
    dependencies: [say.end]
"#;

#[test]
fn a_yaml_mapped_group_expands_every_task_over_the_groups_values() {
    let home = Home::new();
    home.write_dag("yaml_group.yaml", GROUP_YAML);
    let doc = home.json(&["dags", "test", "yaml_group"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    for task in ["say.upper", "say.mark", "say.end"] {
        assert_eq!(
            instances(&doc, task),
            states(&["success", "success"]),
            "{task}"
        );
    }
    let run_id = doc["run_id"].as_str().unwrap();
    let log = home.ok(&["tasks", "logs", "yaml_group", run_id, "all"]);
    assert!(log.contains("0 hello!,1 bonjour!"), "{log}");
    // `tasks render --map-index`: an instance's command and environment, as it ran.
    let out = home.ok(&[
        "tasks",
        "render",
        "yaml_group",
        "say.mark",
        run_id,
        "--map-index",
        "1",
    ]);
    assert!(out.contains("echo \"1 $WORD!\""), "{out}");
    assert!(out.contains("\"WORD\": \"bonjour\""), "{out}");

    // Tasks of one group must map over the same values.
    home.write_dag(
        "bad_group.yaml",
        "tasks:\n  - task_id: g.a\n    map_group: g\n    expand:\n      bash_command: [\"true\"]\n  - task_id: g.b\n    map_group: g\n    expand:\n      bash_command: [\"true\", \"false\"]\n",
    );
    let out = home.run(&["dags", "list-import-errors"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tasks of mapped group `g` must map over the same values"),
        "{text}"
    );
}

const TRANSFORMS_PY: &str = r#"
from datetime import datetime
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2024, 1, 1))
def transforms():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def words():
        return ["one", "two"]

    @task
    def show(value, ti=None):
        print(f"instance {ti.map_index}: {value!r}")
        return value

    @task
    def whole(values):
        print(f"whole {list(values)!r}")

    nums = numbers()
    letters = words()
    show.override(task_id="tenfold").expand(value=nums.map(lambda n: n * 10))
    show.override(task_id="pairs").expand(value=nums.zip(letters))
    show.override(task_id="padded").expand(value=nums.zip(letters, fillvalue="-"))
    show.override(task_id="both").expand(value=nums.concat(letters))
    whole(nums.map(lambda n: n + 1))


transforms()
"#;

#[test]
fn map_zip_and_concat_expand_as_in_airflow() {
    let home = Home::new();
    home.write_dag("transforms.py", TRANSFORMS_PY);
    let doc = home.json(&["dags", "test", "transforms"]);
    assert_eq!(doc["state"], "success", "{doc:#}");
    let lengths = [("tenfold", 3), ("pairs", 2), ("padded", 3), ("both", 5)];
    for (task, n) in lengths {
        assert_eq!(instances(&doc, task).len(), n, "{task}: {doc:#}");
    }
    let run_id = doc["run_id"].as_str().unwrap();
    let log_at = |task: &str, index: &str| {
        home.ok(&[
            "tasks",
            "logs",
            "transforms",
            run_id,
            task,
            "--map-index",
            index,
        ])
    };
    assert!(log_at("tenfold", "2").contains("instance 2: 30"));
    assert!(log_at("pairs", "1").contains("instance 1: (2, 'two')"));
    assert!(log_at("padded", "2").contains("instance 2: (3, '-')"));
    assert!(log_at("both", "4").contains("instance 4: 'two'"));
    let log = home.ok(&["tasks", "logs", "transforms", run_id, "whole"]);
    assert!(log.contains("whole [2, 3, 4]"), "{log}");
}

/// Airflow's revision of map indexes: the upstream of a mapped task cleared (with its
/// downstream) and run again with more values grows the task, with fewer removes the
/// instances past the new length; the reduce sees the new values only.
#[test]
fn a_mapped_task_expands_again_when_its_upstream_reruns_with_another_length() {
    let home = Home::new();
    let items = home.path().join("items.json");
    let write_items = |names: &[&str]| {
        let list: Vec<Value> = names.iter().map(|n| serde_json::json!({"N": n})).collect();
        std::fs::write(&items, Value::Array(list).to_string()).unwrap();
    };
    write_items(&["a", "b", "c"]);
    home.write_dag(
        "regrow.yaml",
        &format!(
            "tasks:
  - task_id: producer
    bash_command: cat {}
  - task_id: each
    bash_command: echo \"item $N\"
    expand:
      env: {{xcom: producer}}
  - task_id: total
    bash_command: echo \"{{{{ ti.xcom_pull(task_ids='each') | join(',') }}}}\"
    dependencies: [each]
",
            items.display()
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("regrow");
    let wait = || home.wait_for_run("regrow", &run_id, Duration::from_secs(60));
    let doc = wait();
    assert_eq!(doc["state"], "success", "{doc:#}");
    assert_eq!(instances(&doc, "each"), states(&["success"; 3]));

    let rerun = |names: &[&str]| {
        write_items(names);
        home.ok(&[
            "tasks",
            "clear",
            "regrow",
            "-t",
            "^producer$",
            "--run-id",
            &run_id,
        ]);
        let doc = wait();
        assert_eq!(doc["state"], "success", "{doc:#}");
        (doc, home.ok(&["tasks", "logs", "regrow", &run_id, "total"]))
    };
    let (doc, log) = rerun(&["a", "b", "c", "d"]);
    assert_eq!(instances(&doc, "each"), states(&["success"; 4]));
    assert!(log.contains("item a,item b,item c,item d"), "{log}");

    let (doc, log) = rerun(&["x", "y"]);
    assert_eq!(
        instances(&doc, "each"),
        states(&["success", "success", "removed", "removed"])
    );
    assert!(log.contains("item x,item y"), "{log}");
}

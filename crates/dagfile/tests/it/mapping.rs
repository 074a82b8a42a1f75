//! `expand:` and `expand_kwargs:` on tasks: what loads, and each mistake's message.

use serde_json::json;
use updraft_model::{MapSource, MappedArgument, Mapping, Operator};

use crate::parse::{check_err, check_ok};

#[test]
fn expand_over_literals_and_an_upstream_result() {
    let dag = check_ok(
        "tasks:
  - task_id: make
    bash_command: echo '[1, 2]'
  - task_id: echo
    expand:
      bash_command: [echo a, echo b]
  - task_id: per_file
    bash_command: wc -l $FILE
    expand:
      env: [{FILE: a}, {FILE: b}]
  - task_id: consume
    expand:
      bash_command: {xcom: make}
  - task_id: kwargs
    expand_kwargs:
      - {bash_command: echo 1, env: {X: '1'}}
      - {bash_command: echo 2}
",
    );
    let echo = dag.task("echo").unwrap();
    assert_eq!(
        echo.mapping,
        Some(Mapping::Expand(vec![MappedArgument {
            name: "bash_command".into(),
            source: MapSource::Literal(vec![json!("echo a"), json!("echo b")]),
        }]))
    );
    assert_eq!(
        echo.operator,
        Operator::Bash {
            bash_command: String::new()
        }
    );
    let per_file = dag.task("per_file").unwrap();
    assert!(
        matches!(&per_file.operator, Operator::Bash { bash_command } if bash_command == "wc -l $FILE")
    );
    let consume = dag.task("consume").unwrap();
    assert_eq!(consume.dependencies, vec!["make".to_string()]);
    assert_eq!(
        consume.mapping,
        Some(Mapping::Expand(vec![MappedArgument {
            name: "bash_command".into(),
            source: MapSource::Xcom("make".into()),
        }]))
    );
    assert!(matches!(
        dag.task("kwargs").unwrap().mapping,
        Some(Mapping::ExpandKwargs(MapSource::Literal(ref items))) if items.len() == 2
    ));
}

#[test]
fn mapping_mistakes_are_named() {
    let task = |body: &str| format!("tasks:\n  - task_id: t\n{body}");
    check_err(
        &task("    expand:\n      retries: [1, 2]\n"),
        &["task `t`: `expand.retries`: a bash task cannot map over `retries`; it can map over: bash_command, env"],
    );
    check_err(
        &task("    expand:\n      bash_command: echo a\n"),
        &["task `t`: `expand.bash_command` must be a list to map over (or `{xcom: task_id}`"],
    );
    check_err(
        &task("    expand:\n      bash_command: [1]\n"),
        &["`expand.bash_command` item 0: `bash_command` must be a string, found a number"],
    );
    check_err(
        &task("    bash_command: echo\n    expand:\n      bash_command: [a]\n"),
        &["`bash_command` is both set and in `expand`"],
    );
    check_err(
        &task("    bash_command: echo\n    expand:\n      env: [{A: 1}]\n    expand_kwargs: []\n"),
        &["`expand` and `expand_kwargs` do not go together"],
    );
    check_err(
        &task("    operator: empty\n    expand:\n      env: [{A: 1}]\n"),
        &["`operator: empty` has none"],
    );
    check_err(
        &task("    expand:\n      bash_command: {xcom: nowhere}\n"),
        &["depends on unknown task `nowhere`"],
    );
    check_err(
        &task("    expand_kwargs:\n      - echo a\n"),
        &["`expand_kwargs` item 0 must be a mapping of arguments, found a string"],
    );
    check_err(
        &task("    expand_kwargs:\n      - {env: {A: '1'}}\n"),
        &["missing required key `bash_command`"],
    );
}

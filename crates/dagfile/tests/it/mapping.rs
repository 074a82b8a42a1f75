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

#[test]
fn combined_sources_and_mapped_groups_load() {
    let dag = check_ok(
        "tasks:
  - task_id: a
    bash_command: echo '[1, 2]'
  - task_id: pairs
    bash_command: echo $P
    expand:
      env: {zip: [{xcom: a}, [{P: x}, {P: y}]], fillvalue: null}
  - task_id: both
    expand:
      bash_command: {concat: [[echo 1], {xcom: a}]}
  - task_id: g.one
    map_group: g
    bash_command: echo $X
    expand:
      env: [{X: '1'}, {X: '2'}]
      n: [1, 2]
  - task_id: g.two
    operator: empty
    map_group: g
    dependencies: [g.one]
    expand:
      env: [{X: '1'}, {X: '2'}]
      n: [1, 2]
",
    );
    let pairs = dag.task("pairs").unwrap();
    assert_eq!(pairs.dependencies, vec!["a".to_string()]);
    assert!(matches!(
        &pairs.mapping,
        Some(Mapping::Expand(args)) if matches!(&args[0].source,
            MapSource::Zip { sources, longest: true, .. } if sources.len() == 2)
    ));
    assert_eq!(
        dag.task("both").unwrap().dependencies,
        vec!["a".to_string()]
    );
    let two = dag.task("g.two").unwrap();
    assert_eq!(two.map_group.as_deref(), Some("g"));
    assert_eq!(two.mapping, dag.task("g.one").unwrap().mapping);

    // What a group maps over comes before its first tasks only, as in Airflow.
    let dag = check_ok(
        "tasks:
  - task_id: src
    bash_command: echo '[1]'
  - {task_id: h.a, map_group: h, bash_command: echo a, expand: {env: {xcom: src}}}
  - {task_id: h.b, map_group: h, bash_command: echo b, expand: {env: {xcom: src}}, dependencies: [h.a]}
",
    );
    assert_eq!(
        dag.task("h.a").unwrap().dependencies,
        vec!["src".to_string()]
    );
    assert_eq!(
        dag.task("h.b").unwrap().dependencies,
        vec!["h.a".to_string()]
    );
}

#[test]
fn combined_source_and_mapped_group_mistakes_are_named() {
    let task = |body: &str| format!("tasks:\n  - task_id: t\n{body}");
    check_err(
        &task("    expand:\n      bash_command: {map: [a], callables: [f]}\n"),
        &["`expand.bash_command`: `map` needs Python callables; a bash task cannot use it"],
    );
    check_err(
        &task("    expand:\n      bash_command: {zip: [[a]], extra: 1}\n"),
        &["`expand.bash_command.zip` takes only: zip, fillvalue (found `extra`)"],
    );
    check_err(
        &task("    operator: empty\n    map_group: g\n"),
        &["`map_group` needs the group's `expand` or `expand_kwargs`"],
    );
    check_err(
        "tasks:
  - {task_id: g.a, map_group: g, expand: {bash_command: [a]}}
  - {task_id: g.b, map_group: g, expand: {bash_command: [a, b]}}
",
        &["task `g.b`: tasks of mapped group `g` must map over the same values (`g.a` maps over others)"],
    );
}

//! Hostile DAG files: oversized, alias bombs, deep nesting, and worst cases that fit the
//! size limit — each refused (or loaded) quickly, never expanded or hung on.

use std::path::Path;
use std::time::Duration;

use updraft_dagfile::{load_python_dags, parse_dag_source, Format};

use crate::parse::{check_err, check_ok};

#[test]
fn files_over_one_mib_are_rejected_without_parsing() {
    // Not even valid YAML: the size check comes first.
    let source = format!("{{{{{}", "x".repeat(updraft_dagfile::MAX_FILE_BYTES));
    check_err(&source, &["DAG files may be at most 1048576 bytes"]);
}

/// The limit is on files users write: a Python file of a few lines may build a DAG whose
/// document (as the SDK answers it) is far larger, and that DAG loads.
#[test]
fn a_python_files_dag_document_may_pass_one_mib() {
    let tasks: Vec<_> = (0..20_000)
        .map(|i| {
            let dependencies: Vec<String> = (i > 0)
                .then(|| format!("t{:05}", i - 1))
                .into_iter()
                .collect();
            serde_json::json!({
                "task_id": format!("t{i:05}"),
                "bash_command": "true",
                "dependencies": dependencies,
            })
        })
        .collect();
    let document = serde_json::json!({"dag_id": "big", "tasks": tasks});
    let text = serde_json::to_string(&document).unwrap();
    assert!(
        text.len() > updraft_dagfile::MAX_FILE_BYTES,
        "{}",
        text.len()
    );
    let loaded = load_python_dags(
        Path::new("/dags/big.py"),
        "# built in a loop",
        vec![document],
        None,
    )
    .unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].dag.dag_id, "big");
    assert_eq!(loaded[0].dag.tasks.len(), 20_000);
}

#[test]
fn billion_laughs_is_rejected_not_expanded() {
    let bomb = "\
a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
params: {x: *i}
tasks: []
";
    let started = std::time::Instant::now();
    check_err(bomb, &["refusing to expand (YAML alias bomb?)"]);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn quadratic_alias_fan_out_is_rejected() {
    // One big anchor aliased many times: few jumps, but each copies the whole anchor. A
    // limit on alias *count* alone lets this through.
    let mut source = String::from("params:\n  big: &big [");
    source.push_str(&vec!["1"; 50_000].join(","));
    source.push_str("]\n  copies: [");
    source.push_str(&vec!["*big"; 50_000].join(","));
    source.push_str("]\ntasks: []\n");
    assert!(source.len() < updraft_dagfile::MAX_FILE_BYTES);
    let started = std::time::Instant::now();
    check_err(&source, &["alias bomb"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn deep_nesting_is_rejected() {
    let deep = |n| {
        format!(
            "params: {{x: {}{}}}\ntasks: []\n",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    check_err(
        &deep(100),
        &["line 1, column 75: values are nested more than 64 levels deep"],
    );
    // The parser's own limit on flow nesting comes first for very deep input.
    check_err(&deep(10_000), &["recursion limit exceeded"]);
    let mut block = String::from("params:\n");
    for level in 1..100 {
        block.push_str(&format!("{}k:\n", "  ".repeat(level)));
    }
    check_err(&block, &["nested more than 64 levels deep"]);
    // Aliases cannot be used to stack depth either.
    let mut source = String::from("params:\n");
    source.push_str(&format!(
        "  l0: &l0 {}1{}\n",
        "[".repeat(50),
        "]".repeat(50)
    ));
    for i in 1..40 {
        source.push_str(&format!(
            "  l{i}: &l{i} {}*l{}{}\n",
            "[".repeat(50),
            i - 1,
            "]".repeat(50)
        ));
    }
    source.push_str("tasks: []\n");
    check_err(&source, &["nested more than 64 levels deep"]);
}

#[test]
fn recursive_alias_is_an_error_not_a_hang() {
    check_err("params: &a {x: *a}\ntasks: []\n", &["alias"]);
}

/// Worst cases that fit in 1 MiB stay fast: nothing in the loader is quadratic in file size.
#[test]
fn big_hostile_files_finish_quickly() {
    let started = std::time::Instant::now();
    let mut keys = String::from("tasks:\n  - task_id: a\n    operator: empty\n");
    for i in 0..70_000 {
        keys.push_str(&format!("    k{i}: 1\n"));
    }
    let mut deps = String::from("tasks:\n  - task_id: a\n    operator: empty\n    dependencies: [");
    deps.push_str(
        &(0..100_000)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    deps.push_str("]\n");
    let mut chain = String::from("tasks:\n  - {task_id: t0, operator: empty}\n");
    for i in 1..15_000 {
        chain.push_str(&format!(
            "  - {{task_id: t{i}, operator: empty, dependencies: [t{}]}}\n",
            i - 1
        ));
    }
    for source in [&keys, &deps] {
        assert!(source.len() <= updraft_dagfile::MAX_FILE_BYTES);
        let error = parse_dag_source(source, "x", Format::Yaml).unwrap_err();
        assert!(error.contains("more problems"), "{}", &error[..200]);
    }
    assert!(chain.len() <= updraft_dagfile::MAX_FILE_BYTES);
    assert_eq!(check_ok(&chain).tasks.len(), 15_000);
    let elapsed = started.elapsed();
    eprintln!("hostile files: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
}

//! The generated DAG files of the workloads (YAML, every task a `true`; W8's and W9's in
//! Python).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// A task id that sorts in task order.
pub fn task_id(i: usize) -> String {
    format!("t{i:04}")
}

/// W1: `n` tasks in a straight chain.
pub fn chain(dag_id: &str, n: usize) -> String {
    let mut text = header(dag_id, "a straight chain");
    chain_tasks(&mut text, n);
    text
}

/// W10: [`chain`], run every minute from a start date in the past, without catch-up.
pub fn every_minute_chain(dag_id: &str, n: usize) -> String {
    let mut text = header(dag_id, "a chain run every minute");
    text.push_str("schedule: \"* * * * *\"\nstart_date: 2024-01-01\ncatchup: false\n");
    chain_tasks(&mut text, n);
    text
}

fn chain_tasks(text: &mut String, n: usize) {
    text.push_str("tasks:\n");
    for i in 0..n {
        let deps = if i == 0 { vec![] } else { vec![task_id(i - 1)] };
        task(text, &task_id(i), &deps);
    }
}

/// W2: `start` → `width` parallel tasks → `end`.
pub fn fan(dag_id: &str, width: usize) -> String {
    let mut text = header(dag_id, "start, a fan-out, end");
    text.push_str("tasks:\n");
    task(&mut text, "start", &[]);
    let start = ["start".to_owned()];
    let middle: Vec<String> = (0..width).map(task_id).collect();
    for t in &middle {
        task(&mut text, t, &start);
    }
    task(&mut text, "end", &middle);
    text
}

/// W5: `width` independent tasks.
pub fn parallel(dag_id: &str, width: usize) -> String {
    let mut text = header(dag_id, "independent tasks");
    text.push_str("tasks:\n");
    for i in 0..width {
        task(&mut text, &task_id(i), &[]);
    }
    text
}

/// W6: a file of `tasks` tasks shaped like a real pipeline: one first task, a fan in the
/// middle, one last task; defaults and tags as users write them.
pub fn pipeline(dag_id: &str, tasks: usize) -> String {
    let mut text = header(dag_id, "a pipeline");
    text.push_str("tags: [bench, parse]\ndefault_args:\n  retries: 1\n  retry_delay: 30s\n");
    text.push_str("tasks:\n");
    let tasks = tasks.max(2);
    let middle: Vec<String> = (1..tasks - 1).map(task_id).collect();
    task(&mut text, &task_id(0), &[]);
    for t in &middle {
        task(&mut text, t, &[task_id(0)]);
    }
    let last_deps = if middle.is_empty() {
        vec![task_id(0)]
    } else {
        middle
    };
    task(&mut text, &task_id(tasks - 1), &last_deps);
    text
}

/// W14: `layers` layers of `width` tasks, task *i* of a layer depending on tasks *i* and
/// *i*+1 (mod `width`) of the layer before (W9's shape, smaller); task ids in layer order.
pub fn layers(dag_id: &str, layers: usize, width: usize) -> String {
    let mut text = header(dag_id, "layers of parallel tasks");
    text.push_str("tasks:\n");
    for layer in 0..layers {
        for i in 0..width {
            let deps = if layer == 0 {
                vec![]
            } else {
                let before = (layer - 1) * width;
                let mut deps = vec![task_id(before + i)];
                if width > 1 {
                    deps.push(task_id(before + (i + 1) % width));
                }
                deps
            };
            task(&mut text, &task_id(layer * width + i), &deps);
        }
    }
    text
}

/// The body every W8 task runs: it notes the wall-clock instant it began (the first thing the
/// callable does, so the harness can set it against the instant the task was claimed),
/// checks that what its upstream tasks returned are such instants, and returns its own.
const PYTHON_STEP: &str = r#"import time
from datetime import datetime

from airflow.decorators import dag, task


@task
def step(upstream=None):
    started = time.time()
    values = upstream if isinstance(upstream, list) else [upstream]
    for value in values:
        if value is not None and not isinstance(value, float):
            raise ValueError(f"upstream returned {value!r}, expected an instant")
    return started

"#;

/// W8: [`chain`] as a Python DAG of `@task`s, each taking the previous one's result.
pub fn python_chain(dag_id: &str, n: usize) -> String {
    let mut text = python_header(dag_id, "a straight chain of Python tasks");
    text.push_str("    previous = None\n");
    let _ = writeln!(text, "    for i in range({n}):");
    text.push_str("        previous = step.override(task_id=f\"t{i:04d}\")(previous)\n");
    text.push_str("\n\nbuild()\n");
    text
}

/// W8: [`fan`] as a Python DAG: `start`'s result goes to each parallel task, and all of
/// theirs to `end`.
pub fn python_fan(dag_id: &str, width: usize) -> String {
    let mut text = python_header(dag_id, "start, a fan-out of Python tasks, end");
    text.push_str("    first = step.override(task_id=\"start\")()\n");
    let _ = writeln!(
        text,
        "    middle = [step.override(task_id=f\"t{{i:04d}}\")(first) for i in range({width})]"
    );
    text.push_str("    step.override(task_id=\"end\")(middle)\n");
    text.push_str("\n\nbuild()\n");
    text
}

fn python_header(dag_id: &str, what: &str) -> String {
    let mut text = PYTHON_STEP.to_owned();
    let _ = writeln!(
        text,
        "@dag(dag_id=\"{dag_id}\", description=\"updraft-bench, {what}\", \
         schedule=None, start_date=datetime(2024, 1, 1))\ndef build():"
    );
    text
}

/// W9: [`layers`] as a Python DAG file in Airflow's classic style (`DAG`, `BashOperator`,
/// `set_upstream`), built by loops: the YAML of 50,000 tasks would pass the 1 MiB limit of a
/// YAML DAG file. Task ids `t00000`… in layer order.
pub fn python_layers(dag_id: &str, layers: usize, width: usize) -> String {
    format!(
        r#"from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="{dag_id}",
    description="updraft-bench, {layers} layers of {width} tasks",
    schedule=None,
    start_date=datetime(2024, 1, 1),
):
    previous = None
    for layer in range({layers}):
        current = [
            BashOperator(task_id=f"t{{layer * {width} + i:05d}}", bash_command="true")
            for i in range({width})
        ]
        if previous is not None:
            for i, t in enumerate(current):
                t.set_upstream(previous[i])
                if {width} > 1:
                    previous[(i + 1) % {width}] >> t
        previous = current
"#
    )
}

/// Writes `(file name, text)` pairs into `folder`.
pub fn write(folder: &Path, files: impl IntoIterator<Item = (String, String)>) -> Result<()> {
    for (name, text) in files {
        let path = folder.join(&name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn header(dag_id: &str, what: &str) -> String {
    format!("dag_id: {dag_id}\ndescription: updraft-bench, {what}\n")
}

fn task(text: &mut String, id: &str, deps: &[String]) {
    let _ = writeln!(text, "  - task_id: {id}\n    bash_command: \"true\"");
    if !deps.is_empty() {
        let _ = writeln!(text, "    dependencies: [{}]", deps.join(", "));
    }
}

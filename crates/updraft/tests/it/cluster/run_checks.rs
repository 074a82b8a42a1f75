//! What cluster tests read from what the runs did: fields of a states document, waiting for a
//! condition, the identity lines tasks append to a shared file, and DAGs of chains that write
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value:#}"))
}

/// The task instance `task_id` in a states document.
pub fn task<'a>(states: &'a Value, task_id: &str) -> &'a Value {
    states["task_instances"]
        .as_array()
        .and_then(|tis| tis.iter().find(|ti| ti["task_id"] == task_id))
        .unwrap_or_else(|| panic!("no task {task_id} in {states:#}"))
}

pub fn state_of<'a>(states: &'a Value, task_id: &str) -> &'a str {
    str_field(task(states, task_id), "state")
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The lines `DAG RUN TASK TRY` that tasks append to a shared file, counted.
pub struct TryLines {
    pub counts: BTreeMap<(String, String, String, u32), usize>,
}

impl TryLines {
    pub fn read(path: &Path) -> TryLines {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut counts = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [dag, run, task, try_number] = parts[..] else {
                panic!("malformed line {line:?} in {}", path.display());
            };
            let try_number: u32 = try_number
                .parse()
                .unwrap_or_else(|_| panic!("bad try number in {line:?}"));
            *counts
                .entry((dag.into(), run.into(), task.into(), try_number))
                .or_insert(0) += 1;
        }
        TryLines { counts }
    }

    /// Tries that wrote their line more than once: the same try ran twice.
    pub fn duplicates(&self) -> Vec<String> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|((dag, run, task, try_number), n)| {
                format!("{dag} {run} {task} try {try_number}: {n} times")
            })
            .collect()
    }

    /// `(run, task)` pairs of `expected` that never wrote a line.
    pub fn missing(&self, dag: &str, runs: &[String], tasks: &[String]) -> Vec<String> {
        let seen: BTreeSet<(&str, &str)> = self
            .counts
            .keys()
            .filter(|(d, ..)| d == dag)
            .map(|(_, run, task, _)| (run.as_str(), task.as_str()))
            .collect();
        runs.iter()
            .flat_map(|run| tasks.iter().map(move |task| (run, task)))
            .filter(|(run, task)| !seen.contains(&(run.as_str(), task.as_str())))
            .map(|(run, task)| format!("{run}/{task}"))
            .collect()
    }

    /// Every try of `(run, task)` that wrote a line.
    pub fn tries_of(&self, run: &str, task: &str) -> Vec<u32> {
        self.counts
            .keys()
            .filter(|(_, r, t, _)| r == run && t == task)
            .map(|(.., try_number)| *try_number)
            .collect()
    }
}

/// The bash command of a task that appends its identity line to `file`, then runs `then`.
pub fn try_line_command(file: &Path, then: &str) -> String {
    format!(
        "echo \"{{{{ ti.dag_id }}}} {{{{ run_id }}}} {{{{ ti.task_id }}}} {{{{ ti.try_number }}}}\" >> {}{then}",
        file.display()
    )
}

/// A DAG of `chains` independent chains of `length` tasks (`c{i}_{j}`), each running
/// `command`, and the ids of its tasks.
pub fn chains_dag(
    chains: usize,
    length: usize,
    command: &str,
    extra: &str,
) -> (String, Vec<String>) {
    let mut text = format!("{extra}tasks:\n");
    let mut tasks = Vec::new();
    for i in 0..chains {
        for j in 0..length {
            let id = format!("c{i}_{j}");
            text.push_str(&format!(
                "  - task_id: {id}\n    bash_command: |\n      {command}\n"
            ));
            if j > 0 {
                text.push_str(&format!("    dependencies: [c{i}_{}]\n", j - 1));
            }
            tasks.push(id);
        }
    }
    (text, tasks)
}

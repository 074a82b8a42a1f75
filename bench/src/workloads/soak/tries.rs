//! The soak's DAGs, whose every try appends a line `DAG RUN TASK TRY PID` to one file, and the
//! check of those lines against the task instances the database ends with: no try ran twice,
//! and the try that made each task succeed really ran.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// The DAG triggered through the REST API at a steady rate: a fan and a chain.
pub const TRIGGERED_DAG: &str = "soak";
/// The DAG the schedulers run every minute on their own.
pub const SCHEDULED_DAG: &str = "soak_cron";
/// Parallel tasks in the middle of [`TRIGGERED_DAG`].
const FAN_WIDTH: usize = 6;
/// How long each task sleeps after writing its line: long enough that a killed worker takes
/// running tries with it.
const TASK_SLEEP: &str = "1";

/// The tasks of [`TRIGGERED_DAG`]: `start` → `fan_1`…`fan_6` → `join` → `chain_1` → `chain_2`.
pub fn triggered_tasks() -> Vec<String> {
    let mut tasks = vec!["start".to_owned()];
    tasks.extend((1..=FAN_WIDTH).map(|i| format!("fan_{i}")));
    tasks.extend(["join", "chain_1", "chain_2"].map(str::to_owned));
    tasks
}

/// The tasks of [`SCHEDULED_DAG`], a chain.
pub fn scheduled_tasks() -> Vec<String> {
    (1..=3).map(|i| format!("step_{i}")).collect()
}

/// `(file name, YAML)` of both DAGs, their tries writing to `lines`.
pub fn dag_files(lines: &Path) -> Vec<(String, String)> {
    let command = try_line_command(lines);
    let mut triggered = format!(
        "dag_id: {TRIGGERED_DAG}\ndescription: updraft-bench soak, a fan and a chain triggered \
         every few seconds\nmax_active_runs: 64\nmax_active_tasks: 64\ntasks:\n"
    );
    let fan: Vec<String> = (1..=FAN_WIDTH).map(|i| format!("fan_{i}")).collect();
    task(&mut triggered, "start", &[], &command);
    for t in &fan {
        task(&mut triggered, t, &["start".to_owned()], &command);
    }
    task(&mut triggered, "join", &fan, &command);
    task(&mut triggered, "chain_1", &["join".to_owned()], &command);
    task(&mut triggered, "chain_2", &["chain_1".to_owned()], &command);

    let mut scheduled = format!(
        "dag_id: {SCHEDULED_DAG}\ndescription: updraft-bench soak, a chain run every minute\n\
         schedule: \"* * * * *\"\nstart_date: 2024-01-01\ncatchup: false\ntasks:\n"
    );
    let steps = scheduled_tasks();
    for (i, t) in steps.iter().enumerate() {
        let deps = if i == 0 {
            vec![]
        } else {
            vec![steps[i - 1].clone()]
        };
        task(&mut scheduled, t, &deps, &command);
    }
    vec![
        (format!("{TRIGGERED_DAG}.yaml"), triggered),
        (format!("{SCHEDULED_DAG}.yaml"), scheduled),
    ]
}

/// The bash command of every task: its identity and the shell's pid, then a short sleep.
fn try_line_command(lines: &Path) -> String {
    format!(
        "echo \"{{{{ ti.dag_id }}}} {{{{ run_id }}}} {{{{ ti.task_id }}}} {{{{ ti.try_number }}}} $$\" >> {}; sleep {TASK_SLEEP}",
        lines.display()
    )
}

fn task(text: &mut String, id: &str, deps: &[String], command: &str) {
    let _ = writeln!(
        text,
        "  - task_id: {id}\n    bash_command: |\n      {command}"
    );
    if !deps.is_empty() {
        let _ = writeln!(text, "    dependencies: [{}]", deps.join(", "));
    }
}

/// One task instance as the database ends with it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub dag_id: String,
    pub run_id: String,
    pub run_state: String,
    pub task_id: String,
    pub state: String,
    pub try_number: u32,
}

/// `(dag, run, task, try)`.
type TryKey = (String, String, String, u32);

/// What the lines say against the database.
#[derive(Debug, Default)]
pub struct TryCheck {
    /// Lines read (tries that started).
    pub tries_seen: usize,
    /// Tries whose line was written more than once: the same try ran twice.
    pub duplicated: Vec<String>,
    /// Successful task instances whose successful try wrote no line: it never ran.
    pub lost: Vec<String>,
    /// Lines of tries the database does not know of (a try number above the task
    /// instance's, or no such task instance).
    pub unknown: Vec<String>,
    /// Lines that are not `DAG RUN TASK TRY PID`.
    pub malformed: Vec<String>,
    /// Tries after the first: the DAGs have no retries, so each is a try lost with a killed
    /// process and run again.
    pub retries: usize,
}

impl TryCheck {
    /// Checks the `lines` file's text against `instances`.
    pub fn of(lines: &str, instances: &[Instance]) -> TryCheck {
        let mut check = TryCheck::default();
        let mut seen: BTreeMap<TryKey, usize> = BTreeMap::new();
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            match parse_line(line) {
                Some(key) => *seen.entry(key).or_insert(0) += 1,
                None => check.malformed.push(line.to_owned()),
            }
        }
        check.tries_seen = seen.values().sum();
        check.duplicated = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|((dag, run, task, try_number), n)| {
                format!("{dag} {run} {task} try {try_number} ran {n} times")
            })
            .collect();
        let latest: BTreeMap<(&str, &str, &str), u32> = instances
            .iter()
            .map(|i| {
                (
                    (i.dag_id.as_str(), i.run_id.as_str(), i.task_id.as_str()),
                    i.try_number,
                )
            })
            .collect();
        check.unknown = seen
            .keys()
            .filter(|(dag, run, task, try_number)| {
                latest
                    .get(&(dag.as_str(), run.as_str(), task.as_str()))
                    .is_none_or(|latest| try_number > latest)
            })
            .map(|(dag, run, task, try_number)| format!("{dag} {run} {task} try {try_number}"))
            .collect();
        let ran: BTreeSet<(&str, &str, &str, u32)> = seen
            .keys()
            .map(|(dag, run, task, t)| (dag.as_str(), run.as_str(), task.as_str(), *t))
            .collect();
        check.lost = instances
            .iter()
            .filter(|i| i.state == "success")
            .filter(|i| {
                !ran.contains(&(
                    i.dag_id.as_str(),
                    i.run_id.as_str(),
                    i.task_id.as_str(),
                    i.try_number,
                ))
            })
            .map(|i| {
                format!(
                    "{} {} {} succeeded with try {} (run {}), which never ran",
                    i.dag_id, i.run_id, i.task_id, i.try_number, i.run_state
                )
            })
            .collect();
        check.retries = instances
            .iter()
            .map(|i| i.try_number.saturating_sub(1) as usize)
            .sum();
        check
    }
}

fn parse_line(line: &str) -> Option<TryKey> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [dag, run, task, try_number, pid] = parts[..] else {
        return None;
    };
    pid.parse::<u32>().ok()?;
    Some((
        dag.to_owned(),
        run.to_owned(),
        task.to_owned(),
        try_number.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(run: &str, task: &str, state: &str, try_number: u32) -> Instance {
        Instance {
            dag_id: "soak".into(),
            run_id: run.into(),
            run_state: "success".into(),
            task_id: task.into(),
            state: state.into(),
            try_number,
        }
    }

    #[test]
    fn clean_tries_pass_and_retries_are_counted() {
        let lines = "soak r1 a 1 100\nsoak r1 b 1 101\nsoak r1 b 2 102\n";
        let check = TryCheck::of(
            lines,
            &[
                instance("r1", "a", "success", 1),
                instance("r1", "b", "success", 2),
            ],
        );
        assert_eq!(check.tries_seen, 3);
        assert!(check.duplicated.is_empty() && check.lost.is_empty());
        assert!(check.unknown.is_empty() && check.malformed.is_empty());
        assert_eq!(check.retries, 1);
    }

    #[test]
    fn a_try_that_ran_twice_is_a_duplicate() {
        let lines = "soak r1 a 1 100\nsoak r1 a 1 200\n";
        let check = TryCheck::of(lines, &[instance("r1", "a", "success", 1)]);
        assert_eq!(check.duplicated, ["soak r1 a try 1 ran 2 times"]);
        assert!(check.lost.is_empty());
    }

    #[test]
    fn a_success_whose_try_never_ran_is_lost() {
        // Try 1 ran and was lost with its worker; try 2 is recorded a success but never ran.
        let lines = "soak r1 a 1 100\n";
        let check = TryCheck::of(lines, &[instance("r1", "a", "success", 2)]);
        assert_eq!(check.lost.len(), 1, "{:?}", check.lost);
        assert!(check.lost[0].contains("try 2"));
        // A task instance that is not a success (a failed run's) is not judged here.
        let check = TryCheck::of("", &[instance("r1", "a", "failed", 1)]);
        assert!(check.lost.is_empty());
    }

    #[test]
    fn tries_the_database_does_not_know_and_garbage_are_reported() {
        let lines = "soak r1 a 3 100\nsoak r9 a 1 100\nhalf a line\n";
        let check = TryCheck::of(lines, &[instance("r1", "a", "success", 3)]);
        assert_eq!(check.unknown, ["soak r9 a try 1"]);
        assert_eq!(check.malformed, ["half a line"]);
    }

    #[test]
    fn the_dags_have_the_tasks_the_check_expects() {
        let files = dag_files(Path::new("/tmp/x/tries.log"));
        assert_eq!(files.len(), 2);
        let triggered = &files[0].1;
        for t in triggered_tasks() {
            assert!(triggered.contains(&format!("task_id: {t}\n")), "{t}");
        }
        assert_eq!(triggered_tasks().len(), 10);
        assert!(triggered.contains(">> /tmp/x/tries.log; sleep"));
        assert!(files[1].1.contains("schedule: \"* * * * *\""));
    }
}

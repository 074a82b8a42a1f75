//! The setup/teardown decisions on small DAGs written one task per line:
//! `id [<- upstream…] [setup|teardown|teardown!]` (`teardown!` fails the run on failure).

use super::*;
use crate::{Dag, Operator, Schedule, Task, TriggerRule};

fn dag(lines: &[&str]) -> Dag {
    let tasks = lines
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace();
            let id = words.next().expect("a task id");
            let mut task = Task::new(id, Operator::Empty);
            for word in words {
                match word {
                    "<-" => {}
                    "setup" => task.role.is_setup = true,
                    "teardown" | "teardown!" => {
                        task.role.is_teardown = true;
                        task.role.on_failure_fail_dagrun = word == "teardown!";
                        task.trigger_rule = TriggerRule::AllDoneSetupSuccess;
                    }
                    upstream => task.dependencies.push(upstream.to_string()),
                }
            }
            task
        })
        .collect();
    Dag {
        dag_id: "d".into(),
        description: None,
        schedule: Schedule::None,
        timezone: chrono_tz::UTC,
        start_date: None,
        end_date: None,
        catchup: false,
        max_active_runs: 1,
        max_active_tasks: 1,
        dagrun_timeout: None,
        max_consecutive_failed_dag_runs: 0,
        callbacks: Default::default(),
        tags: Vec::new(),
        params: Default::default(),
        default_args: Default::default(),
        asset_schedule: None,
        tasks,
    }
}

fn names(dag: &Dag, mask: &[bool]) -> Vec<String> {
    dag.tasks
        .iter()
        .zip(mask)
        .filter(|(_, &m)| m)
        .map(|(t, _)| t.task_id.clone())
        .collect()
}

fn ids(dag: &Dag, indexes: &[usize]) -> Vec<String> {
    indexes
        .iter()
        .map(|&i| dag.tasks[i].task_id.clone())
        .collect()
}

/// create >> query >> delete, with create >> delete: Airflow's basic example.
const BASIC: &[&str] = &[
    "create setup",
    "query <- create",
    "delete <- query create teardown",
];

#[test]
fn teardowns_do_not_decide_the_outcome_unless_they_may_fail_the_run() {
    let basic = dag(BASIC);
    assert_eq!(names(&basic, &outcome_tasks(&basic)), ["query"]);

    let failing = dag(&[
        "create setup",
        "query <- create",
        "delete <- query create teardown!",
    ]);
    assert_eq!(names(&failing, &outcome_tasks(&failing)), ["delete"]);

    // A work task after the teardown decides too, as does the work task before it.
    let after = dag(&[
        "create setup",
        "query <- create",
        "delete <- query create teardown",
        "report <- delete",
    ]);
    assert_eq!(names(&after, &outcome_tasks(&after)), ["query", "report"]);

    // Only teardowns: their plain leaves decide.
    let only = dag(&["a teardown", "b <- a teardown"]);
    assert_eq!(names(&only, &outcome_tasks(&only)), ["b"]);

    let plain = dag(&["a", "b <- a", "c <- a"]);
    assert_eq!(names(&plain, &outcome_tasks(&plain)), ["b", "c"]);
}

#[test]
fn a_teardown_waits_for_every_task_between_its_setups_and_itself() {
    let d = dag(&[
        "create setup",
        "a <- create",
        "b <- create",
        "c <- a b",
        "delete <- c create teardown",
        "unrelated",
    ]);
    let scopes = teardown_scopes(&d);
    assert_eq!(ids(&d, &scopes[4]), ["a", "b"]);
    assert!(scopes[..4].iter().all(Vec::is_empty));
    // A teardown without setups has no scope.
    let lone = dag(&["a", "t <- a teardown"]);
    assert!(teardown_scopes(&lone)[1].is_empty());
}

#[test]
fn a_work_task_needs_the_setups_it_is_in_the_scope_of() {
    let d = dag(&[
        "create setup",
        "a <- create",
        "b <- a",
        "delete <- b create teardown",
        "after <- delete",
    ]);
    let needed = indirect_setups(&d);
    // `a` is directly downstream of the setup: its trigger rule sees it already.
    assert!(needed[1].is_empty());
    assert_eq!(ids(&d, &needed[2]), ["create"]);
    // The teardown is upstream of `after`, not downstream: `create` is not its setup.
    assert!(needed[4].is_empty());
    assert!(needed[0].is_empty() && needed[3].is_empty());
}

#[test]
fn clearing_a_work_task_clears_its_setups_and_teardowns() {
    let d = dag(BASIC);
    let clear = |ids: &[&str], up: bool, down: bool| {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        clear_selection(&d, &ids, up, down)
    };
    assert_eq!(
        clear(&["query"], false, false),
        ["create", "query", "delete"]
    );
    assert_eq!(
        clear(&["query"], false, true),
        ["create", "query", "delete"]
    );
    // A setup brings its teardown; a teardown alone is only itself.
    assert_eq!(clear(&["create"], false, false), ["create", "delete"]);
    assert_eq!(clear(&["delete"], false, false), ["delete"]);
    assert_eq!(clear(&["nothing"], false, true), Vec::<String>::new());

    // Downstream of a cleared task: its own setups come too.
    let two = dag(&[
        "start",
        "create setup",
        "work <- start create",
        "delete <- work create teardown",
        "other",
    ]);
    let ids = vec!["start".to_string()];
    assert_eq!(
        clear_selection(&two, &ids, false, true),
        ["start", "create", "work", "delete"]
    );
    assert_eq!(clear_selection(&two, &ids, false, false), ["start"]);
    // Upstream of a work task: its setup and that setup's teardown.
    let ids = vec!["work".to_string()];
    assert_eq!(
        clear_selection(&two, &ids, true, false),
        ["start", "create", "work", "delete"]
    );
}

//! Planning by change against planning every task: runs are played to their end with tries
//! that succeed, fail, retry or get skipped, and at every step the plan of the changed tasks
//! (with the kept run's record of changes) must equal the plan of the whole run.

use chrono::{DateTime, Duration, Utc};
use updraft_model::TaskState;
use updraft_store::Transition;

use super::tests::{graph, instances, now};
use super::*;
use crate::dice::Dice;
use crate::kept_states::KeptRun;

/// The whole-run plan and the plan by change of `kept` at `now`, which must agree; returns
/// the latter.
fn plan_both(graph: &DagGraph, kept: &mut KeptRun, now: DateTime<Utc>) -> RunPlan {
    let full = plan_run(graph, kept.tis(), now);
    let scope = kept.take_plan_scope(graph);
    let run_tis = kept.run_tis().expect("indexed by its first scope");
    let (mut scoped, walk) = plan_scope(graph, run_tis, &scope, MapInputs::default(), None, now);
    let planned: HashMap<i64, TaskState> =
        scoped.transitions.iter().map(|t| (t.ti_id, t.to)).collect();
    if scoped.expansions.is_empty() && kept.all_finished(&planned) {
        scoped.final_state = Some(run_outcome(graph, &walk));
    }
    let sorted = |plan: &RunPlan| {
        let mut t: Vec<(i64, TaskState, TaskState)> = plan
            .transitions
            .iter()
            .map(|t| (t.ti_id, t.from, t.to))
            .collect();
        t.sort_unstable_by_key(|t| t.0);
        t
    };
    assert_eq!(sorted(&scoped), sorted(&full), "scope {scope:?}");
    assert_eq!(scoped.final_state, full.final_state);
    scoped
}

fn apply(kept: &mut KeptRun, transitions: &[Transition]) {
    for t in transitions {
        kept.update(t.ti_id, |ti| {
            ti.state = t.to;
            ti.try_number += u32::from(t.new_try);
            ti.next_retry_at = t.next_retry_at;
        });
    }
}

/// Plays a run of `graph` to its end; returns how many plans it took.
fn play(graph: &DagGraph, seed: u64) -> usize {
    let mut dice = Dice(seed);
    let mut kept = KeptRun::new(instances(graph, ""));
    for step in 1..500 {
        // Time goes on between passes: a retry comes due without any instance changing.
        let now = now() + Duration::seconds(10 * step as i64);
        let plan = plan_both(graph, &mut kept, now);
        if plan.final_state.is_some() {
            return step;
        }
        apply(&mut kept, &plan.transitions);
        // Some of the waiting instances run and end, as a worker's finishes arrive.
        let waiting: Vec<(i64, TaskState)> = kept
            .tis()
            .iter()
            .filter(|ti| {
                matches!(
                    ti.state,
                    TaskState::Scheduled | TaskState::UpForRetry | TaskState::Running
                )
            })
            .map(|ti| (ti.id, ti.state))
            .collect();
        for (id, state) in waiting {
            let ended = match (state, dice.roll(8)) {
                (TaskState::UpForRetry, 0) => Some((TaskState::UpForRetry, Some(-1))),
                (TaskState::UpForRetry, _) => None,
                (_, 0) => None,
                (_, 1) => Some((TaskState::Running, None)),
                (_, 2) => Some((TaskState::Failed, None)),
                (_, 3) => Some((TaskState::UpForRetry, Some(25))),
                (_, 4) => Some((TaskState::UpForRetry, Some(-5))),
                (_, 5) => Some((TaskState::Skipped, None)),
                _ => Some((TaskState::Success, None)),
            };
            if let Some((to, retry_in)) = ended {
                kept.update(id, |ti| {
                    ti.state = to;
                    ti.next_retry_at = retry_in.map(|s| now + Duration::seconds(s));
                });
            }
        }
    }
    panic!("the run of seed {seed} did not end");
}

#[test]
fn planning_by_change_plans_as_planning_everything() {
    let dags: &[&[&str]] = &[
        &["a", "b <- a", "c <- a", "d <- b c"],
        &[
            "a",
            "b <- a",
            "c <- a one_failed",
            "d <- b c none_failed",
            "e <- d all_done",
            "f <- a b one_success",
            "g <- f always",
            "h <- e g none_failed_min_one_success",
            "i <- h all_failed",
            "j <- h none_skipped",
        ],
        &[
            "s setup",
            "x <- s empty",
            "w <- s",
            "v <- w",
            "t <- v teardown",
            "u <- t",
        ],
        // A teardown waits for a task of its scope that is not directly upstream of it.
        &["s setup", "a <- s", "d <- a always", "t <- s d teardown"],
        // A work task waits for a setup that is not directly upstream of it.
        &["s setup", "x <- s always", "w <- x", "t <- s w teardown"],
        &[
            "s setup",
            "w <- s",
            "t <- w teardown!",
            "z <- w one_done",
            "y <- z all_skipped",
        ],
    ];
    let mut plans = 0;
    for lines in dags {
        let graph = graph(lines);
        for seed in 1..=40 {
            plans += play(&graph, seed * 7919);
        }
    }
    assert!(
        plans > dags.len() * 40 * 3,
        "the runs were too short to compare: {plans} plans"
    );
}

#[test]
fn a_run_planned_by_change_ends_with_its_last_instance() {
    let graph = graph(&["a", "b <- a", "c <- b"]);
    let mut kept = KeptRun::new(instances(&graph, ""));
    let first = plan_both(&graph, &mut kept, now());
    assert_eq!(first.transitions.len(), 1);
    apply(&mut kept, &first.transitions);
    for task in ["a", "b", "c"] {
        let id = kept
            .tis()
            .iter()
            .find(|ti| ti.task_id == task)
            .map(|ti| ti.id)
            .unwrap();
        kept.update(id, |ti| ti.state = TaskState::Success);
        let plan = plan_both(&graph, &mut kept, now());
        apply(&mut kept, &plan.transitions);
        let expected = (task == "c").then_some(DagRunState::Success);
        assert_eq!(plan.final_state, expected, "after {task}");
    }
}

//! Deciding what happens next in one DAG run: which tasks become ready, skipped or
//! upstream-failed by their trigger rules, which retries are due, and whether the run is over.
//! Pure: the caller loads the task instances and applies the plan as compare-and-set writes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use updraft_model::sensor::jitter_salt;
use updraft_model::trigger_rule::{Decision, UpstreamSummary};
use updraft_model::{
    AfterPoke, DagRunState, ExternalVerdict, Mapping, Task, TaskState, DEFAULT_MAX_MAP_LENGTH,
};
use updraft_store::{Expansion, TaskInstance, Transition, XCom};

use crate::external_wait::Verdicts;
use crate::graph::DagGraph;
use crate::kept_states::PlanScope;
use reexpand::Revise;
use smallvec::SmallVec;

#[derive(Debug, Default, PartialEq)]
pub struct RunPlan {
    pub transitions: Vec<Transition>,
    /// Mapped tasks expanded by their transition to `scheduled` (applied with it).
    pub expansions: Vec<Expansion>,
    /// A mapped task is ready but maps over upstream results that were not passed in: plan
    /// again with the run's XComs ([`MapInputs::xcoms`]). That task is left as it is.
    pub needs_xcoms: bool,
    /// Why a ready mapped task could not be expanded (it is marked `upstream_failed`).
    pub mapping_errors: Vec<String>,
    /// A wait on another DAG is due: plan again with its poke's verdict
    /// ([`MapInputs::external`]). That task is left as it is.
    pub needs_external: bool,
    /// Waits on other DAGs that this plan ends other than by success: task id, the state it
    /// ends in, and why.
    pub external_endings: Vec<(String, TaskState, String)>,
    /// Set when every task is finished once the transitions are applied.
    pub final_state: Option<DagRunState>,
}

/// What planning needs beyond the task instances: for expanding mapped tasks, and for the
/// waits on time the scheduler decides itself.
#[derive(Debug, Clone, Copy)]
pub struct MapInputs<'a> {
    /// The run's XComs as a downstream sees them ([`XCom::as_seen_downstream`]), when loaded.
    pub xcoms: Option<&'a [XCom]>,
    /// Airflow's `max_map_length`.
    pub max_map_length: usize,
    /// The end of the run's data interval, which a `TimeDeltaSensor` waits from (`now`
    /// when not given).
    pub interval_end: Option<DateTime<Utc>>,
    /// What the due waits on other DAGs found, when poked.
    pub external: Option<&'a Verdicts>,
}

impl Default for MapInputs<'_> {
    fn default() -> Self {
        MapInputs {
            xcoms: None,
            max_map_length: DEFAULT_MAX_MAP_LENGTH,
            interval_end: None,
            external: None,
        }
    }
}

pub fn plan_run(graph: &DagGraph, tis: &[TaskInstance], now: DateTime<Utc>) -> RunPlan {
    plan_run_mapped(graph, tis, MapInputs::default(), now)
}

/// [`plan_run`], expanding the mapped tasks that are ready: into as many instances as their
/// values (skipped for none, as in Airflow).
pub fn plan_run_mapped(
    graph: &DagGraph,
    tis: &[TaskInstance],
    inputs: MapInputs<'_>,
    now: DateTime<Utc>,
) -> RunPlan {
    plan_run_held(graph, tis, inputs, None, now)
}

/// [`plan_run_mapped`], where the tasks marked in `held` (by index into the DAG's tasks) may
/// not start yet: their previous run has not done what `depends_on_past` asks
/// (the `past` module). They can still be skipped or upstream-failed, as in Airflow.
pub fn plan_run_held(
    graph: &DagGraph,
    tis: &[TaskInstance],
    inputs: MapInputs<'_>,
    held: Option<&[bool]>,
    now: DateTime<Utc>,
) -> RunPlan {
    let by_task = instances_by_task(graph, tis);
    let run = RunTis {
        tis,
        by_task: &by_task,
    };
    let (mut plan, walk) = plan_scope(graph, run, &PlanScope::Everything, inputs, held, now);
    let all_finished =
        (0..graph.dag.tasks.len()).all(|i| walk.states(i).iter().all(|s| s.is_finished()));
    if all_finished && plan.expansions.is_empty() {
        plan.final_state = Some(run_outcome(graph, &walk));
    }
    plan
}

/// A run's task instances with, per task of its DAG version, the positions of its instances
/// (one, or one per map index once a mapped task expanded).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunTis<'a> {
    pub tis: &'a [TaskInstance],
    pub by_task: &'a [Instances<u32>],
}

/// Per task of `graph`, the positions of its instances in `tis`.
pub(crate) fn instances_by_task(graph: &DagGraph, tis: &[TaskInstance]) -> Vec<Instances<u32>> {
    let mut by_task: Vec<Instances<u32>> = vec![Instances::new(); graph.dag.tasks.len()];
    let mut guess = 0;
    for (at, ti) in tis.iter().enumerate() {
        if let (Some(i), Ok(at)) = (task_index(graph, &ti.task_id, guess), u32::try_from(at)) {
            by_task[i].push(at);
            guess = i + 1;
        }
    }
    by_task
}

/// Plans the tasks of `scope` in dependency order, and what depends on a task whose state
/// this plan changes. The final state is left to the caller: it alone knows whether the
/// instances outside the scope are finished. Returns the walk, which holds the states the
/// plan gave.
pub(crate) fn plan_scope<'a>(
    graph: &'a DagGraph,
    run: RunTis<'a>,
    scope: &PlanScope,
    inputs: MapInputs<'_>,
    held: Option<&[bool]>,
    now: DateTime<Utc>,
) -> (RunPlan, Walk<'a>) {
    let mut walk = Walk {
        graph,
        run,
        planned: HashMap::new(),
    };
    let mut plan = RunPlan::default();
    match scope {
        PlanScope::Everything => {
            for &i in &graph.topological {
                walk.plan_task(i, &mut plan, inputs, held, now);
            }
        }
        PlanScope::Changed { changed, timed } => {
            // Tasks by their place in the dependency order, each once: a task planned here
            // is planned after everything upstream of it.
            let mut next: BinaryHeap<Reverse<(u32, usize)>> = BinaryHeap::new();
            let mut seen: HashSet<usize> = HashSet::new();
            let mut push = |next: &mut BinaryHeap<_>, task: usize| {
                let at = graph.topological_position[task];
                if at != u32::MAX && seen.insert(task) {
                    next.push(Reverse((at, task)));
                }
            };
            for &task in changed {
                push(&mut next, task);
                for &d in &graph.dependents[task] {
                    push(&mut next, d);
                }
            }
            for &task in timed {
                push(&mut next, task);
            }
            while let Some(Reverse((_, i))) = next.pop() {
                if walk.plan_task(i, &mut plan, inputs, held, now) {
                    for &d in &graph.dependents[i] {
                        push(&mut next, d);
                    }
                }
            }
        }
    }
    (plan, walk)
}

/// A plan on its way through a run's tasks: the states it gave some of them, over the
/// states the run has.
pub(crate) struct Walk<'a> {
    graph: &'a DagGraph,
    run: RunTis<'a>,
    planned: HashMap<usize, Instances<TaskState>>,
}

impl<'a> Walk<'a> {
    /// The states of task `i`'s instances, as planned so far.
    fn states(&self, i: usize) -> Instances<TaskState> {
        match self.planned.get(&i) {
            Some(states) => states.clone(),
            None => self.run.by_task[i]
                .iter()
                .map(|&at| self.run.tis[at as usize].state)
                .collect(),
        }
    }

    fn instances_of(&self, i: usize) -> Instances<&'a TaskInstance> {
        let tis = self.run.tis;
        self.run.by_task[i]
            .iter()
            .map(|&at| &tis[at as usize])
            .collect()
    }

    fn planned_states(&mut self, i: usize) -> &mut Instances<TaskState> {
        if !self.planned.contains_key(&i) {
            let states = self.states(i);
            self.planned.insert(i, states);
        }
        self.planned.entry(i).or_default()
    }

    /// Plans task `i`'s instances; true when the plan changed any of them.
    fn plan_task(
        &mut self,
        i: usize,
        plan: &mut RunPlan,
        inputs: MapInputs<'_>,
        held: Option<&[bool]>,
        now: DateTime<Utc>,
    ) -> bool {
        let graph = self.graph;
        let task = &graph.dag.tasks[i];
        let own = self.instances_of(i);
        let mut changed = false;
        for (j, ti) in own.iter().enumerate() {
            let mut expand_to = None;
            // When a wait on time that begins here is over (or a wait on another DAG pokes).
            let mut wait_until = None;
            let mut new_try = false;
            let to = match ti.state {
                TaskState::None => {
                    let summary = summarize(graph.upstream[i].iter().flat_map(|&u| {
                        let is_setup = graph.dag.tasks[u].role.is_setup;
                        let states = self.states(u);
                        let seen = if map_group::same_group(graph, i, u) {
                            map_group::upstream_in_group(
                                ti.map_index,
                                &self.instances_of(u),
                                &states,
                            )
                        } else {
                            instances(&states)
                        };
                        seen.into_iter().map(move |s| (s, is_setup))
                    }));
                    let indirect_setups = graph.indirect_setups[i]
                        .iter()
                        .flat_map(|&s| instances(&self.states(s)));
                    let decision = match setups_decide(indirect_setups) {
                        Some(settled) => settled,
                        None => match task.trigger_rule.decide(&summary) {
                            // A teardown also waits for every task between its setups and itself.
                            Decision::Run
                                if !graph.teardown_scope[i]
                                    .iter()
                                    .all(|&t| self.states(t).iter().all(|s| s.is_finished())) =>
                            {
                                Decision::Wait
                            }
                            decision => decision,
                        },
                    };
                    let held = held.is_some_and(|h| h.get(i).copied().unwrap_or(false));
                    match decision {
                        Decision::Wait => None,
                        Decision::Run if held => None,
                        // A task of a mapped group expands as soon as it may run at all; each
                        // instance then waits for its own upstream instances.
                        Decision::Run if task.map_group.is_some() && ti.map_index < 0 => {
                            match task.mapping.as_ref().map(|m| expansion(task, m, inputs)) {
                                None => Some(TaskState::Scheduled),
                                Some(Expand::NeedsXcoms) => {
                                    plan.needs_xcoms = true;
                                    None
                                }
                                Some(Expand::To(0)) => Some(TaskState::Skipped),
                                Some(Expand::To(n)) => {
                                    expand_to = Some(n);
                                    Some(TaskState::None)
                                }
                                Some(Expand::Fails(message)) => {
                                    plan.mapping_errors.push(message);
                                    Some(TaskState::UpstreamFailed)
                                }
                            }
                        }
                        // A wait on time is held here, as a due instant: no process, no slot.
                        Decision::Run if task.operator.time_wait().is_some() => {
                            let due = task.operator.time_wait().map(|wait| {
                                wait.due(
                                    inputs.interval_end.unwrap_or(now),
                                    graph.dag.timezone,
                                    now,
                                )
                            });
                            match due {
                                Some(due) if due > now => {
                                    wait_until = Some(due);
                                    Some(TaskState::Deferred)
                                }
                                _ => Some(TaskState::Success),
                            }
                        }
                        // A wait on another DAG: the scheduler pokes it at once, and holds
                        // it between pokes. It is the sensor's try, as in Airflow.
                        Decision::Run if task.operator.external_wait().is_some() => {
                            wait_until = Some(now);
                            new_try = true;
                            Some(TaskState::Deferred)
                        }
                        Decision::Run if task.operator.runs_nothing() => Some(TaskState::Success),
                        Decision::Run => match task.mapping.as_ref() {
                            None => Some(TaskState::Scheduled),
                            Some(mapping) if ti.map_index >= 0 => {
                                let have = own.len();
                                match reexpand::revise(task, mapping, ti, have, inputs) {
                                    Revise::Keep => Some(TaskState::Scheduled),
                                    Revise::NeedsXcoms => {
                                        plan.needs_xcoms = true;
                                        None
                                    }
                                    Revise::Remove => Some(TaskState::Removed),
                                    // In a mapped group the new instances wait for their
                                    // own index upstream: they, and this one, stay `none`.
                                    Revise::Grow(n) => {
                                        expand_to = Some(n);
                                        Some(match task.map_group {
                                            Some(_) => TaskState::None,
                                            None => TaskState::Scheduled,
                                        })
                                    }
                                    Revise::Fails(message) => {
                                        plan.mapping_errors.push(message);
                                        Some(TaskState::UpstreamFailed)
                                    }
                                }
                            }
                            Some(mapping) => match expansion(task, mapping, inputs) {
                                Expand::NeedsXcoms => {
                                    plan.needs_xcoms = true;
                                    None
                                }
                                Expand::To(0) => Some(TaskState::Skipped),
                                Expand::To(n) => {
                                    expand_to = Some(n);
                                    Some(TaskState::Scheduled)
                                }
                                Expand::Fails(message) => {
                                    plan.mapping_errors.push(message);
                                    Some(TaskState::UpstreamFailed)
                                }
                            },
                        },
                        Decision::Skip => Some(TaskState::Skipped),
                        Decision::UpstreamFailed => Some(TaskState::UpstreamFailed),
                    }
                }
                TaskState::UpForRetry if ti.next_retry_at.is_none_or(|at| at <= now) => {
                    Some(TaskState::Scheduled)
                }
                TaskState::Deferred if ti.next_retry_at.is_none_or(|at| at <= now) => {
                    match task.operator.external_wait() {
                        // Its instant came. (A rescheduled sensor's next poke is queued
                        // directly.)
                        None => Some(TaskState::Success),
                        Some(_) => match inputs.external.and_then(|v| v.get(&ti.id)) {
                            None => {
                                plan.needs_external = true;
                                None
                            }
                            Some(verdict) => {
                                let (to, next_poke, why) =
                                    after_external_poke(task, ti, verdict, now);
                                wait_until = next_poke;
                                if let Some(why) = why {
                                    plan.external_endings.push((ti.task_id.clone(), to, why));
                                }
                                Some(to)
                            }
                        },
                    }
                }
                _ => None,
            };
            if let Some(to) = to {
                self.planned_states(i)[j] = to;
                changed = true;
                plan.transitions.push(Transition {
                    ti_id: ti.id,
                    try_number: ti.try_number,
                    from: ti.state,
                    to,
                    now,
                    new_try,
                    next_retry_at: wait_until,
                });
            }
            if let Some(count) = expand_to {
                // Downstream planned in this pass sees every instance, not only the first.
                let have = if ti.map_index < 0 { 1 } else { own.len() };
                self.planned_states(i).extend(std::iter::repeat_n(
                    to.unwrap_or(TaskState::Scheduled),
                    count.saturating_sub(have),
                ));
                changed = true;
                plan.expansions.push(Expansion {
                    ti_id: ti.id,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
        }
        changed
    }
}

/// What a wait on another DAG becomes after a poke found `verdict`: its state, its next
/// poke while it waits, and why it ended when not by success. A failure (or a timeout,
/// counted from the first poke) skips the sensor instead with `soft_fail`, as in Airflow.
fn after_external_poke(
    task: &Task,
    ti: &TaskInstance,
    verdict: &ExternalVerdict,
    now: DateTime<Utc>,
) -> (TaskState, Option<DateTime<Utc>>, Option<String>) {
    let sensing = task.sensor.clone().unwrap_or_default();
    let failed = |why: String| {
        let to = if sensing.soft_fail {
            TaskState::Skipped
        } else {
            TaskState::Failed
        };
        (to, None, Some(why))
    };
    match verdict {
        ExternalVerdict::Met => (TaskState::Success, None, None),
        ExternalVerdict::Failed(why) => failed(why.clone()),
        ExternalVerdict::Skipped(why) => (TaskState::Skipped, None, Some(why.clone())),
        ExternalVerdict::Pending => {
            let started = ti.start_date.unwrap_or(now);
            match sensing.after_poke(started, now, jitter_salt(ti.id, ti.try_number)) {
                AfterPoke::PokeAt(at) => (TaskState::Deferred, Some(at), None),
                AfterPoke::TimedOut => failed(format!(
                    "Sensor has timed out; run duration of {}s is more than the specified \
                     timeout of {}s.",
                    (now - started).num_seconds(),
                    sensing.timeout.as_secs()
                )),
            }
        }
    }
}

/// What the setups a work task needs beyond its direct upstream decide (Airflow's setup
/// constraint): a failed one fails it, a skipped one skips it, an unfinished one keeps it
/// waiting; `None` when they all succeeded, and its trigger rule decides.
fn setups_decide(setups: impl Iterator<Item = Option<TaskState>>) -> Option<Decision> {
    let (mut skipped, mut waiting) = (false, false);
    for state in setups {
        match state {
            Some(TaskState::Success) | Some(TaskState::Removed) | None => {}
            Some(TaskState::Failed) | Some(TaskState::UpstreamFailed) => {
                return Some(Decision::UpstreamFailed)
            }
            Some(TaskState::Skipped) => skipped = true,
            Some(_) => waiting = true,
        }
    }
    if skipped {
        Some(Decision::Skip)
    } else if waiting {
        Some(Decision::Wait)
    } else {
        None
    }
}

/// What a ready mapped task's placeholder becomes.
enum Expand {
    To(usize),
    NeedsXcoms,
    Fails(String),
}

fn expansion(task: &Task, mapping: &Mapping, inputs: MapInputs<'_>) -> Expand {
    let xcoms = match (mapping.reads_upstream(), inputs.xcoms) {
        (true, None) => return Expand::NeedsXcoms,
        (_, xcoms) => xcoms.unwrap_or_default(),
    };
    let resolve = |task_id: &str| {
        xcoms
            .iter()
            .find(|x| x.task_id == task_id && x.key == "return_value")
            .map(|x| &x.value)
    };
    match mapping.length(&task.task_id, &resolve, inputs.max_map_length) {
        Ok(n) => Expand::To(n),
        Err(e) => Expand::Fails(e.to_string()),
    }
}

/// A task's instances' states for its downstream: one per instance, or `None` for a task
/// without any (not in this run's version).
fn instances(states: &[TaskState]) -> Instances<Option<TaskState>> {
    if states.is_empty() {
        smallvec::smallvec![None]
    } else {
        states.iter().copied().map(Some).collect()
    }
}

/// A task's instances in a plan, inline while there is only one.
pub(crate) type Instances<T> = SmallVec<[T; 1]>;

/// The index of `task_id` among the DAG's tasks. Task instances are read in the order their
/// tasks were created, so the task after the previous one (`guess`) is tried before hashing.
fn task_index(graph: &DagGraph, task_id: &str, guess: usize) -> Option<usize> {
    match graph.dag.tasks.get(guess) {
        Some(task) if task.task_id == task_id => Some(guess),
        _ => graph.index.get(task_id).copied(),
    }
}

/// Counts the states of a task's direct upstream (each mapped instance once), given with
/// whether each is a setup.
fn summarize(upstream: impl Iterator<Item = (Option<TaskState>, bool)>) -> UpstreamSummary {
    let mut s = UpstreamSummary::default();
    for (state, is_setup) in upstream {
        s.total += 1;
        if is_setup {
            s.setups += 1;
            match state {
                Some(TaskState::Success) => s.setup_success += 1,
                Some(TaskState::Skipped) => s.setup_skipped += 1,
                _ => {}
            }
        }
        match state {
            Some(TaskState::Success) => s.success += 1,
            Some(TaskState::Failed) => s.failed += 1,
            Some(TaskState::UpstreamFailed) => s.upstream_failed += 1,
            Some(TaskState::Skipped) => s.skipped += 1,
            Some(TaskState::Removed) | None => s.removed += 1,
            _ => continue,
        }
        s.done += 1;
    }
    s
}

/// Airflow's rule, once every task is finished: the run failed if any leaf failed or was
/// upstream-failed, and succeeded otherwise; a teardown counts only with
/// `on_failure_fail_dagrun`, and does not hide the tasks upstream of it.
pub(crate) fn run_outcome(graph: &DagGraph, walk: &Walk<'_>) -> DagRunState {
    let leaf_failed = (0..graph.dag.tasks.len())
        .any(|i| graph.decides_outcome[i] && walk.states(i).iter().any(|s| s.is_failure()));
    if leaf_failed {
        DagRunState::Failed
    } else {
        DagRunState::Success
    }
}

mod map_group;
#[cfg(test)]
mod map_group_tests;
#[cfg(test)]
mod mapping_tests;
mod reexpand;
#[cfg(test)]
mod scope_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod time_wait_tests;

//! Evaluating a run: planning its task instances from their states and the DAG, and
//! committing the transitions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{debug, error, info};
use updraft_model::{DagRunState, TaskState};
use updraft_store::{
    Expansion, StoreError, Transition, TransitionNotifications, TransitionResult, XCom,
};

use crate::kept_states::PlanScope;
use crate::{
    earliest, plan::plan_scope, DagGraph, MapInputs, PassOutcome, Scheduler, SchedulerError,
};

/// A wait on another DAG that a plan ends: the task, its end state, and why.
type ExternalEnding = (String, TaskState, String);

/// The plans of a pass's runs, made but not yet applied.
pub(crate) struct Planned<'r> {
    pub(crate) transitions: Vec<Transition>,
    expansions: Vec<Expansion>,
    notifications: Vec<TransitionNotifications>,
    /// The run of each transition.
    pub(crate) transition_runs: Vec<i64>,
    expanding_runs: Vec<i64>,
    finished_runs: Vec<(&'r updraft_store::DagRun, DagRunState, Arc<DagGraph>)>,
    external_endings: Vec<(&'r updraft_store::DagRun, Vec<ExternalEnding>)>,
    /// Runs where a wait on another DAG began: evaluated again at once for its first poke.
    poke_now: Vec<i64>,
    /// The pass's instant the plans were made at.
    now: DateTime<Utc>,
}

impl Planned<'_> {
    /// Whether the plans are compare-and-sets alone, each of another task instance: no run
    /// ends, no mapped task expands, nothing is notified or recorded beside them. Such plans
    /// may be applied together with the queueing that follows them ([`Store::queue_planned`]).
    ///
    /// [`Store::queue_planned`]: updraft_store::Store::queue_planned
    pub(crate) fn is_plain(&self) -> bool {
        let mut seen = HashSet::new();
        self.expansions.is_empty()
            && self.notifications.is_empty()
            && self.expanding_runs.is_empty()
            && self.finished_runs.is_empty()
            && self.external_endings.is_empty()
            && self.poke_now.is_empty()
            && self.transitions.iter().all(|t| seen.insert(t.ti_id))
    }
}

impl Scheduler {
    /// Plans `runs` and applies the plans; returns the DAG ids of the runs that finished.
    pub(crate) async fn evaluate(
        &self,
        runs: &[updraft_store::DagRun],
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<Vec<String>, SchedulerError> {
        let planned = self.plan_runs(runs, now, outcome).await?;
        self.apply_planned(runs, planned).await
    }

    /// Applies `planned` (the plans of `runs`) and settles what follows; returns the DAG ids
    /// of the runs that finished.
    pub(crate) async fn apply_planned(
        &self,
        runs: &[updraft_store::DagRun],
        mut planned: Planned<'_>,
    ) -> Result<Vec<String>, SchedulerError> {
        let results = self
            .store
            .apply_plan_notifying(
                planned.transitions.clone(),
                std::mem::take(&mut planned.expansions),
                std::mem::take(&mut planned.notifications),
            )
            .await?;
        self.keep_transitions(&planned.transition_runs, &planned.transitions, &results);
        self.settle(runs, planned, &results).await
    }

    /// Plans `runs` from the states kept of them (reading what a plan needs beyond them:
    /// upstream results, a wait's poke, the past).
    pub(crate) async fn plan_runs<'r>(
        &self,
        runs: &'r [updraft_store::DagRun],
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<Planned<'r>, SchedulerError> {
        let mut transitions = Vec::new();
        let mut expansions = Vec::new();
        let mut expanding_runs = Vec::new();
        let mut transition_runs = Vec::new();
        let mut finished_runs = Vec::new();
        let mut external_endings = Vec::new();
        let mut notifications = Vec::new();
        let mut poke_now = Vec::new();
        for run in runs {
            let Some(graph) = self.run_graph(run, now).await? else {
                continue;
            };
            if let Ok(mut limits) = self.dag_limits.lock() {
                limits.insert(run.dag_id.clone(), graph.dag.max_active_tasks);
            }
            self.remember_task_limits(&graph);
            self.keep_run(run.id).await?;
            // Read only when the plan would start a task that depends on its past.
            let mut held: Option<Option<Vec<bool>>> = None;
            let mut scope = None;
            let mut xcoms = None;
            let mut external = None;
            let (plan, retry_due) = loop {
                let inputs = MapInputs {
                    xcoms: xcoms.as_deref(),
                    max_map_length: self.config.max_map_length,
                    interval_end: Some(run.data_interval_end),
                    external: external.as_ref(),
                };
                let (plan, retry_due, starts_past) = {
                    // Planned in place: copying a wide run's task instances on every pass
                    // would cost more than planning it.
                    let mut kept = self.kept();
                    let Some(kept_run) = kept.get_mut(&run.id) else {
                        // Dropped by a conflict while the store was read: the next pass
                        // reads the run again.
                        self.signal.runs_changed([run.id]);
                        break (crate::RunPlan::default(), None);
                    };
                    let retry_due = kept_run.next_due_after(now);
                    // The scope is taken once per pass: planning again with more inputs
                    // (XComs, a poke's verdict, the past) looks at the same tasks.
                    let scope = scope.get_or_insert_with(|| kept_run.take_plan_scope(&graph));
                    let kept_run = &*kept_run;
                    let Some(run_tis) = kept_run.run_tis() else {
                        break (crate::RunPlan::default(), None);
                    };
                    let (mut plan, walk) = plan_scope(
                        &graph,
                        run_tis,
                        scope,
                        inputs,
                        held.as_ref().and_then(|h| h.as_deref()),
                        now,
                    );
                    let starts_past =
                        held.is_none() && starts_past_dependent(&graph, run_tis.tis, &plan);
                    // An expansion adds instances yet to run.
                    if !starts_past && plan.expansions.is_empty() {
                        let planned: HashMap<i64, TaskState> =
                            plan.transitions.iter().map(|t| (t.ti_id, t.to)).collect();
                        if kept_run.all_finished(&planned) {
                            plan.final_state = Some(crate::plan::run_outcome(&graph, &walk));
                        }
                    }
                    (plan, retry_due, starts_past)
                };
                if starts_past {
                    held = Some(self.held_tasks(run, &graph).await?);
                    continue;
                }
                // Only a plan of every task knows that none waits for the run before: a plan
                // of what changed may not have looked at the task that waits.
                if held.is_none() && scope == Some(PlanScope::Everything) {
                    self.forget_past_waiter(run);
                }
                // A mapped task is ready and maps over upstream results: read them once.
                if plan.needs_xcoms && xcoms.is_none() {
                    let stored = self.store.xcoms_for_run(run.id).await?;
                    xcoms = Some(XCom::as_seen_downstream(stored));
                    continue;
                }
                // A wait on another DAG is due: poke it, then plan with what it found.
                if plan.needs_external && external.is_none() {
                    external = Some(self.poke_external_waits(run, &graph, now).await?);
                    continue;
                }
                break (plan, retry_due);
            };
            {
                let kept = self.kept();
                if let Some(kept_run) = kept.get(&run.id) {
                    notifications.extend(crate::callbacks::plan_notifications(
                        &graph, run, kept_run, &plan, now,
                    ));
                }
            }
            if !plan.external_endings.is_empty() {
                external_endings.push((run, plan.external_endings.clone()));
            }
            if starts_external_wait(&plan, now) {
                poke_now.push(run.id);
            }
            for message in &plan.mapping_errors {
                error!(dag_id = %run.dag_id, run_id = %run.run_id, "{message}");
            }
            if !plan.expansions.is_empty() {
                expanding_runs.push(run.id);
            }
            expansions.extend(plan.expansions);
            transition_runs.extend(std::iter::repeat_n(run.id, plan.transitions.len()));
            if let Some(state) = plan.final_state {
                finished_runs.push((run, state, graph.clone()));
            }
            outcome.next_due = earliest(outcome.next_due, retry_due);
            transitions.extend(plan.transitions);
        }
        Ok(Planned {
            transitions,
            expansions,
            notifications,
            transition_runs,
            expanding_runs,
            finished_runs,
            external_endings,
            poke_now,
            now,
        })
    }

    /// What follows the store's answer to `planned` (`results`, already applied to the kept
    /// states): the runs that grew are read again, later runs waiting for their past are
    /// released, waits poked, runs ended. Returns the DAG ids of the runs that finished.
    pub(crate) async fn settle(
        &self,
        runs: &[updraft_store::DagRun],
        planned: Planned<'_>,
        results: &[TransitionResult],
    ) -> Result<Vec<String>, SchedulerError> {
        let Planned {
            transition_runs,
            expanding_runs,
            finished_runs,
            external_endings,
            mut poke_now,
            now,
            ..
        } = planned;
        // The new instances have ids only the store knows: keep the runs as stored.
        for run in expanding_runs {
            let tis = self.store.task_instances(run).await?;
            self.kept()
                .insert(run, crate::kept_states::KeptRun::new(tis));
        }
        // A run's changes may release the later runs of its DAG that wait for their past.
        let changed: HashSet<i64> = transition_runs
            .iter()
            .zip(results)
            .filter(|(_, result)| **result == TransitionResult::Applied)
            .map(|(run, _)| *run)
            .collect();
        let changed_runs: Vec<&updraft_store::DagRun> =
            runs.iter().filter(|r| changed.contains(&r.id)).collect();
        let released = self.past_waiters_of(&changed_runs);
        if !released.is_empty() {
            self.signal.runs_changed(released);
        }
        poke_now.retain(|run| changed.contains(run));
        if !poke_now.is_empty() {
            self.signal.runs_changed(poke_now);
        }
        for (run, endings) in external_endings {
            if changed.contains(&run.id) {
                self.record_external_endings(run, &endings, now).await?;
            }
        }
        let conflicts = results
            .iter()
            .filter(|r| **r == TransitionResult::Conflict)
            .count();
        let mut finished = Vec::new();
        if conflicts > 0 {
            debug!(conflicts, "some transitions lost a race; re-evaluating");
            self.signal.everything_changed();
            return Ok(finished);
        }
        for (run, state, graph) in finished_runs {
            {
                let mut kept = self.kept();
                kept.remove(&run.id);
            }
            self.forget_past_waiter(run);
            let max_failed = graph.dag.max_consecutive_failed_dag_runs;
            let reason = match state {
                DagRunState::Success => "success",
                _ => "task_failure",
            };
            let notifications =
                crate::deadlines::run_end_notifications(&graph.dag, run, state, reason, now);
            if self
                .store
                .end_dag_run(run.id, DagRunState::Running, state, now, notifications)
                .await?
                == TransitionResult::Applied
            {
                info!(dag_id = %run.dag_id, run_id = %run.run_id, state = %state, "dag run finished");
                self.trace_run_end(run, state, now);
                if let Some(metrics) = updraft_metrics::get() {
                    let took = run
                        .start_date
                        .and_then(|start| (now - start).to_std().ok())
                        .unwrap_or_default();
                    metrics.dag_run_ended(&run.dag_id, state.as_str(), took);
                }
                finished.push(run.dag_id.clone());
                if state == DagRunState::Failed && max_failed > 0 {
                    self.pause_after_failures(&run.dag_id, max_failed, now)
                        .await?;
                }
            }
        }
        Ok(finished)
    }

    /// The graph a run is pinned to. A definition that cannot be loaded (missing, or written by
    /// an incompatible version) fails that run, so one bad run never stops the others.
    pub(crate) async fn run_graph(
        &self,
        run: &updraft_store::DagRun,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<DagGraph>>, SchedulerError> {
        match self.dags.get(&run.dag_id, run.dag_version).await {
            Ok(graph) => Ok(Some(graph)),
            Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt(_))) => {
                error!(dag_id = %run.dag_id, run_id = %run.run_id, error = %e, "the run's DAG definition cannot be loaded; failing the run");
                if !run.state.is_finished()
                    && self
                        .store
                        .set_dag_run_state(run.id, run.state, DagRunState::Failed, now)
                        .await?
                        == TransitionResult::Applied
                {
                    self.trace_run_end(run, DagRunState::Failed, now);
                }
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The current graph of a DAG, for creating its scheduled runs; a definition that cannot be
    /// loaded skips that DAG (with an error) instead of stopping every other one.
    pub(crate) async fn dag_graph(
        &self,
        record: &updraft_store::DagRecord,
    ) -> Result<Option<Arc<DagGraph>>, SchedulerError> {
        match self.dags.get(&record.dag_id, record.version).await {
            Ok(graph) => Ok(Some(graph)),
            Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt(_))) => {
                error!(dag_id = %record.dag_id, error = %e, "the DAG's definition cannot be loaded; not scheduling it");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `plan` begins a wait whose first poke is due now: only a wait on another DAG
/// does (a wait on time whose instant passed ends at once).
fn starts_external_wait(plan: &crate::RunPlan, now: DateTime<Utc>) -> bool {
    plan.transitions.iter().any(|t| {
        t.from == TaskState::None
            && t.to == TaskState::Deferred
            && t.next_retry_at.is_some_and(|at| at <= now)
    })
}

/// Whether `plan` starts (schedules, or succeeds as an empty task) a task instance of a task
/// that depends on its past: only then is the previous run read.
fn starts_past_dependent(
    graph: &DagGraph,
    tis: &[updraft_store::TaskInstance],
    plan: &crate::RunPlan,
) -> bool {
    if !graph.any_depends_on_past {
        return false;
    }
    let starting: HashSet<i64> = plan
        .transitions
        .iter()
        .filter(|t| t.from == TaskState::None)
        .filter(|t| matches!(t.to, TaskState::Scheduled | TaskState::Success))
        .map(|t| t.ti_id)
        .collect();
    tis.iter()
        .filter(|ti| starting.contains(&ti.id))
        .filter_map(|ti| graph.index.get(&ti.task_id))
        .any(|&i| graph.dag.tasks[i].past.applies())
}

//! What one pass does, in which order: over the runs, over finished tries, into free places.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering as AtomicOrdering;

use chrono::{DateTime, Utc};
use tracing::{info, warn};
use updraft_model::{DagRunState, RunType, TaskState};
use updraft_store::{Occupancy, RunStart, TransitionResult};

use crate::queueing::Places;
use crate::{earliest, FinishedTry, PassOutcome, Scheduler, SchedulerError};

impl Scheduler {
    /// One scheduling pass. `full` looks at every unfinished run and every DAG's schedule;
    /// otherwise only the `dirty` runs are evaluated. Running runs are evaluated before queued
    /// runs are started, so a run that finishes frees its `max_active_runs` place for a queued
    /// run in the same pass (nothing else would wake the scheduler for it).
    pub async fn pass(
        &self,
        full: bool,
        dirty: HashSet<i64>,
    ) -> Result<PassOutcome, SchedulerError> {
        self.pass_with(full, dirty, Vec::new()).await
    }

    /// [`Scheduler::pass`], also evaluating the runs of `finished` tries (applied to the
    /// kept task states rather than read again).
    pub async fn pass_with(
        &self,
        full: bool,
        dirty: HashSet<i64>,
        finished: Vec<FinishedTry>,
    ) -> Result<PassOutcome, SchedulerError> {
        self.pass_reading(full, full, false, dirty, finished).await
    }

    /// [`Scheduler::pass_with`]; a full pass reads the kept runs' task instances again only
    /// if `reread` (a sweep plans from the states kept), and any pass reads the unfinished
    /// runs if `read_runs` (one of them may start).
    pub(crate) async fn pass_reading(
        &self,
        full: bool,
        reread: bool,
        read_runs: bool,
        dirty: HashSet<i64>,
        finished: Vec<FinishedTry>,
    ) -> Result<PassOutcome, SchedulerError> {
        let now = self.clock.now();
        let only_tries_finished = !full
            && !read_runs
            && dirty.is_empty()
            && !finished.is_empty()
            && self.config.only_run.is_none();
        let mut dirty = dirty;
        // The DAG and pool of each try that left a place (queued or running) in a kept run.
        let mut freed = Vec::new();
        // The task of each, when it limits its instances across the DAG's runs.
        let mut freed_tasks = Vec::new();
        // Tries that ended in this scheduler's runs that left places no pass can tell
        // filled: in runs it does not keep (which places is not known), or of tasks that
        // limit their instances across the DAG's runs (another scheduler's instance of the
        // task may wait for that place alone).
        let mut unplaced = 0;
        {
            let mut kept = self.kept();
            if reread {
                kept.clear();
            }
            for run in &dirty {
                kept.remove(run);
            }
            for done in &finished {
                dirty.insert(done.dag_run_id);
                let Some(kept_run) = kept.get_mut(&done.dag_run_id) else {
                    unplaced += usize::from(self.owns(done.dag_run_id));
                    continue;
                };
                // A late word of an earlier try must not undo what was read since.
                if kept_run
                    .get(done.ti_id)
                    .is_none_or(|ti| ti.try_number > done.try_number)
                {
                    continue;
                }
                kept_run.update(done.ti_id, |ti| {
                    if ti.state.occupies_slot() && !done.state.occupies_slot() {
                        freed.push((ti.dag_id.clone(), ti.pool.clone()));
                        freed_tasks.push((ti.dag_id.clone(), ti.task_id.clone()));
                    }
                    ti.state = done.state;
                    ti.try_number = done.try_number;
                    ti.next_retry_at = done.next_retry_at;
                });
            }
        }
        unplaced += self.limited_across_runs(&freed_tasks);
        // Places owed to the other schedulers by a pass that failed before it could say.
        let owed = self.announcement_owed.swap(false, AtomicOrdering::Relaxed);
        if owed || !freed.is_empty() || unplaced > 0 {
            // Kept owed until this pass has said whatever it must.
            self.announcement_owed.store(true, AtomicOrdering::Relaxed);
        }
        let quick = if only_tries_finished {
            self.pass_over_finished_tries(&finished, &freed, now)
                .await?
        } else {
            None
        };
        let (mut outcome, taken) = match quick {
            Some(done) => done,
            None => self.pass_over_runs(full, dirty, now).await?,
        };
        self.announcement_owed.store(false, AtomicOrdering::Relaxed);
        // Alone (`standalone`, one scheduler), nobody is told: the places are not counted.
        if self.config.only_run.is_none()
            && self.other_schedulers_alive() > 0
            && (owed || self.places_left_free(&freed, unplaced, &taken))
        {
            match self.store.announce_free_places().await {
                Ok(()) => outcome.told_places_free = true,
                Err(e) => {
                    // The next pass says it again; until then, their sweeps fill the places.
                    self.announcement_owed.store(true, AtomicOrdering::Relaxed);
                    warn!(error = %e, "could not tell the other schedulers of free places");
                }
            }
        }
        Ok(outcome)
    }

    /// How many of `tasks` (DAG, task) limit their instances across their DAG's runs
    /// (`max_active_tis_per_dag`).
    fn limited_across_runs(&self, tasks: &[(String, String)]) -> usize {
        let Ok(limits) = self.task_limits.lock() else {
            return tasks.len();
        };
        tasks
            .iter()
            .filter(|(dag_id, task_id)| {
                limits
                    .get(dag_id)
                    .and_then(|tasks| tasks.get(task_id))
                    .is_some_and(|(per_dag, _)| per_dag.is_some())
            })
            .count()
    }

    /// The pass of [`Self::pass_reading`] that reads the unfinished runs: all of them
    /// (`full`) or the `dirty` ones. Returns the places the instances it queued took.
    async fn pass_over_runs(
        &self,
        full: bool,
        dirty: HashSet<i64>,
        now: DateTime<Utc>,
    ) -> Result<(PassOutcome, Places), SchedulerError> {
        let mut outcome = PassOutcome::default();
        if full && self.config.only_run.is_none() {
            self.beat(now).await?;
            self.refresh_paused().await?;
            self.create_scheduled_runs(now).await?;
            self.advance_backfills(now).await?;
            self.expire_leases(now).await?;
        }
        if self.config.only_run.is_none() && (full || !dirty.is_empty()) {
            // A finished try or an external event may have queued asset events: their
            // consumers' runs are created before the runs are read, so this pass adopts them.
            self.create_asset_triggered_runs(now).await?;
        }
        let runs = self.store.unfinished_dag_runs().await?;
        if let Ok(mut records) = self.run_records.lock() {
            *records = runs.iter().map(|run| (run.id, run.clone())).collect();
        }
        if self.config.only_run.is_none() && (full || self.has_new_runs(&runs)) {
            self.refresh_ownership(&runs, now).await?;
        }
        let mut running_per_dag: HashMap<String, u32> = HashMap::new();
        // A backfill's runs do not count against their DAG's `max_active_runs` (Airflow 3):
        // the backfill limits them itself.
        for run in &runs {
            if run.state == DagRunState::Running && run.run_type != RunType::Backfill {
                *running_per_dag.entry(run.dag_id.clone()).or_default() += 1;
            }
        }
        // Later runs of the changed runs' DAGs may wait for their past (`depends_on_past`);
        // a full pass looks at every run that waits (the run before may be another
        // scheduler's, whose plans are not told to this one).
        let released = if full {
            self.all_past_waiters()
        } else {
            let changed: Vec<_> = runs.iter().filter(|r| dirty.contains(&r.id)).collect();
            self.past_waiters_of(&changed)
        };
        {
            let mut kept = self.kept();
            for run in &released {
                if let Some(kept_run) = kept.get_mut(run) {
                    kept_run.plan_everything();
                }
            }
        }
        let (queued, mut running): (Vec<_>, Vec<_>) = runs
            .into_iter()
            .filter(|run| self.in_scope(run))
            .partition(|run| run.state == DagRunState::Queued);
        if full {
            let unfinished: Vec<&updraft_store::DagRun> = queued.iter().chain(&running).collect();
            self.check_deadlines(&unfinished, now, &mut outcome).await?;
            // A run that timed out frees its place for a queued run of its DAG at once.
            let timed_out = self.time_out_runs(&running, now, &mut outcome).await?;
            for run in running.iter().filter(|run| timed_out.contains(&run.id)) {
                if let Some(active) = running_per_dag.get_mut(&run.dag_id) {
                    *active = active.saturating_sub(1);
                }
            }
            running.retain(|run| !timed_out.contains(&run.id));
        }
        let to_evaluate: Vec<_> = running
            .into_iter()
            .filter(|run| full || dirty.contains(&run.id) || released.contains(&run.id))
            .collect();
        let backfill_dags: HashSet<String> = to_evaluate
            .iter()
            .filter(|run| run.run_type == RunType::Backfill)
            .map(|run| run.dag_id.clone())
            .collect();
        let finished = self.evaluate(&to_evaluate, now, &mut outcome).await?;
        if finished.iter().any(|dag_id| backfill_dags.contains(dag_id)) {
            // A backfill run ended: its backfill may create the next one, which only a full
            // pass does; not waiting for the sweep.
            self.signal.everything_changed();
        }
        for dag_id in finished {
            if let Some(active) = running_per_dag.get_mut(&dag_id) {
                *active = active.saturating_sub(1);
            }
        }
        let mut started = Vec::new();
        for mut run in queued {
            let Some(graph) = self.run_graph(&run, now).await? else {
                continue;
            };
            let backfill = run.run_type == RunType::Backfill;
            let limit = if backfill {
                u32::MAX
            } else {
                graph.dag.max_active_runs
            };
            let mut unlimited = 0;
            let active = if backfill {
                &mut unlimited
            } else {
                running_per_dag.entry(run.dag_id.clone()).or_default()
            };
            if *active >= limit {
                continue;
            }
            // The count above is this pass's snapshot; the store counts again, atomically,
            // because other schedulers may be starting runs of the same DAG right now.
            match self.store.start_dag_run(run.id, limit, now).await? {
                RunStart::Started => {
                    *active += 1;
                    run.state = DagRunState::Running;
                    info!(dag_id = %run.dag_id, run_id = %run.run_id, "dag run started");
                    if let Some(metrics) = updraft_metrics::get() {
                        // Airflow's schedule delay: from the end of a scheduled run's data
                        // interval (when it was due) to its start.
                        let delay = (run.run_type == RunType::Scheduled)
                            .then(|| (now - run.data_interval_end).to_std().ok())
                            .flatten();
                        metrics.dag_run_started(&run.dag_id, delay);
                    }
                    started.push(run);
                }
                RunStart::AtLimit => *active = limit,
                RunStart::NotQueued => {}
            }
        }
        if let Ok(mut records) = self.run_records.lock() {
            records.extend(started.iter().map(|run| (run.id, run.clone())));
        }
        if !self.evaluate(&started, now, &mut outcome).await?.is_empty() {
            // A run finished as soon as it started (it had nothing to execute): the next
            // queued run of its DAG may start now, not at the next sweep.
            self.signal.runs_changed(std::iter::empty());
        }
        let taken = self.queue_ready_work(now).await?;
        outcome.queued = taken.len();
        if outcome.queued > 0 {
            // notify_one keeps a permit, so a worker busy claiming still sees it.
            self.work_queued.notify_one();
        }
        if full && self.config.only_run.is_none() {
            let next_run = self.store.earliest_next_dagrun().await?;
            let next_retry = self.store.earliest_retry().await?;
            outcome.next_due = earliest(outcome.next_due, earliest(next_run, next_retry));
        }
        Ok((outcome, taken))
    }

    /// A pass that only queues, into places another scheduler left free: what the run loop
    /// does when told [`SchedulerSignal::places_free`](crate::SchedulerSignal::places_free).
    pub async fn fill_free_places(&self) -> Result<PassOutcome, SchedulerError> {
        let now = self.clock.now();
        // Nothing of its own could go anywhere: the occupancy need not be read.
        if self.pick_items(&Occupancy::default(), now).is_empty() {
            return Ok(PassOutcome::default());
        }
        let taken = self.queue_ready_work(now).await?;
        if !taken.is_empty() {
            self.work_queued.notify_one();
        }
        Ok(PassOutcome {
            queued: taken.len(),
            ..PassOutcome::default()
        })
    }

    /// Whether places that tries of this scheduler's runs `freed` may stay free after the
    /// pass `taken` places: some is not taken again, or `unplaced` tries left places no
    /// pass can tell filled. The owner of a run answers its tries' ends; the others fill
    /// only what it leaves (when every scheduler answered every finish, they read the
    /// occupancy after the owner had filled the place, and three schedulers ran W5 slower
    /// than one).
    fn places_left_free(
        &self,
        freed: &[(String, String)],
        unplaced: usize,
        taken: &Places,
    ) -> bool {
        if unplaced > 0 {
            return true;
        }
        let mut left = freed.to_vec();
        for place in taken {
            if let Some(i) = left.iter().position(|p| p == place) {
                left.swap_remove(i);
            }
        }
        !left.is_empty()
    }
}

impl Scheduler {
    /// A pass over tries that finished in runs this scheduler owns and keeps, or in runs
    /// another scheduler owns, when nothing else changed: their runs are at hand, so neither
    /// the unfinished runs nor the asset queue are read. Another scheduler's runs are its to
    /// plan, and the places their tries freed its to fill (it says when it leaves some free:
    /// [`Change::PlacesFree`](updraft_store::Change::PlacesFree)); they may only release
    /// runs of the same DAG waiting for their past. `None` (nothing done) when a run is not at
    /// hand or a try that succeeded in an own run has outlets (an asset event may start a
    /// run, which a pass that reads the runs adopts; in another's run, its owner's pass does).
    /// Returns the places the instances it queued took.
    async fn pass_over_finished_tries(
        &self,
        finished: &[FinishedTry],
        freed: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Option<(PassOutcome, Places)>, SchedulerError> {
        let ids: std::collections::BTreeSet<i64> =
            finished.iter().map(|done| done.dag_run_id).collect();
        let (runs, others): (Vec<updraft_store::DagRun>, Vec<updraft_store::DagRun>) = {
            let Ok(records) = self.run_records.lock() else {
                return Ok(None);
            };
            let (mut runs, mut others) = (Vec::new(), Vec::new());
            for id in &ids {
                match records.get(id) {
                    Some(run) if run.state == DagRunState::Running && self.in_scope(run) => {
                        runs.push(run.clone())
                    }
                    // Its state as last read does not matter (only its DAG does): the run
                    // may have started since, which its owner tells nobody.
                    Some(run)
                        if self.config.only_run.is_none() && self.owned_by_another(run.id) =>
                    {
                        others.push(run.clone())
                    }
                    _ => return Ok(None),
                }
            }
            (runs, others)
        };
        // The task of each try that succeeded in an own run, to see whether it has outlets.
        let succeeded: Vec<(i64, String)> = {
            let kept = self.kept();
            let mut succeeded = Vec::new();
            for done in finished {
                if !runs.iter().any(|run| run.id == done.dag_run_id) {
                    continue;
                }
                let Some(ti) = kept
                    .get(&done.dag_run_id)
                    .and_then(|run| run.get(done.ti_id))
                else {
                    return Ok(None);
                };
                if done.state == TaskState::Success {
                    succeeded.push((done.dag_run_id, ti.task_id.clone()));
                }
            }
            succeeded
        };
        for run in &runs {
            let Some(graph) = self.run_graph(run, now).await? else {
                return Ok(None);
            };
            let has_outlets = |task_id: &str| {
                graph
                    .index
                    .get(task_id)
                    .is_none_or(|&i| !graph.dag.tasks[i].outlets.is_empty())
            };
            if succeeded
                .iter()
                .any(|(run_id, task_id)| *run_id == run.id && has_outlets(task_id))
            {
                return Ok(None);
            }
        }
        let changed: Vec<&updraft_store::DagRun> = runs.iter().chain(&others).collect();
        let released = self.past_waiters_of(&changed);
        if !released.is_empty() {
            self.signal.runs_changed(released);
        }
        let mut outcome = PassOutcome::default();
        if runs.is_empty() {
            return Ok(Some((outcome, Places::new())));
        }
        let (ended, taken) = match self.occupancy_after(freed) {
            Some(occupancy) => {
                self.plan_and_queue(&runs, occupancy, now, &mut outcome)
                    .await?
            }
            None => {
                // The occupancy is read while the runs are planned, not after: a plan moves
                // only instances that never started, so it changes no count, and the pass
                // saves a round trip.
                let (ended, occupancy) = tokio::join!(
                    self.evaluate(&runs, now, &mut outcome),
                    self.store.occupancy()
                );
                let ended = ended?;
                (ended, self.queue_within(occupancy?, now).await?)
            }
        };
        if runs
            .iter()
            .any(|run| run.run_type == RunType::Backfill && ended.contains(&run.dag_id))
        {
            // A backfill may create its next run, which only a full pass does.
            self.signal.everything_changed();
        } else if !ended.is_empty() {
            // A queued run of the DAG may start now: a pass that reads the runs starts it.
            self.signal.runs_changed(std::iter::empty());
        }
        outcome.queued = taken.len();
        if outcome.queued > 0 {
            self.work_queued.notify_one();
        }
        Ok(Some((outcome, taken)))
    }

    /// Plans `runs` and queues within `occupancy`: a plain plan (compare-and-sets alone) and
    /// the queueing in one call to the store, with the plan's moves kept before the picks
    /// (so that what it schedules is picked) and undone by reading a run again where the
    /// store refused one. Returns the DAG ids of the runs that finished and the places the
    /// instances it queued took.
    async fn plan_and_queue(
        &self,
        runs: &[updraft_store::DagRun],
        occupancy: updraft_store::Occupancy,
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<(Vec<String>, Places), SchedulerError> {
        let planned = self.plan_runs(runs, now, outcome).await?;
        if !planned.is_plain() {
            let ended = self.apply_planned(runs, planned).await?;
            return Ok((ended, self.queue_within(occupancy, now).await?));
        }
        let assumed = vec![TransitionResult::Applied; planned.transitions.len()];
        self.keep_transitions(&planned.transition_runs, &planned.transitions, &assumed);
        let items = self.pick_items(&occupancy, now);
        let (applied, queue_results) = if planned.transitions.is_empty() && items.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            self.store
                .queue_planned(
                    planned.transitions.clone(),
                    items.clone(),
                    self.config.parallelism,
                    now,
                )
                .await?
        };
        {
            let mut kept = self.kept();
            for (run, result) in planned.transition_runs.iter().zip(&applied) {
                if *result == TransitionResult::Conflict {
                    kept.remove(run);
                }
            }
        }
        let taken = self.keep_queued(occupancy, &items, &queue_results);
        let ended = self.settle(runs, planned, &applied).await?;
        Ok((ended, taken))
    }
}

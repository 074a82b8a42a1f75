//! The scheduler: creates DAG runs on time, moves task instances through their states in
//! dependency order, queues ready work within the concurrency limits, and fails the tries of
//! workers whose lease ran out. It reacts to events (a task finished, a run was triggered)
//! rather than rescanning; a periodic sweep is only the safety net.

mod dag_cache;
mod graph;
mod plan;
mod queueing;
mod trigger;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{watch, Notify};
use tracing::{debug, error, info, warn};
use updraft_model::{retry, timetable, DagRunState, TaskState};
use updraft_store::{
    DagRun, FinishReport, JobHeartbeat, JobKind, OwnRuns, QueueItem, RunStart, Store, StoreError,
    TaskInstance, TransitionResult,
};

pub use dag_cache::DagCache;
pub use graph::DagGraph;
pub use plan::{plan_run, RunPlan};
pub use trigger::{new_dag_run, TriggerRequest};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the scheduler reads the time; tests inject a fixed clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Task instances queued or running at once, across all DAGs (Airflow's `parallelism`).
    pub parallelism: u32,
    /// The safety-net sweep; events do the real work.
    pub sweep_interval: Duration,
    /// Only this run is scheduled (`dags test`); pause is ignored for it.
    pub only_run: Option<i64>,
    /// Unique per process; the owner recorded on the runs this scheduler evaluates and the id
    /// of its heartbeat.
    pub scheduler_id: String,
    pub hostname: String,
    /// What this process is, in the heartbeat table (`standalone` or `scheduler`).
    pub job_kind: JobKind,
    /// How long this scheduler's runs stay its own without a renewal (a full pass renews
    /// them); after that, another scheduler adopts them.
    pub run_lease: Duration,
    /// Workers' lease. After this scheduler could not reach the database, it expires no
    /// worker lease until this long has passed: workers could not renew theirs either.
    pub worker_lease: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            parallelism: 32,
            sweep_interval: Duration::from_secs(2),
            only_run: None,
            scheduler_id: "scheduler".to_string(),
            hostname: "localhost".to_string(),
            job_kind: JobKind::Scheduler,
            run_lease: Duration::from_secs(10),
            worker_lease: Duration::from_secs(30),
        }
    }
}

/// How other parts of the process tell the scheduler there is something to look at.
#[derive(Default)]
pub struct SchedulerSignal {
    notify: Notify,
    dirty_runs: Mutex<HashSet<i64>>,
    finished: Mutex<Vec<FinishedTry>>,
    full_pass: Mutex<bool>,
}

/// A try whose end was committed by this process's worker: the scheduler applies it to the
/// task states it keeps for the run instead of reading the whole run again.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedTry {
    pub dag_run_id: i64,
    pub ti_id: i64,
    pub try_number: u32,
    pub state: TaskState,
    pub next_retry_at: Option<DateTime<Utc>>,
}

impl FinishedTry {
    pub fn from_report(dag_run_id: i64, report: &FinishReport) -> Self {
        FinishedTry {
            dag_run_id,
            ti_id: report.ti_id,
            try_number: report.try_number,
            state: report.state,
            next_retry_at: report.next_retry_at,
        }
    }
}

impl SchedulerSignal {
    /// These tries ended (as committed): evaluate their downstream.
    pub fn tries_finished(&self, tries: impl IntoIterator<Item = FinishedTry>) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.extend(tries);
        }
        self.notify.notify_one();
    }

    /// Tasks of these runs changed in ways the scheduler did not see: read the runs again and
    /// evaluate them.
    pub fn runs_changed(&self, runs: impl IntoIterator<Item = i64>) {
        if let Ok(mut dirty) = self.dirty_runs.lock() {
            dirty.extend(runs);
        }
        self.notify.notify_one();
    }

    /// Something changed outside this process (a trigger, a clear, a pause): look at everything.
    pub fn everything_changed(&self) {
        if let Ok(mut full) = self.full_pass.lock() {
            *full = true;
        }
        self.notify.notify_one();
    }

    fn take(&self) -> (bool, HashSet<i64>, Vec<FinishedTry>) {
        let full = self
            .full_pass
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or(true);
        let dirty = self
            .dirty_runs
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        let finished = self
            .finished
            .lock()
            .map(|mut f| std::mem::take(&mut *f))
            .unwrap_or_default();
        (full, dirty, finished)
    }
}

pub struct Scheduler {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
    dags: DagCache,
    signal: Arc<SchedulerSignal>,
    /// Woken when work was queued, so local workers claim it at once.
    work_queued: Arc<Notify>,
    paused: Mutex<HashMap<String, bool>>,
    /// When the last pass completed (microseconds since the epoch), for health checks.
    heartbeat: Arc<AtomicI64>,
    /// The task instances of running runs as this scheduler last saw them, so that a finished
    /// task costs an update here rather than a read of its whole run. Refreshed from the
    /// store on every full pass and whenever a run changed in a way not seen here; a stale
    /// entry can only cause a compare-and-set conflict, which reloads.
    run_tasks: Mutex<HashMap<i64, Vec<TaskInstance>>>,
    /// `max_active_tasks` of the DAGs of the runs evaluated (the version each run is pinned to).
    dag_limits: Mutex<HashMap<String, u32>>,
    /// Which unfinished runs this scheduler owns (evaluates), and which it saw owned by
    /// others, as of the last ownership refresh. A run in neither set is new: its appearance
    /// refreshes ownership, so a triggered run is adopted at once.
    ownership: Mutex<Ownership>,
    /// When a pass last failed (the database was out of reach), for lease expiry.
    last_failure: Mutex<Option<DateTime<Utc>>>,
}

#[derive(Default)]
struct Ownership {
    owned: HashSet<i64>,
    foreign: HashSet<i64>,
}

/// What one pass found out about the future.
#[derive(Debug, Default)]
pub struct PassOutcome {
    /// The earliest instant something is due (a scheduled run, a retry).
    pub next_due: Option<DateTime<Utc>>,
    pub queued: usize,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
        signal: Arc<SchedulerSignal>,
        work_queued: Arc<Notify>,
        heartbeat: Arc<AtomicI64>,
    ) -> Self {
        Scheduler {
            dags: DagCache::new(store.clone()),
            store,
            clock,
            config,
            signal,
            work_queued,
            paused: Mutex::new(HashMap::new()),
            heartbeat,
            run_tasks: Mutex::new(HashMap::new()),
            dag_limits: Mutex::new(HashMap::new()),
            ownership: Mutex::new(Ownership::default()),
            last_failure: Mutex::new(None),
        }
    }

    /// Gives up this scheduler's runs and heartbeat so that the others take over at once
    /// (a clean shutdown, e.g. a rolling restart).
    pub async fn hand_over(&self) -> Result<(), SchedulerError> {
        if self.config.only_run.is_some() {
            return Ok(());
        }
        self.store
            .release_owned_dag_runs(&self.config.scheduler_id)
            .await?;
        self.store.end_job(&self.config.scheduler_id).await?;
        Ok(())
    }

    pub fn dag_cache(&self) -> &DagCache {
        &self.dags
    }

    /// Runs passes until `shutdown` turns true: on every signal, at the next due instant,
    /// and at least every sweep interval.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        self.signal.everything_changed();
        let mut last_full = std::time::Instant::now();
        let mut retry_full = false;
        // The earliest due instant seen by the last full pass; passes over changed runs only
        // do not look at schedules, so they must not forget it.
        let mut known_due: Option<DateTime<Utc>> = None;
        loop {
            if *shutdown.borrow() {
                if let Err(e) = self.hand_over().await {
                    warn!(error = %e, "could not hand the runs over; others adopt them when the lease runs out");
                }
                return;
            }
            let (mut full, dirty, finished) = self.signal.take();
            if retry_full || last_full.elapsed() >= self.config.sweep_interval {
                full = true;
            }
            if full {
                last_full = std::time::Instant::now();
            }
            retry_full = false;
            let wait = match self.pass_with(full, dirty, finished).await {
                Ok(outcome) => {
                    let now = self.clock.now();
                    self.heartbeat
                        .store(now.timestamp_micros(), Ordering::Relaxed);
                    if full {
                        // A due instant the full pass could not act on (a paused DAG's retry)
                        // waits for the sweep rather than spinning.
                        known_due = outcome.next_due.filter(|due| *due > now);
                    } else {
                        known_due = earliest(known_due, outcome.next_due);
                    }
                    let sweep = self.config.sweep_interval;
                    known_due
                        .map(|due| (due - now).to_std().unwrap_or(Duration::ZERO))
                        .map_or(sweep, |d| d.min(sweep))
                }
                Err(e) => {
                    if let Ok(mut last) = self.last_failure.lock() {
                        *last = Some(self.clock.now());
                    }
                    // Back off for real: a signal here would make the next wait return at once.
                    warn!(error = %e, "scheduler pass failed; retrying");
                    retry_full = true;
                    Duration::from_millis(500)
                }
            };
            if wait.is_zero() {
                known_due = None;
                self.signal.everything_changed();
                continue;
            }
            tokio::select! {
                _ = self.signal.notify.notified() => {}
                _ = tokio::time::sleep(wait) => self.signal.everything_changed(),
                _ = shutdown.changed() => {}
            }
        }
    }

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
        let now = self.clock.now();
        let mut dirty = dirty;
        {
            let mut kept = self.kept();
            if full {
                kept.clear();
            }
            for run in &dirty {
                kept.remove(run);
            }
            for done in &finished {
                dirty.insert(done.dag_run_id);
                let Some(ti) = kept
                    .get_mut(&done.dag_run_id)
                    .and_then(|tis| tis.iter_mut().find(|ti| ti.id == done.ti_id))
                else {
                    continue;
                };
                ti.state = done.state;
                ti.try_number = done.try_number;
                ti.next_retry_at = done.next_retry_at;
            }
        }
        let mut outcome = PassOutcome::default();
        if full && self.config.only_run.is_none() {
            self.beat(now).await?;
            self.refresh_paused().await?;
            self.create_scheduled_runs(now).await?;
            self.expire_leases(now).await?;
        }
        let runs = self.store.unfinished_dag_runs().await?;
        if self.config.only_run.is_none() && (full || self.has_new_runs(&runs)) {
            self.refresh_ownership(&runs, now).await?;
        }
        let mut running_per_dag: HashMap<String, u32> = HashMap::new();
        for run in &runs {
            if run.state == DagRunState::Running {
                *running_per_dag.entry(run.dag_id.clone()).or_default() += 1;
            }
        }
        let (queued, running): (Vec<_>, Vec<_>) = runs
            .into_iter()
            .filter(|run| self.in_scope(run))
            .partition(|run| run.state == DagRunState::Queued);
        let to_evaluate: Vec<_> = running
            .into_iter()
            .filter(|run| full || dirty.contains(&run.id))
            .collect();
        for dag_id in self.evaluate(&to_evaluate, now, &mut outcome).await? {
            if let Some(active) = running_per_dag.get_mut(&dag_id) {
                *active = active.saturating_sub(1);
            }
        }
        let mut started = Vec::new();
        for mut run in queued {
            let Some(graph) = self.run_graph(&run, now).await? else {
                continue;
            };
            let limit = graph.dag.max_active_runs;
            let active = running_per_dag.entry(run.dag_id.clone()).or_default();
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
                    started.push(run);
                }
                RunStart::AtLimit => *active = limit,
                RunStart::NotQueued => {}
            }
        }
        if !self.evaluate(&started, now, &mut outcome).await?.is_empty() {
            // A run finished as soon as it started (it had nothing to execute): the next
            // queued run of its DAG may start now, not at the next sweep.
            self.signal.runs_changed(std::iter::empty());
        }
        outcome.queued = self.queue_ready_work(now).await?;
        if outcome.queued > 0 {
            // notify_one keeps a permit, so a worker busy claiming still sees it.
            self.work_queued.notify_one();
        }
        if full && self.config.only_run.is_none() {
            let next_run = self.store.earliest_next_dagrun().await?;
            let next_retry = self.store.earliest_retry().await?;
            outcome.next_due = earliest(outcome.next_due, earliest(next_run, next_retry));
        }
        Ok(outcome)
    }

    /// Plans `runs` and applies the plans; returns the DAG ids of the runs that finished.
    async fn evaluate(
        &self,
        runs: &[updraft_store::DagRun],
        now: DateTime<Utc>,
        outcome: &mut PassOutcome,
    ) -> Result<Vec<String>, SchedulerError> {
        let mut transitions = Vec::new();
        let mut transition_runs = Vec::new();
        let mut finished_runs = Vec::new();
        for run in runs {
            let Some(graph) = self.run_graph(run, now).await? else {
                continue;
            };
            if let Ok(mut limits) = self.dag_limits.lock() {
                limits.insert(run.dag_id.clone(), graph.dag.max_active_tasks);
            }
            self.keep_run(run.id).await?;
            let (plan, retry_due) = {
                // Planned in place: copying a wide run's task instances on every pass would
                // cost more than planning it.
                let kept = self.kept();
                let tis = kept.get(&run.id).map(Vec::as_slice).unwrap_or_default();
                let retry_due = tis
                    .iter()
                    .filter(|ti| ti.state == TaskState::UpForRetry)
                    .filter_map(|ti| ti.next_retry_at)
                    .filter(|at| *at > now)
                    .min();
                (plan_run(&graph, tis, now), retry_due)
            };
            transition_runs.extend(std::iter::repeat_n(run.id, plan.transitions.len()));
            if let Some(state) = plan.final_state {
                finished_runs.push((run, state));
            }
            outcome.next_due = earliest(outcome.next_due, retry_due);
            transitions.extend(plan.transitions);
        }
        let results = self.store.apply_transitions(transitions.clone()).await?;
        self.keep_transitions(&transition_runs, &transitions, &results);
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
        for (run, state) in finished_runs {
            {
                let mut kept = self.kept();
                kept.remove(&run.id);
            }
            if self
                .store
                .set_dag_run_state(run.id, DagRunState::Running, state, now)
                .await?
                == TransitionResult::Applied
            {
                info!(dag_id = %run.dag_id, run_id = %run.run_id, state = %state, "dag run finished");
                finished.push(run.dag_id.clone());
            }
        }
        Ok(finished)
    }

    /// The kept task states. Only a cache: a panic elsewhere while it was held leaves nothing
    /// that the next full pass does not reload, so a poisoned lock is used as is.
    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<TaskInstance>>> {
        self.run_tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes sure a run's task instances are kept, reading them from the store if not.
    async fn keep_run(&self, dag_run_id: i64) -> Result<(), SchedulerError> {
        if self.kept().contains_key(&dag_run_id) {
            return Ok(());
        }
        let tis = self.store.task_instances(dag_run_id).await?;
        self.kept().insert(dag_run_id, tis);
        Ok(())
    }

    /// Records applied transitions in the kept task states; a conflict drops the run's entry,
    /// since the row is not what this scheduler thought.
    fn keep_transitions(
        &self,
        runs: &[i64],
        transitions: &[updraft_store::Transition],
        results: &[TransitionResult],
    ) {
        let mut kept = self.kept();
        for ((run, t), result) in runs.iter().zip(transitions).zip(results) {
            if *result == TransitionResult::Conflict {
                kept.remove(run);
                continue;
            }
            if let Some(ti) = kept
                .get_mut(run)
                .and_then(|tis| tis.iter_mut().find(|ti| ti.id == t.ti_id))
            {
                ti.state = t.to;
                ti.try_number += u32::from(t.new_try);
                ti.next_retry_at = t.next_retry_at;
            }
        }
    }

    fn in_scope(&self, run: &updraft_store::DagRun) -> bool {
        match self.config.only_run {
            Some(id) => run.id == id,
            None => run.runner.is_none() && !self.is_paused(&run.dag_id) && self.owns(run.id),
        }
    }

    fn owns(&self, dag_run_id: i64) -> bool {
        self.ownership
            .lock()
            .map(|o| o.owned.contains(&dag_run_id))
            .unwrap_or(false)
    }

    /// Whether an unfinished run appeared that this scheduler has not placed yet.
    fn has_new_runs(&self, runs: &[DagRun]) -> bool {
        let Ok(ownership) = self.ownership.lock() else {
            return true;
        };
        runs.iter().any(|run| {
            run.runner.is_none()
                && !ownership.owned.contains(&run.id)
                && !ownership.foreign.contains(&run.id)
        })
    }

    /// Renews this scheduler's runs and adopts unowned ones (new runs, and runs of schedulers
    /// whose lease ran out) up to a fair share: the unfinished runs divided by the live
    /// schedulers.
    async fn refresh_ownership(
        &self,
        runs: &[DagRun],
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        let lease = chrono::Duration::from_std(self.config.run_lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(10));
        let alive_since = now - lease;
        let live = self
            .store
            .list_jobs(None, alive_since)
            .await?
            .iter()
            .filter(|job| matches!(job.kind, JobKind::Scheduler | JobKind::Standalone))
            .count()
            .max(1);
        let unowned_or_ours = runs.iter().filter(|run| run.runner.is_none()).count();
        let max_owned = unowned_or_ours.div_ceil(live).max(1);
        let owned = self
            .store
            .own_dag_runs(OwnRuns {
                scheduler_id: self.config.scheduler_id.clone(),
                now,
                lease_until: now + lease,
                max_owned,
            })
            .await?;
        let owned: HashSet<i64> = owned.iter().map(|run| run.id).collect();
        let foreign = runs
            .iter()
            .filter(|run| run.runner.is_none() && !owned.contains(&run.id))
            .map(|run| run.id)
            .collect();
        {
            let mut kept = self.kept();
            kept.retain(|run, _| owned.contains(run));
        }
        if let Ok(mut ownership) = self.ownership.lock() {
            *ownership = Ownership { owned, foreign };
        }
        Ok(())
    }

    /// Records that this scheduler is alive (health checks, `jobs check`, fair shares).
    async fn beat(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        self.store
            .job_heartbeat(JobHeartbeat {
                id: self.config.scheduler_id.clone(),
                kind: self.config.job_kind,
                hostname: self.config.hostname.clone(),
                queues: Vec::new(),
                state: "running".to_string(),
                now,
            })
            .await?;
        Ok(())
    }

    /// As of the last full pass.
    fn is_paused(&self, dag_id: &str) -> bool {
        self.paused
            .lock()
            .map(|p| p.get(dag_id).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    async fn refresh_paused(&self) -> Result<(), SchedulerError> {
        let dags = self.store.list_dags().await?;
        if let Ok(mut paused) = self.paused.lock() {
            *paused = dags.into_iter().map(|d| (d.dag_id, d.is_paused)).collect();
        }
        Ok(())
    }

    /// The graph a run is pinned to. A definition that cannot be loaded (missing, or written by
    /// an incompatible version) fails that run, so one bad run never stops the others.
    async fn run_graph(
        &self,
        run: &updraft_store::DagRun,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<DagGraph>>, SchedulerError> {
        match self.dags.get(&run.dag_id, run.dag_version).await {
            Ok(graph) => Ok(Some(graph)),
            Err(e @ (StoreError::NotFound(_) | StoreError::Corrupt(_))) => {
                error!(dag_id = %run.dag_id, run_id = %run.run_id, error = %e, "the run's DAG definition cannot be loaded; failing the run");
                if !run.state.is_finished() {
                    self.store
                        .set_dag_run_state(run.id, run.state, DagRunState::Failed, now)
                        .await?;
                }
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The current graph of a DAG, for creating its scheduled runs; a definition that cannot be
    /// loaded skips that DAG (with an error) instead of stopping every other one.
    async fn dag_graph(
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

    /// Computes the next run of new or changed DAGs and creates every run that is due,
    /// oldest first (catch-up creates the missed ones in order).
    async fn create_scheduled_runs(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        for record in self.store.dags_needing_next_run().await? {
            let Some(graph) = self.dag_graph(&record).await? else {
                continue;
            };
            let last = self
                .store
                .last_scheduled_logical_date(&record.dag_id)
                .await?;
            let next = timetable::next_run(&graph.dag, last, now).map(|n| n.logical_date);
            self.store.set_next_dagrun(&record.dag_id, next).await?;
        }
        for record in self.store.due_dags(now).await? {
            let Some(graph) = self.dag_graph(&record).await? else {
                continue;
            };
            let Some(logical_date) = record.next_dagrun else {
                continue;
            };
            let after =
                timetable::next_run(&graph.dag, Some(logical_date), now).map(|n| n.logical_date);
            let request = TriggerRequest::scheduled(logical_date);
            let new_run = new_dag_run(&graph.dag, record.version, request, now, Some(after));
            match self.store.create_dag_run(new_run).await {
                Ok(run) => {
                    info!(dag_id = %run.dag_id, run_id = %run.run_id, "scheduled dag run created")
                }
                Err(StoreError::AlreadyExists(what)) => {
                    debug!(%what, "scheduled run exists already");
                    self.store.set_next_dagrun(&record.dag_id, after).await?;
                }
                Err(e) => return Err(e.into()),
            }
            self.signal.everything_changed();
        }
        Ok(())
    }

    /// Moves `scheduled` task instances to `queued` (starting a new try), highest priority
    /// first, within parallelism, each DAG's `max_active_tasks` and each pool's slots. Task
    /// instances of paused DAGs stay `scheduled` (except for the `only_run` of `dags test`).
    ///
    /// Candidates are read by priority in growing batches until enough were chosen or none are
    /// left, so that high-priority tasks held back by a full pool, a DAG at its limit or a
    /// pause cannot hide the queueable ones behind them.
    async fn queue_ready_work(&self, now: DateTime<Utc>) -> Result<usize, SchedulerError> {
        let occupancy = self.store.occupancy().await?;
        let free = self.config.parallelism.saturating_sub(occupancy.total) as usize;
        if free == 0 {
            return Ok(0);
        }
        let limits = self
            .dag_limits
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let chosen: Vec<Chosen> = {
            let kept = self.kept();
            let candidates = self.queueing_candidates(&kept, &occupancy, &limits);
            queueing::choose(candidates, &occupancy, free, &limits, self.config.only_run)
                .into_iter()
                .map(|ti| Chosen {
                    ti_id: ti.id,
                    try_number: ti.try_number,
                    dag_run_id: ti.dag_run_id,
                    dag_id: ti.dag_id.clone(),
                    pool: ti.pool.clone(),
                })
                .collect()
        };
        if chosen.is_empty() {
            return Ok(0);
        }
        let items: Vec<QueueItem> = chosen
            .iter()
            .map(|c| QueueItem {
                ti_id: c.ti_id,
                try_number: c.try_number,
                dag_id: c.dag_id.clone(),
                pool: c.pool.clone(),
                max_active_tasks: limits.get(&c.dag_id).copied().unwrap_or(u32::MAX),
            })
            .collect();
        let results = self.store.queue(items, now).await?;
        let mut kept = self.kept();
        let mut queued = 0;
        for (c, result) in chosen.iter().zip(&results) {
            // Not queued: another scheduler filled the DAG's or the pool's places first (the
            // task stays scheduled), or the row moved on, which the next full pass reloads.
            if *result != TransitionResult::Applied {
                continue;
            }
            queued += 1;
            if let Some(ti) = kept
                .get_mut(&c.dag_run_id)
                .and_then(|tis| tis.iter_mut().find(|ti| ti.id == c.ti_id))
            {
                ti.state = TaskState::Queued;
                ti.try_number += 1;
                ti.next_retry_at = None;
            }
        }
        Ok(queued)
    }

    /// The `scheduled` task instances of the kept runs that could be queued now (their DAG
    /// is below `max_active_tasks`, their pool has a free slot, their DAG is not paused),
    /// highest priority first. Every running run in scope is kept after a full pass, so this
    /// reads nothing from the store.
    fn queueing_candidates<'a>(
        &self,
        kept: &'a HashMap<i64, Vec<TaskInstance>>,
        occupancy: &updraft_store::Occupancy,
        limits: &HashMap<String, u32>,
    ) -> Vec<&'a TaskInstance> {
        let dag_full = |dag_id: &str| {
            let active = occupancy.per_dag.get(dag_id).copied().unwrap_or(0);
            limits.get(dag_id).is_some_and(|limit| active >= *limit)
        };
        let pool_full = |pool: &str| {
            let used = occupancy.per_pool.get(pool).copied().unwrap_or(0);
            occupancy
                .pool_slots
                .get(pool)
                .is_some_and(|slots| used >= *slots)
        };
        let paused_dags = self.paused.lock().map(|p| p.clone()).unwrap_or_default();
        let paused: HashSet<&str> = paused_dags
            .iter()
            .filter(|(_, is_paused)| **is_paused)
            .map(|(dag, _)| dag.as_str())
            .collect();
        let mut candidates: Vec<&TaskInstance> = kept
            .iter()
            .filter(|(run, _)| self.config.only_run.is_none_or(|only| only == **run))
            .flat_map(|(_, tis)| tis.iter())
            .filter(|ti| ti.state == TaskState::Scheduled)
            .filter(|ti| !dag_full(&ti.dag_id) && !pool_full(&ti.pool))
            .filter(|ti| self.config.only_run.is_some() || !paused.contains(ti.dag_id.as_str()))
            .collect();
        candidates.sort_unstable_by(|a, b| {
            b.priority_weight
                .cmp(&a.priority_weight)
                .then(a.id.cmp(&b.id))
        });
        candidates
    }

    /// Fails (for that try) the tasks whose worker stopped renewing its lease.
    async fn expire_leases(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
        let grace = chrono::Duration::from_std(self.config.worker_lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let last_failure = self.last_failure.lock().ok().and_then(|l| *l);
        if last_failure.is_some_and(|failed| now < failed + grace) {
            debug!(
                "the database was out of reach a moment ago; workers get a lease to renew first"
            );
            return Ok(());
        }
        let expired = self.store.expired_claims(now).await?;
        self.fail_lost_tries(&expired, "worker lease expired", now)
            .await?;
        Ok(())
    }

    /// Fails the current tries of `tis`, lost to the infrastructure (their worker died or was
    /// fenced off): retried at once without using up the tasks' retries, within the
    /// infrastructure budget. Returns how many tries were resolved.
    pub async fn fail_lost_tries(
        &self,
        tis: &[TaskInstance],
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, SchedulerError> {
        let mut reports = Vec::new();
        for ti in tis {
            let Some(claim_id) = ti.claim_id.clone() else {
                continue;
            };
            let run = self.store.get_dag_run_by_id(ti.dag_run_id).await?;
            let graph = self.run_graph(&run, now).await?;
            let (state, next_retry_at) = match graph.as_ref().and_then(|g| g.dag.task(&ti.task_id))
            {
                Some(task) => {
                    retry::after_infrastructure_failure(task, ti.try_number, ti.infra_failures, now)
                }
                None => (TaskState::Failed, None),
            };
            warn!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, new_state = %state, "{why}; failing the try");
            reports.push(FinishReport {
                ti_id: ti.id,
                try_number: ti.try_number,
                claim_id,
                state,
                end_date: now,
                next_retry_at,
                xcom: None,
                infrastructure_failure: true,
                log_tail: None,
            });
        }
        if reports.is_empty() {
            return Ok(0);
        }
        let resolved = reports.len();
        self.store.finish(reports).await?;
        self.signal.runs_changed(tis.iter().map(|ti| ti.dag_run_id));
        Ok(resolved)
    }
}

/// A task instance picked for queueing, copied out of the kept states.
struct Chosen {
    ti_id: i64,
    try_number: u32,
    dag_run_id: i64,
    dag_id: String,
    pool: String,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

//! Which runs this scheduler evaluates (run ownership with leases) and its heartbeat.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use updraft_store::{DagRun, JobHeartbeat, JobKind, OwnRuns};

use crate::{Scheduler, SchedulerError};

#[derive(Default)]
pub(crate) struct Ownership {
    pub(crate) owned: HashSet<i64>,
    pub(crate) foreign: HashSet<i64>,
    /// When this scheduler last renewed its runs' leases.
    pub(crate) renewed_at: Option<DateTime<Utc>>,
    /// How many other schedulers were alive then.
    pub(crate) others_alive: usize,
}

impl Scheduler {
    pub(crate) fn in_scope(&self, run: &updraft_store::DagRun) -> bool {
        match self.config.only_run {
            Some(id) => run.id == id,
            None => run.runner.is_none() && !self.is_paused(&run.dag_id) && self.owns(run.id),
        }
    }

    pub(crate) fn owns(&self, dag_run_id: i64) -> bool {
        self.ownership
            .lock()
            .map(|o| o.owned.contains(&dag_run_id))
            .unwrap_or(false)
    }

    /// Whether the last ownership refresh saw run `dag_run_id` owned by another scheduler.
    pub(crate) fn owned_by_another(&self, dag_run_id: i64) -> bool {
        self.ownership
            .lock()
            .map(|o| o.foreign.contains(&dag_run_id))
            .unwrap_or(false)
    }

    /// How many other schedulers were alive at the last ownership refresh.
    pub(crate) fn other_schedulers_alive(&self) -> usize {
        self.ownership.lock().map(|o| o.others_alive).unwrap_or(0)
    }

    /// Whether an unfinished run appeared that this scheduler has not placed yet.
    pub(crate) fn has_new_runs(&self, runs: &[DagRun]) -> bool {
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
    pub(crate) async fn refresh_ownership(
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
            // Runs kept since before this scheduler's leases may have lapsed (a stalled
            // process): another scheduler may have adopted and driven them meanwhile.
            let lapsed = self
                .ownership
                .lock()
                .ok()
                .and_then(|o| o.renewed_at)
                .is_none_or(|renewed| now - renewed >= lease);
            if lapsed {
                kept.clear();
            }
            kept.retain(|run, _| owned.contains(run));
        }
        if let Ok(mut ownership) = self.ownership.lock() {
            *ownership = Ownership {
                owned,
                foreign,
                renewed_at: Some(now),
                others_alive: live - 1,
            };
        }
        Ok(())
    }

    /// Records that this scheduler is alive (health checks, `jobs check`, fair shares).
    pub(crate) async fn beat(&self, now: DateTime<Utc>) -> Result<(), SchedulerError> {
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
        if let Some(metrics) = updraft_metrics::get() {
            metrics.scheduler_heartbeat();
        }
        Ok(())
    }
}

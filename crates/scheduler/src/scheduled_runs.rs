//! Creating the scheduled runs that are due.

use chrono::{DateTime, Utc};
use tracing::{debug, info};
use updraft_model::timetable;
use updraft_store::StoreError;

use crate::{new_dag_run, Scheduler, SchedulerError, TriggerRequest};

impl Scheduler {
    /// Computes the next run of new or changed DAGs and creates every run that is due,
    /// oldest first (catch-up creates the missed ones in order).
    pub(crate) async fn create_scheduled_runs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
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
}

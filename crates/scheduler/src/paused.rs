//! Which DAGs are paused, as of the last full pass.

use crate::{Scheduler, SchedulerError};

impl Scheduler {
    /// As of the last full pass.
    pub(crate) fn is_paused(&self, dag_id: &str) -> bool {
        self.paused
            .lock()
            .map(|p| p.get(dag_id).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    pub(crate) async fn refresh_paused(&self) -> Result<(), SchedulerError> {
        let dags = self.store.list_dags().await?;
        if let Ok(mut paused) = self.paused.lock() {
            *paused = dags.into_iter().map(|d| (d.dag_id, d.is_paused)).collect();
        }
        Ok(())
    }
}

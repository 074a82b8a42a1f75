//! The reporter task: finished tries are written in groups (one transaction for every try that
//! finished since the last report), retried until they land, and what they changed is handed
//! to the scheduler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;
use updraft_store::{FinishReport, TransitionResult};

use super::LocalWorker;

/// Called with the ids of the runs whose tasks just finished.
pub type FinishedHook = Arc<dyn Fn(Reported) + Send + Sync>;

/// What one group commit of finished tries changed.
#[derive(Debug, Default)]
pub struct Reported {
    /// The reports that were applied, with the id of their run.
    pub applied: Vec<(i64, FinishReport)>,
    /// Runs with a report that was refused (the try was no longer this worker's): their
    /// state is not what the report said.
    pub refused_runs: Vec<i64>,
    /// Runs a try created or cleared while it ran (a trigger task's): the scheduler looks at
    /// them at once rather than at its next sweep.
    pub changed_runs: Vec<i64>,
}

/// A try that ended, waiting to be reported.
pub(super) struct Finished {
    pub(super) report: FinishReport,
    pub(super) dag_run_id: i64,
}

/// The log tails one finish request carries at most: with JSON's escapes (up to six bytes
/// for one) well under what an API server accepts in a body.
const MAX_BATCH_LOG: usize = 2 * 1024 * 1024;

/// Splits reports into consecutive batches whose log tails stay within [`MAX_BATCH_LOG`].
fn batches_within_log_limit(reports: Vec<Finished>) -> Vec<Vec<Finished>> {
    let mut batches: Vec<Vec<Finished>> = Vec::new();
    let mut log_bytes = 0;
    for finished in reports {
        let size = finished
            .report
            .log_tail
            .as_ref()
            .map_or(0, |tail| tail.data.len());
        match batches.last_mut() {
            Some(batch) if log_bytes + size <= MAX_BATCH_LOG => {
                log_bytes += size;
                batch.push(finished);
            }
            _ => {
                log_bytes = size;
                batches.push(vec![finished]);
            }
        }
    }
    batches
}

impl LocalWorker {
    /// Writes every finished try that is waiting in one transaction (group commit).
    pub(super) async fn report_finished(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Finished>,
    ) {
        let mut received = Vec::new();
        while rx.recv_many(&mut received, 1024).await > 0 {
            for batch in batches_within_log_limit(std::mem::take(&mut received)) {
                self.report(batch).await;
            }
        }
    }

    /// Reports one batch, retrying until it lands.
    async fn report(&self, batch: Vec<Finished>) {
        let runs: Vec<i64> = batch.iter().map(|f| f.dag_run_id).collect();
        let reports: Vec<FinishReport> = batch.into_iter().map(|f| f.report).collect();
        let mut attempt: u64 = 0;
        // Never give up: the leases of these claims are renewed until the report lands.
        let results = loop {
            match self.execution.finish(reports.clone()).await {
                Ok(results) => break results,
                Err(e) => {
                    attempt += 1;
                    warn!(error = %e, attempt, "reporting finished tasks failed; retrying");
                    tokio::time::sleep(Duration::from_millis((100 * attempt).min(5_000))).await;
                }
            }
        };
        if let Ok(mut unreported) = self.unreported.lock() {
            for r in &reports {
                unreported.remove(&r.claim_id);
            }
        }
        let mut reported = Reported::default();
        for ((run, report), result) in runs.into_iter().zip(reports).zip(results) {
            if result == TransitionResult::Applied {
                reported.applied.push((run, report));
            } else if !reported.refused_runs.contains(&run) {
                reported.refused_runs.push(run);
            }
        }
        (self.on_finished)(reported);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use updraft_model::TaskState;
    use updraft_store::{FinishReport, LogTail};

    use super::{batches_within_log_limit, Finished, MAX_BATCH_LOG};

    fn finished(id: i64, log_bytes: usize) -> Finished {
        Finished {
            report: FinishReport {
                ti_id: id,
                try_number: 1,
                claim_id: format!("c{id}"),
                state: TaskState::Success,
                end_date: Utc::now(),
                next_retry_at: None,
                xcom: None,
                infrastructure_failure: false,
                log_tail: (log_bytes > 0).then(|| LogTail {
                    offset: 0,
                    data: "x".repeat(log_bytes),
                }),
                effects: Default::default(),
            },
            dag_run_id: 1,
        }
    }

    #[test]
    fn finish_batches_keep_their_log_tails_within_the_limit_and_their_order() {
        let third = MAX_BATCH_LOG / 3;
        let reports = vec![
            finished(1, third),
            finished(2, 0),
            finished(3, third),
            finished(4, third),
            finished(5, MAX_BATCH_LOG),
            finished(6, 10),
        ];
        let ids: Vec<Vec<i64>> = batches_within_log_limit(reports)
            .iter()
            .map(|batch| batch.iter().map(|f| f.report.ti_id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 2, 3, 4], vec![5], vec![6]]);
        assert!(batches_within_log_limit(Vec::new()).is_empty());
    }
}

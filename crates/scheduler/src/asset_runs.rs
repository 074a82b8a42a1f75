//! Creating the runs of DAGs scheduled on assets: when the events queued for a DAG
//! (`asset_dag_run_queue`) satisfy its asset condition, one `asset_triggered` run that
//! consumes them.
//!
//! Every scheduler may see the same queued events; the store creates the run only if all of
//! them are still queued, in the transaction that deletes them, so exactly one run is made.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use tracing::{debug, info};
use updraft_model::{Asset, AssetCondition, AssetKey, RunType};
use updraft_store::{
    asset_triggered_run_id, AssetTriggeredRun, QueuedAssetEvent, QueuedEventFilter, StoreError,
};

use crate::{new_dag_run, Scheduler, SchedulerError, TriggerRequest};

/// The queued events `(asset id, queued at)` a run of a DAG with `condition` consumes, when
/// `queued` (the DAG's queued events) satisfies it; `None` while it does not.
pub fn events_to_consume(
    condition: &AssetCondition,
    queued: &[&QueuedAssetEvent],
) -> Option<Vec<(i64, DateTime<Utc>)>> {
    let updated: HashSet<AssetKey> = queued
        .iter()
        .map(|q| AssetKey {
            name: q.name.clone(),
            uri: q.uri.clone(),
        })
        .collect();
    let met = condition.evaluate(&|asset: &Asset| updated.contains(&asset.key()));
    met.then(|| queued.iter().map(|q| (q.asset_id, q.created_at)).collect())
}

impl Scheduler {
    /// Creates a run for every active, unpaused DAG whose asset condition the queued events
    /// satisfy. Events queued for a paused DAG stay queued until it is unpaused (Airflow).
    pub(crate) async fn create_asset_triggered_runs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        let queued = self
            .store
            .queued_asset_events(QueuedEventFilter::default())
            .await?;
        let mut per_dag: BTreeMap<&str, Vec<&QueuedAssetEvent>> = BTreeMap::new();
        for event in &queued {
            per_dag
                .entry(event.dag_id.as_str())
                .or_default()
                .push(event);
        }
        for (dag_id, events) in per_dag {
            let record = match self.store.get_dag(dag_id).await {
                Ok(record) => record,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if record.is_paused || !record.is_active {
                continue;
            }
            let Some(graph) = self.dag_graph(&record).await? else {
                continue;
            };
            let Some(condition) = &graph.dag.asset_schedule else {
                continue;
            };
            let Some(consumed) = events_to_consume(condition, &events) else {
                continue;
            };
            // Airflow's run_after: the latest time an event was queued for the DAG.
            let run_after = consumed.iter().map(|(_, at)| *at).max().unwrap_or(now);
            let request = TriggerRequest {
                run_type: RunType::AssetTriggered,
                run_id: Some(asset_triggered_run_id(now)),
                logical_date: Some(run_after),
                conf: serde_json::Map::new(),
            };
            let run = new_dag_run(&graph.dag, record.version, request, now, None);
            match self
                .store
                .create_asset_triggered_run(AssetTriggeredRun { consumed, run })
                .await
            {
                Ok(Some(run)) => {
                    info!(dag_id = %run.dag_id, run_id = %run.run_id, "asset-triggered dag run created");
                }
                Ok(None) => debug!(%dag_id, "queued asset events consumed already"),
                Err(StoreError::AlreadyExists(what)) => {
                    debug!(%what, "asset-triggered run exists already");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap()
    }

    fn queued(id: i64, name: &str, minute: u32) -> QueuedAssetEvent {
        QueuedAssetEvent {
            asset_id: id,
            name: name.into(),
            uri: name.into(),
            dag_id: "d".into(),
            created_at: at(minute),
        }
    }

    fn asset(name: &str) -> AssetCondition {
        AssetCondition::Asset(Asset::new(Some(name), None).unwrap())
    }

    #[test]
    fn a_run_waits_until_the_condition_holds_and_consumes_what_is_queued() {
        // a & (b | c)
        let condition = AssetCondition::All(vec![
            asset("a"),
            AssetCondition::Any(vec![asset("b"), asset("c")]),
        ]);
        let (a, b, c) = (queued(1, "a", 1), queued(2, "b", 2), queued(3, "c", 3));
        let cases: Vec<(Vec<&QueuedAssetEvent>, Option<Vec<i64>>)> = vec![
            (vec![], None),
            (vec![&a], None),
            (vec![&b, &c], None),
            (vec![&a, &c], Some(vec![1, 3])),
            (vec![&a, &b, &c], Some(vec![1, 2, 3])),
        ];
        for (events, expected) in cases {
            let got = events_to_consume(&condition, &events)
                .map(|consumed| consumed.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
            assert_eq!(got, expected, "{events:?}");
        }
    }

    #[test]
    fn an_asset_is_matched_by_name_and_uri() {
        let condition = AssetCondition::Asset(Asset::new(Some("n"), Some("s3://x")).unwrap());
        let same_name_other_uri = QueuedAssetEvent {
            uri: "s3://y".into(),
            ..queued(1, "n", 1)
        };
        assert_eq!(events_to_consume(&condition, &[&same_name_other_uri]), None);
        let exact = QueuedAssetEvent {
            uri: "s3://x".into(),
            ..queued(1, "n", 1)
        };
        assert_eq!(
            events_to_consume(&condition, &[&exact]),
            Some(vec![(1, at(1))])
        );
    }
}

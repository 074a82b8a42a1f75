//! Assets (Airflow 3's data-aware scheduling): the assets DAGs name, the events that say an
//! asset was updated, and the events queued for the DAGs scheduled on them
//! (`asset_dag_run_queue`) until a scheduler creates their run.
//!
//! Assets are registered when a DAG version is published (`Store::sync_dags`); a successful
//! try emits one event per outlet of its task inside the finish transaction
//! (`Store::finish`), which also queues it for every unpaused DAG scheduled on the asset.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use updraft_model::{Asset, AssetKey, Dag};

use crate::{DagRun, NewDagRun, Result};

/// An asset as the store knows it, with the DAGs scheduled on it, the tasks that update it
/// and its latest event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetRecord {
    pub id: i64,
    pub name: String,
    pub uri: String,
    pub group: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// DAGs whose schedule names the asset, by dag_id.
    pub scheduled_dags: Vec<AssetDagReference>,
    /// Tasks whose outlets name the asset, by (dag_id, task_id).
    pub producing_tasks: Vec<AssetTaskReference>,
    pub last_event: Option<LastAssetEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetDagReference {
    pub dag_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssetTaskReference {
    pub dag_id: String,
    pub task_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastAssetEvent {
    pub id: i64,
    pub timestamp: DateTime<Utc>,
}

/// One update of an asset: by a task's successful try (its source) or recorded through the
/// API (no source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetEvent {
    pub id: i64,
    pub asset_id: i64,
    pub name: String,
    pub uri: String,
    pub group: String,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub source_dag_id: Option<String>,
    pub source_task_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_map_index: i64,
    pub timestamp: DateTime<Utc>,
    /// The runs this event triggered (their `triggering_asset_events` hold it).
    pub created_dagruns: Vec<TriggeredRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggeredRun {
    pub dag_id: String,
    pub run_id: String,
    pub state: String,
    pub logical_date: DateTime<Utc>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
}

/// An event waiting for a DAG scheduled on its asset: Airflow's `AssetDagRunQueue` row. One
/// per (asset, DAG); a second event of the same asset before the run adds no row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedAssetEvent {
    pub asset_id: i64,
    pub name: String,
    pub uri: String,
    pub dag_id: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetQuery {
    pub limit: u32,
    pub offset: u32,
    /// Part of the name, case-insensitive (Airflow's `name_pattern`).
    pub name_pattern: Option<String>,
    pub uri_pattern: Option<String>,
    /// Only assets these DAGs are scheduled on or produce.
    pub dag_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetEventQuery {
    pub limit: u32,
    pub offset: u32,
    pub asset_id: Option<i64>,
    pub source_dag_id: Option<String>,
    pub source_task_id: Option<String>,
    pub source_run_id: Option<String>,
    pub source_map_index: Option<i64>,
    pub timestamp_gte: Option<DateTime<Utc>>,
    pub timestamp_lte: Option<DateTime<Utc>>,
    /// Newest first (Airflow's `order_by=-timestamp`); otherwise oldest first.
    pub newest_first: bool,
}

/// Which queued events a read or a delete is about; both `None` is every one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueuedEventFilter {
    pub dag_id: Option<String>,
    pub asset_id: Option<i64>,
    /// Only those queued before this instant (Airflow's `before`).
    pub before: Option<DateTime<Utc>>,
}

/// An event recorded through the API (`POST /assets/events`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAssetEvent {
    pub asset_id: i64,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub now: DateTime<Utc>,
}

/// A scheduler's request to create the run of a DAG whose asset condition holds, consuming
/// the queued events it saw.
#[derive(Debug, Clone)]
pub struct AssetTriggeredRun {
    /// The queued events the condition was evaluated on: (asset id, queued at). The run is
    /// created only if every one of them is still queued (no other scheduler consumed them).
    pub consumed: Vec<(i64, DateTime<Utc>)>,
    /// The run; its logical date is the latest `queued at` of `consumed`.
    pub run: NewDagRun,
}

#[async_trait]
pub trait AssetStore: Send + Sync {
    /// Assets in id order, and how many match in all.
    async fn list_assets(&self, query: AssetQuery) -> Result<(Vec<AssetRecord>, i64)>;
    async fn get_asset(&self, id: i64) -> Result<AssetRecord>;
    /// Asset events, and how many match in all.
    async fn list_asset_events(&self, query: AssetEventQuery) -> Result<(Vec<AssetEvent>, i64)>;
    /// Records an event of an existing asset (no source task) and queues it for every
    /// unpaused DAG scheduled on it, in one transaction; an unknown asset is `NotFound`.
    async fn create_asset_event(&self, event: NewAssetEvent) -> Result<AssetEvent>;
    async fn queued_asset_events(&self, filter: QueuedEventFilter)
        -> Result<Vec<QueuedAssetEvent>>;
    /// Forgets queued events; answers how many.
    async fn delete_queued_asset_events(&self, filter: QueuedEventFilter) -> Result<u64>;
    /// Creates an `asset_triggered` run and consumes its queued events in one transaction,
    /// as a compare-and-set: `None` (nothing changes) when one of `consumed` is no longer
    /// queued (another scheduler created the run) or the DAG is paused. The run's triggering
    /// events are the events of the consumed assets since the DAG's previous asset-triggered
    /// run, up to its logical date.
    async fn create_asset_triggered_run(
        &self,
        request: AssetTriggeredRun,
    ) -> Result<Option<DagRun>>;
    /// The events that triggered a run, oldest first (empty for other runs).
    async fn triggering_asset_events(&self, dag_run_id: i64) -> Result<Vec<AssetEvent>>;
}

/// What a DAG version says about assets: every asset it names (schedule, outlets, inlets;
/// each once), the assets its schedule waits for, and each task's outlets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DagAssets<'a> {
    pub assets: Vec<&'a Asset>,
    pub scheduled: Vec<AssetKey>,
    pub outlets: Vec<(&'a str, AssetKey)>,
}

impl<'a> DagAssets<'a> {
    pub fn of(dag: &'a Dag) -> DagAssets<'a> {
        let mut out = DagAssets::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut add = |asset: &'a Asset, out: &mut DagAssets<'a>| {
            if seen.insert(asset.key()) {
                out.assets.push(asset);
            }
        };
        if let Some(condition) = &dag.asset_schedule {
            for asset in condition.assets() {
                add(asset, &mut out);
                out.scheduled.push(asset.key());
            }
        }
        for task in &dag.tasks {
            let mut own = std::collections::BTreeSet::new();
            for asset in &task.outlets {
                add(asset, &mut out);
                if own.insert(asset.key()) {
                    out.outlets.push((task.task_id.as_str(), asset.key()));
                }
            }
            for asset in &task.inlets {
                add(asset, &mut out);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }
}

/// A run's triggering events as its tasks see them (`triggering_asset_events` in templates
/// and in Python's context): the asset's URI → its events, oldest first.
pub fn triggering_events_json(events: &[AssetEvent]) -> serde_json::Value {
    let mut by_uri = serde_json::Map::new();
    for e in events {
        let entry = by_uri
            .entry(e.uri.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(serde_json::json!({
                "asset": {"name": e.name, "uri": e.uri, "group": e.group},
                "extra": e.extra,
                "source_dag_id": e.source_dag_id,
                "source_task_id": e.source_task_id,
                "source_run_id": e.source_run_id,
                "source_map_index": e.source_map_index,
                "timestamp": e.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            }));
        }
    }
    serde_json::Value::Object(by_uri)
}

/// The run id of an asset-triggered run created at `run_after` (Airflow's
/// `asset_triggered__<run_after>`).
pub fn asset_triggered_run_id(run_after: DateTime<Utc>) -> String {
    format!(
        "asset_triggered__{}",
        run_after.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use updraft_model::{AssetCondition, Operator, Task};

    fn asset(name: &str) -> Asset {
        Asset::new(Some(name), None).unwrap()
    }

    fn bare_dag() -> Dag {
        Dag {
            dag_id: "d".into(),
            description: None,
            schedule: updraft_model::Schedule::None,
            timezone: "UTC".parse().unwrap(),
            start_date: None,
            end_date: None,
            catchup: false,
            max_active_runs: 1,
            max_active_tasks: 1,
            dagrun_timeout: None,
            max_consecutive_failed_dag_runs: 0,
            tags: Vec::new(),
            params: serde_json::Map::new(),
            default_args: serde_json::Map::new(),
            asset_schedule: None,
            callbacks: Default::default(),
            tasks: Vec::new(),
        }
    }

    #[test]
    fn a_dag_names_each_asset_once() {
        let mut producer = Task::new("p", Operator::Empty);
        producer.outlets = vec![asset("a"), asset("b"), asset("a")];
        let mut reader = Task::new("r", Operator::Empty);
        reader.inlets = vec![asset("c")];
        let dag = Dag {
            asset_schedule: Some(AssetCondition::Any(vec![
                AssetCondition::Asset(asset("a")),
                AssetCondition::Asset(asset("d")),
            ])),
            tasks: vec![producer, reader],
            ..bare_dag()
        };
        let refs = DagAssets::of(&dag);
        let names: Vec<&str> = refs.assets.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "d", "b", "c"]);
        assert_eq!(refs.scheduled.len(), 2);
        let outlets: Vec<(&str, &str)> = refs
            .outlets
            .iter()
            .map(|(t, k)| (*t, k.name.as_str()))
            .collect();
        assert_eq!(outlets, [("p", "a"), ("p", "b")]);
    }

    #[test]
    fn run_ids_name_the_instant() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            asset_triggered_run_id(at),
            "asset_triggered__2026-01-02T03:04:05.123456+00:00"
        );
    }
}

//! What the DAG, run, task-instance and log routes share: extractors that answer Airflow's
//! 422 on bad input, the identities Airflow gives as UUIDs, the version records runs and task
//! instances show, and looking up a DAG's definition.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use updraft_model::{Dag, TaskState};
use updraft_scheduler::DagGraph;
use updraft_store::{DagRecord, DagRun, DagVersionRecord, StoreError, Window};
use uuid::Uuid;

pub(crate) use crate::extract::{like_matches, PathParams, QueryParams};
use crate::{RestError, RestState};

/// `~` in a path stands for "every DAG" or "every run".
pub(crate) fn wildcard(id: &str) -> Option<&str> {
    (id != "~").then_some(id)
}

/// Bytes 0..9 of every task-instance UUID: a fixed marker with UUID version 8 and the RFC
/// variant, so the remaining 7 bytes carry our integer id and can be read back.
const TI_UUID_PREFIX: [u8; 9] = [0x75, 0x70, 0x64, 0x72, 0x61, 0x66, 0x80, 0x74, 0x80];

/// Airflow identifies task instances by UUID; ours are integers, so the UUID is derived from
/// the integer (stable, reversible).
pub(crate) fn ti_uuid(id: i64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..9].copy_from_slice(&TI_UUID_PREFIX);
    bytes[9..].copy_from_slice(&id.to_be_bytes()[1..]);
    Uuid::from_bytes(bytes)
}

/// The integer id a [`ti_uuid`] was made from.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn ti_id_of(uuid: &Uuid) -> Option<i64> {
    let bytes = uuid.as_bytes();
    if bytes[..9] != TI_UUID_PREFIX {
        return None;
    }
    let mut id = [0u8; 8];
    id[1..].copy_from_slice(&bytes[9..]);
    Some(i64::from_be_bytes(id))
}

/// A DAG version's UUID: derived from (dag_id, version), the same on every server.
pub(crate) fn dag_version_uuid(dag_id: &str, version: i64) -> Uuid {
    let digest = Sha256::digest(format!("{dag_id}\0{version}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// Airflow's `DagVersionResponse`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DagVersionResponse {
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    pub version_number: i64,
    pub dag_id: String,
    pub bundle_name: Option<String>,
    pub bundle_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub dag_display_name: String,
    pub bundle_url: Option<String>,
}

/// updraft reads DAGs from one folder: Airflow's default bundle.
pub(crate) const BUNDLE_NAME: &str = "dags-folder";

impl DagVersionResponse {
    pub(crate) fn from_record(record: &DagVersionRecord) -> Self {
        DagVersionResponse {
            id: dag_version_uuid(&record.dag_id, record.version),
            version_number: record.version,
            dag_id: record.dag_id.clone(),
            bundle_name: Some(BUNDLE_NAME.to_string()),
            bundle_version: None,
            created_at: record.created_at,
            dag_display_name: record.dag_id.clone(),
            bundle_url: None,
        }
    }
}

/// The version records of the DAGs a request shows, loaded once per DAG (and kept between
/// requests by [`crate::versions::VersionCache`]).
#[derive(Default)]
pub(crate) struct Versions {
    by_dag: HashMap<String, crate::versions::DagVersions>,
}

impl Versions {
    pub(crate) async fn get(
        &mut self,
        state: &RestState,
        dag_id: &str,
        version: i64,
    ) -> Result<Option<DagVersionResponse>, RestError> {
        if !self.by_dag.contains_key(dag_id) {
            if let Some(kept) = state.versions().get(dag_id, version) {
                self.by_dag.insert(dag_id.to_string(), kept);
            }
        }
        if !self.by_dag.contains_key(dag_id) {
            let page = state
                .store()
                .dag_versions(
                    dag_id,
                    Window {
                        limit: u32::MAX,
                        offset: 0,
                    },
                )
                .await?;
            let records: crate::versions::DagVersions =
                std::sync::Arc::new(page.items.into_iter().map(|r| (r.version, r)).collect());
            state.versions().put(dag_id, records.clone());
            self.by_dag.insert(dag_id.to_string(), records);
        }
        Ok(self
            .by_dag
            .get(dag_id)
            .and_then(|versions| versions.get(&version))
            .map(DagVersionResponse::from_record))
    }
}

/// The DAG's record, or Airflow's 404.
pub(crate) async fn dag_record(state: &RestState, dag_id: &str) -> Result<DagRecord, RestError> {
    match state.store().get_dag(dag_id).await {
        Ok(record) => Ok(record),
        Err(StoreError::NotFound(_)) => Err(dag_not_found(dag_id)),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn dag_not_found(dag_id: &str) -> RestError {
    RestError::not_found(format!("The Dag with ID: `{dag_id}` was not found"))
}

/// The definition of a DAG at `version`, as a graph.
pub(crate) async fn dag_graph(
    state: &RestState,
    dag_id: &str,
    version: i64,
) -> Result<Arc<DagGraph>, RestError> {
    match state.dags().get(dag_id, version).await {
        Ok(graph) => Ok(graph),
        Err(StoreError::NotFound(_)) => Err(dag_not_found(dag_id)),
        Err(e) => Err(e.into()),
    }
}

/// The current definition of a DAG, with its record.
pub(crate) async fn current_dag(
    state: &RestState,
    dag_id: &str,
) -> Result<(DagRecord, Arc<DagGraph>), RestError> {
    let record = dag_record(state, dag_id).await?;
    let graph = dag_graph(state, dag_id, record.version).await?;
    Ok((record, graph))
}

/// A run of a DAG, or Airflow's 404.
pub(crate) async fn dag_run(
    state: &RestState,
    dag_id: &str,
    run_id: &str,
) -> Result<DagRun, RestError> {
    match state.store().get_dag_run(dag_id, run_id).await {
        Ok(run) => Ok(run),
        Err(StoreError::NotFound(_)) => Err(RestError::not_found(format!(
            "The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A task instance's state as Airflow writes it: `null` for "no status".
pub(crate) fn ti_state(state: TaskState) -> Option<String> {
    (state != TaskState::None).then(|| state.as_str().to_string())
}

/// Seconds between two instants, when both are known.
pub(crate) fn seconds_between(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Option<f64> {
    match (start, end) {
        (Some(start), Some(end)) => Some((end - start).num_microseconds()? as f64 / 1e6),
        _ => None,
    }
}

/// Airflow's operator class name of a task.
pub(crate) fn operator_name(dag: &Dag, task_id: &str) -> Option<&'static str> {
    dag.task(task_id).map(|task| match &task.operator {
        updraft_model::Operator::Bash { .. } => "BashOperator",
        updraft_model::Operator::Empty => "EmptyOperator",
        updraft_model::Operator::Python { python_kind, .. } => python_operator_name(*python_kind),
        updraft_model::Operator::Http(_) if task.sensor.is_some() => "HttpSensor",
        updraft_model::Operator::Http(_) => "HttpOperator",
        updraft_model::Operator::Docker(_) => "DockerOperator",
        updraft_model::Operator::FileSensor(_) => "FileSensor",
        updraft_model::Operator::TimeDeltaSensor { .. } => "TimeDeltaSensor",
        updraft_model::Operator::TimeSensor { .. } => "TimeSensor",
        updraft_model::Operator::DateTimeSensor { .. } => "DateTimeSensor",
        updraft_model::Operator::TriggerDagRun(_) => "TriggerDagRunOperator",
        updraft_model::Operator::ExternalTaskMarker(_) => "ExternalTaskMarker",
        updraft_model::Operator::ExternalTaskSensor(_) => "ExternalTaskSensor",
    })
}

/// Airflow's class name of a Python task of this kind.
pub(crate) fn python_operator_name(kind: updraft_model::PythonKind) -> &'static str {
    use updraft_model::PythonKind;
    match kind {
        PythonKind::Task => "PythonOperator",
        PythonKind::Branch => "BranchPythonOperator",
        PythonKind::ShortCircuit => "ShortCircuitOperator",
        PythonKind::Bash => "BashOperator",
        PythonKind::LatestOnly => "LatestOnlyOperator",
        PythonKind::Sensor => "PythonSensor",
    }
}

/// A 422 for a note longer than Airflow allows.
pub(crate) fn check_note(note: Option<&str>, location: &[&str]) -> Result<(), RestError> {
    match note {
        Some(note) if note.chars().count() > 1000 => Err(RestError::invalid(
            location,
            "String should have at most 1000 characters",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_instance_uuids_round_trip_and_differ() {
        for id in [1, 2, 42, 1 << 40] {
            let uuid = ti_uuid(id);
            assert_eq!(uuid.get_version_num(), 8);
            assert_eq!(ti_id_of(&uuid), Some(id));
        }
        assert_ne!(ti_uuid(1), ti_uuid(2));
        assert_eq!(ti_id_of(&Uuid::nil()), None);
    }

    #[test]
    fn version_uuids_are_stable_per_dag_and_version() {
        assert_eq!(dag_version_uuid("a", 1), dag_version_uuid("a", 1));
        assert_ne!(dag_version_uuid("a", 1), dag_version_uuid("a", 2));
        assert_ne!(dag_version_uuid("a", 1), dag_version_uuid("b", 1));
        assert_eq!(dag_version_uuid("a", 1).get_version_num(), 8);
    }
}

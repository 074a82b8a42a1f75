//! What a worker needs from the rest of the cluster to run tasks: claim, heartbeat, report,
//! ship logs, and read the DAG, XComs, variables and connections its templates use.
//!
//! The local worker of `standalone` reaches it in-process through the store
//! ([`StoreExecution`]); a remote worker reaches it over HTTP through an API server, and never
//! holds database credentials.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_model::DagRunState;

use crate::{
    ClaimRequest, ClaimedTask, ConnectionRecord, FinishReport, JobHeartbeat, LogAppend, LogChunk,
    Result, Store, TransitionResult, XCom,
};

/// A DAG file's text at one version, and where the file is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DagSource {
    pub fileloc: String,
    pub source: String,
}

#[async_trait]
pub trait TaskExecution: Send + Sync + 'static {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>>;
    /// Extends the leases of `claim_ids`; returns the claims that were lost.
    async fn heartbeat(
        &self,
        claim_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>>;
    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>>;
    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend>;
    async fn dag_version(
        &self,
        dag_id: &str,
        version: i64,
    ) -> Result<std::sync::Arc<updraft_model::Dag>>;
    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>>;
    async fn variables(&self) -> Result<Vec<(String, String)>>;
    /// The connections of the database, decrypted (the worker puts its environment's
    /// connections before them).
    async fn connections(&self) -> Result<Vec<ConnectionRecord>>;
    /// The source of a DAG's file at `version`, and the file's path: what a Python task
    /// executes. By default [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<DagSource> {
        let _ = (dag_id, version);
        Err(crate::StoreError::Unsupported(
            "reading a DAG's source from this worker".into(),
        ))
    }
    /// Sets a variable (`Variable.set` in a Python task). By default
    /// [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    async fn set_variable(&self, key: &str, value: &str) -> Result<()> {
        let _ = (key, value);
        Err(crate::StoreError::Unsupported(
            "setting a variable from this worker".into(),
        ))
    }
    /// The asset events that triggered run `dag_run_id` (an `asset_triggered` run's
    /// `triggering_asset_events`). By default
    /// [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    async fn triggering_asset_events(&self, dag_run_id: i64) -> Result<Vec<crate::AssetEvent>> {
        let _ = dag_run_id;
        Err(crate::StoreError::Unsupported(
            "reading a run's triggering asset events from this worker".into(),
        ))
    }
    /// Creates (or, with `reset_dag_run`, clears) a run of another DAG for a trigger task
    /// (`TriggerDagRunOperator`). By default [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    async fn trigger_dag_run(
        &self,
        request: crate::TriggerDagRunRequest,
    ) -> Result<crate::TriggerDagRunOutcome> {
        let _ = request;
        Err(crate::StoreError::Unsupported(
            "triggering a DAG run from this worker".into(),
        ))
    }
    /// The state of a DAG run, for a trigger task that waits for the run it started. By
    /// default [`StoreError::Unsupported`](crate::StoreError::Unsupported).
    async fn dag_run_state(&self, dag_id: &str, run_id: &str) -> Result<DagRunState> {
        let _ = (dag_id, run_id);
        Err(crate::StoreError::Unsupported(
            "reading a DAG run's state from this worker".into(),
        ))
    }
    /// Records that the worker is alive, its queues, and whether it is draining.
    async fn worker_heartbeat(&self, beat: JobHeartbeat) -> Result<()>;
    /// Whether logs should be sent with [`TaskExecution::append_log`]: remote workers do;
    /// the local worker writes them where the rest of the process reads them.
    fn ships_logs(&self) -> bool;
    /// Whether `claim` waits on the server until work arrives (long polling), so the worker
    /// need not wait between empty claims.
    fn claims_wait(&self) -> bool {
        false
    }
}

/// The task-execution operations straight on a store, for workers inside a process that has
/// the database (`standalone`, `dags test`, the API server).
pub struct StoreExecution(pub Arc<dyn Store>);

#[async_trait]
impl TaskExecution for StoreExecution {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>> {
        self.0.claim(request).await
    }

    async fn heartbeat(
        &self,
        claim_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        self.0.heartbeat(claim_ids, lease_until).await
    }

    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>> {
        self.0.finish(reports).await
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend> {
        self.0.append_log(chunk).await
    }

    async fn dag_version(
        &self,
        dag_id: &str,
        version: i64,
    ) -> Result<std::sync::Arc<updraft_model::Dag>> {
        self.0.get_dag_version(dag_id, version).await
    }

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>> {
        self.0.xcoms_for_run(dag_run_id).await
    }

    async fn variables(&self) -> Result<Vec<(String, String)>> {
        self.0.list_variables().await
    }

    async fn connections(&self) -> Result<Vec<ConnectionRecord>> {
        crate::all_connections(self.0.as_ref()).await
    }

    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<DagSource> {
        let source = self.0.dag_source(dag_id, version).await?;
        let fileloc = self.0.get_dag(dag_id).await?.fileloc;
        Ok(DagSource { fileloc, source })
    }

    async fn set_variable(&self, key: &str, value: &str) -> Result<()> {
        self.0.set_variable(key, value).await
    }

    async fn triggering_asset_events(&self, dag_run_id: i64) -> Result<Vec<crate::AssetEvent>> {
        self.0.triggering_asset_events(dag_run_id).await
    }

    async fn trigger_dag_run(
        &self,
        request: crate::TriggerDagRunRequest,
    ) -> Result<crate::TriggerDagRunOutcome> {
        crate::trigger_dag_run(self.0.as_ref(), request, Utc::now()).await
    }

    async fn dag_run_state(&self, dag_id: &str, run_id: &str) -> Result<DagRunState> {
        crate::dag_run_state(self.0.as_ref(), dag_id, run_id).await
    }

    async fn worker_heartbeat(&self, beat: JobHeartbeat) -> Result<()> {
        self.0.job_heartbeat(beat).await
    }

    fn ships_logs(&self) -> bool {
        false
    }
}

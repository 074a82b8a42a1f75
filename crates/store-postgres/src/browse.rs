//! TEMPORARY scaffolding: replaced by the real BrowseStore implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_store::*;

use crate::PostgresStore;

#[async_trait]
impl BrowseStore for PostgresStore {
    async fn query_dags(&self, query: DagQuery) -> Result<Page<DagSummary>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn dag_tags(&self, pattern: Option<LikePattern>, window: Window) -> Result<Page<String>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn dag_run_counts(&self, dag_ids: Option<Vec<String>>) -> Result<Vec<DagRunCounts>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn dag_versions(&self, dag_id: &str, window: Window) -> Result<Page<DagVersionRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<String> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_dag_runs(&self, query: DagRunQuery) -> Result<Page<DagRun>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_task_instances(
        &self,
        query: TaskInstanceQuery,
    ) -> Result<Page<TaskInstanceRow>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn task_tries(&self, ti_id: i64) -> Result<Vec<TaskTry>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_import_errors(
        &self,
        sort: Vec<Sort<ImportErrorSortField>>,
        window: Window,
    ) -> Result<Page<ImportErrorRow>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn get_import_error(&self, id: i64) -> Result<ImportErrorRow> {
        Err(StoreError::Database("not implemented yet".into()))
    }
}

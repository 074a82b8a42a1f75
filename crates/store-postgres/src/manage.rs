//! TEMPORARY scaffolding: replaced by the real ManageStore implementation.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_store::*;

use crate::PostgresStore;

#[async_trait]
impl ManageStore for PostgresStore {
    async fn set_dag_run_note(&self, id: i64, note: Option<String>) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn set_task_instance_note(&self, ti_id: i64, note: Option<String>) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn delete_dag_run(&self, id: i64) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn delete_dag(&self, dag_id: &str) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn mark_task_instances(&self, mark: MarkTaskInstances) -> Result<Vec<TaskInstance>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn force_dag_run_state(
        &self,
        id: i64,
        state: crate::DagRunState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_xcoms(&self, query: XComQuery) -> Result<Page<XComEntry>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn put_xcom(
        &self,
        key: XComKey,
        value: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<XComEntry> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn delete_xcom(&self, key: XComKey) -> Result<bool> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn get_variable_record(&self, key: &str) -> Result<Option<VariableRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn put_variable(&self, variable: VariableRecord) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_variables(
        &self,
        key_pattern: Option<crate::LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<VariableRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn pool_usage(&self) -> Result<HashMap<String, PoolUsage>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
}

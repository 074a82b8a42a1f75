//! TEMPORARY scaffolding: replaced by the real ConnectionStore implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_store::*;

use crate::PostgresStore;

#[async_trait]
impl ConnectionStore for PostgresStore {
    async fn get_connection(&self, conn_id: &str) -> Result<Option<ConnectionRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn put_connection(&self, connection: ConnectionRecord) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn delete_connection(&self, conn_id: &str) -> Result<bool> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_connections(
        &self,
        conn_id_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<ConnectionRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
}

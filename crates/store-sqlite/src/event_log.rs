//! TEMPORARY scaffolding: replaced by the real EventLogStore implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_store::*;

use crate::SqliteStore;

#[async_trait]
impl EventLogStore for SqliteStore {
    async fn add_event_log(&self, event: NewEventLog) -> Result<i64> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn get_event_log(&self, id: i64) -> Result<EventLogRecord> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn query_event_logs(&self, query: EventLogQuery) -> Result<Page<EventLogRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
}

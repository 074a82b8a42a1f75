//! TEMPORARY scaffolding: replaced by the real AuthStore implementation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use updraft_store::*;

use crate::PostgresStore;

#[async_trait]
impl AuthStore for PostgresStore {
    async fn create_user(&self, user: UserRecord) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn update_user(&self, user: UserRecord) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn record_login(&self, username: &str, at: DateTime<Utc>) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn revoke_token(
        &self,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn is_token_revoked(&self, token_id: &str) -> Result<bool> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn login_failures(&self, key: &str, since: DateTime<Utc>) -> Result<u32> {
        Err(StoreError::Database("not implemented yet".into()))
    }
    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        Err(StoreError::Database("not implemented yet".into()))
    }
}

//! Users, revoked tokens and failed logins: what API servers share so that any of them can
//! authenticate any request.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// A user of the API and the UI. Roles are Airflow's: `Viewer`, `User`, `Op`, `Admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    /// The PHC string of an Argon2id hash; never the password.
    pub password_hash: String,
    pub role: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Fails with `AlreadyExists` if the username is taken.
    async fn create_user(&self, user: UserRecord) -> Result<()>;
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>>;
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    /// Replaces every field but the username and `created_at`; `NotFound` if absent.
    async fn update_user(&self, user: UserRecord) -> Result<()>;
    /// Whether the user existed.
    async fn delete_user(&self, username: &str) -> Result<bool>;
    async fn record_login(&self, username: &str, at: DateTime<Utc>) -> Result<()>;

    /// Revokes a token by its id until it would have expired anyway; forgets revocations
    /// that expired before `now`.
    async fn revoke_token(
        &self,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn is_token_revoked(&self, token_id: &str) -> Result<bool>;

    /// Records a failed login under each of `keys` (e.g. `user:alice`, `addr:10.0.0.7`) and
    /// forgets failures older than `forget_before`.
    async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()>;
    /// Failed logins under `key` since `since`.
    async fn login_failures(&self, key: &str, since: DateTime<Utc>) -> Result<u32>;
    /// Forgets the failures under `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> Result<()>;
}

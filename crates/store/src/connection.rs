//! Connections (Airflow's: credentials and addresses of external systems) and the cipher that
//! keeps secrets encrypted at rest.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{LikePattern, Page, Result, Window};

/// A connection, in plain text. A backend given a [`Cipher`] stores `password` and `extra`
/// encrypted and decrypts them on reading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub conn_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub schema: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub port: Option<i32>,
    /// A JSON object, as text.
    pub extra: Option<String>,
}

/// Encrypts secrets before they are stored and decrypts them after they are read (Fernet
/// with `core.fernet_key`). Backends call it; they never know the key.
pub trait Cipher: Send + Sync {
    fn encrypt(&self, plain: &str) -> String;
    /// Fails when no key in use can decrypt `token` (a wrong or rotated-out key).
    fn decrypt(&self, token: &str) -> std::result::Result<String, CipherError>;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decrypt a stored secret: {0}")]
pub struct CipherError(pub String);

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn get_connection(&self, conn_id: &str) -> Result<Option<ConnectionRecord>>;
    /// Creates or replaces a connection.
    async fn put_connection(&self, connection: ConnectionRecord) -> Result<()>;
    /// Whether it existed.
    async fn delete_connection(&self, conn_id: &str) -> Result<bool>;
    /// Connections sorted by id (or descending), whose id matches the pattern, paged.
    async fn query_connections(
        &self,
        conn_id_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<ConnectionRecord>>;
}

/// Every connection, sorted by id, read a page at a time (for exports, rotations and the
/// worker's templates).
pub async fn all_connections<S: ConnectionStore + ?Sized>(
    store: &S,
) -> Result<Vec<ConnectionRecord>> {
    const PAGE: u32 = 1000;
    let mut all = Vec::new();
    loop {
        let page = store
            .query_connections(
                None,
                false,
                Window {
                    limit: PAGE,
                    offset: all.len() as u64,
                },
            )
            .await?;
        let got = page.items.len();
        all.extend(page.items);
        if got < PAGE as usize || all.len() as u64 >= page.total {
            return Ok(all);
        }
    }
}

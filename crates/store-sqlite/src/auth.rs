//! Users, revoked tokens and failed logins ([`AuthStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use updraft_store::*;

use crate::codec::{instant, micros, opt_instant, opt_micros};
use crate::dags::conversion;
use crate::manage::found;
use crate::{db_err, SqliteStore};

const USER_COLUMNS: &str = "username, password_hash, role, email, first_name, last_name, active, \
    created_at, last_login";

fn user_from_row(row: &Row) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        username: row.get(0)?,
        password_hash: row.get(1)?,
        role: row.get(2)?,
        email: row.get(3)?,
        first_name: row.get(4)?,
        last_name: row.get(5)?,
        active: row.get(6)?,
        created_at: instant(row.get(7)?).map_err(|e| conversion(7, e))?,
        last_login: opt_instant(row.get(8)?).map_err(|e| conversion(8, e))?,
    })
}

fn users(conn: &Connection) -> Result<Vec<UserRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM app_user ORDER BY username"
        ))
        .map_err(db_err)?;
    let rows = stmt.query_map([], user_from_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_user(&self, user: UserRecord) -> Result<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    &format!(
                        "INSERT INTO app_user ({USER_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                         ON CONFLICT (username) DO NOTHING"
                    ),
                    params![
                        user.username,
                        user.password_hash,
                        user.role,
                        user.email,
                        user.first_name,
                        user.last_name,
                        user.active,
                        micros(user.created_at),
                        opt_micros(user.last_login)
                    ],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::AlreadyExists(format!(
                    "user {:?}",
                    user.username
                )));
            }
            Ok(())
        })
        .await
        .inspect(|_| self.changed([Change::Everything]))
    }
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        let username = username.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM app_user WHERE username = ?1"
            ))
            .and_then(|mut s| s.query_row(params![username], user_from_row).optional())
            .map_err(db_err)
        })
        .await
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.read(users).await
    }
    async fn update_user(&self, user: UserRecord) -> Result<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE app_user SET password_hash = ?2, role = ?3, email = ?4, \
                     first_name = ?5, last_name = ?6, active = ?7, last_login = ?8 \
                     WHERE username = ?1",
                    params![
                        user.username,
                        user.password_hash,
                        user.role,
                        user.email,
                        user.first_name,
                        user.last_name,
                        user.active,
                        opt_micros(user.last_login)
                    ],
                )
                .map_err(db_err)?;
            found(n, || format!("user {:?}", user.username))
        })
        .await
        .inspect(|_| self.changed([Change::Everything]))
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        let username = username.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM app_user WHERE username = ?1",
                    params![username],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
        .inspect(|deleted| {
            if *deleted {
                self.changed([Change::Everything])
            }
        })
    }
    async fn record_login(&self, username: &str, at: DateTime<Utc>) -> Result<()> {
        let username = username.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE app_user SET last_login = ?2 WHERE username = ?1",
                    params![username, micros(at)],
                )
                .map_err(db_err)?;
            found(n, || format!("user {username:?}"))
        })
        .await
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let token_id = token_id.to_string();
        self.write(move |tx| {
            // Expired tokens are refused anyway: their revocations need not be kept.
            tx.execute(
                "DELETE FROM revoked_token WHERE expires_at < ?1",
                params![micros(now)],
            )
            .map_err(db_err)?;
            tx.execute(
                "INSERT INTO revoked_token (token_id, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT (token_id) DO UPDATE SET expires_at = excluded.expires_at",
                params![token_id, micros(expires_at)],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }
    async fn is_token_revoked(&self, token_id: &str) -> Result<bool> {
        let token_id = token_id.to_string();
        self.read(move |c| {
            let row: Option<i64> = c
                .prepare_cached("SELECT 1 FROM revoked_token WHERE token_id = ?1")
                .and_then(|mut s| s.query_row(params![token_id], |r| r.get(0)).optional())
                .map_err(db_err)?;
            Ok(row.is_some())
        })
        .await
    }

    async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let keys = keys.to_vec();
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM login_failure WHERE at < ?1",
                params![micros(forget_before)],
            )
            .map_err(db_err)?;
            let mut insert = tx
                .prepare_cached("INSERT INTO login_failure (key, at) VALUES (?1, ?2)")
                .map_err(db_err)?;
            for key in &keys {
                insert.execute(params![key, micros(at)]).map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }
    async fn login_failures(&self, key: &str, since: DateTime<Utc>) -> Result<u32> {
        let key = key.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT COUNT(*) FROM login_failure WHERE key = ?1 AND at >= ?2")
                .and_then(|mut s| s.query_row(params![key, micros(since)], |r| r.get(0)))
                .map_err(db_err)
        })
        .await
    }
    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM login_failure WHERE key = ?1", params![key])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

//! Users, revoked tokens and failed logins ([`AuthStore`]): what every API server of a
//! cluster shares to authenticate any request.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use updraft_store::*;

use crate::changes::Announce;
use crate::codec::{col, col_instant, col_opt_instant, micros, opt_micros, to_u32};
use crate::manage::found;
use crate::{db_err, PostgresStore};

const USER_COLUMNS: &str = "username, password_hash, role, email, first_name, last_name, active, \
    created_at, last_login";

fn user_from_row(row: &PgRow) -> Result<UserRecord> {
    Ok(UserRecord {
        username: col(row, 0)?,
        password_hash: col(row, 1)?,
        role: col(row, 2)?,
        email: col(row, 3)?,
        first_name: col(row, 4)?,
        last_name: col(row, 5)?,
        active: col(row, 6)?,
        created_at: col_instant(row, 7)?,
        last_login: col_opt_instant(row, 8)?,
    })
}

#[async_trait]
impl AuthStore for PostgresStore {
    async fn create_user(&self, user: UserRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(&format!(
            "INSERT INTO app_user ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (username) DO NOTHING"
        ))
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(user.active)
        .bind(micros(user.created_at))
        .bind(opt_micros(user.last_login))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "user {:?}",
                user.username
            )));
        }
        // Every api-server drops what it cached about users.
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM app_user WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM app_user ORDER BY username"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }
    async fn update_user(&self, user: UserRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE app_user SET password_hash = $2, role = $3, email = $4, first_name = $5, \
             last_name = $6, active = $7, last_login = $8 WHERE username = $1",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(user.active)
        .bind(opt_micros(user.last_login))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        found(n, || format!("user {:?}", user.username))?;
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn delete_user(&self, username: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM app_user WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        self.commit(tx, (n > 0).then_some(Announce::Everything))
            .await?;
        Ok(n > 0)
    }
    async fn record_login(&self, username: &str, at: DateTime<Utc>) -> Result<()> {
        let n = sqlx::query("UPDATE app_user SET last_login = $2 WHERE username = $1")
            .bind(username)
            .bind(micros(at))
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?
            .rows_affected();
        found(n, || format!("user {username:?}"))
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Expired tokens are refused anyway: their revocations need not be kept.
        sqlx::query("DELETE FROM revoked_token WHERE expires_at < $1")
            .bind(micros(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO revoked_token (token_id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (token_id) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(token_id)
        .bind(micros(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Every api-server drops the token from its cache at once, not when the cache expires.
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn is_token_revoked(&self, token_id: &str) -> Result<bool> {
        let row: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM revoked_token WHERE token_id = $1")
                .bind(token_id)
                .fetch_optional(&mut *self.conn().await?)
                .await
                .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn record_login_failure(
        &self,
        keys: &[String],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_failure WHERE at < $1")
            .bind(micros(forget_before))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO login_failure (key, at) SELECT k, $2 FROM UNNEST($1::text[]) AS k",
        )
        .bind(keys)
        .bind(micros(at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        self.commit(tx, None).await
    }
    async fn login_failures(&self, key: &str, since: DateTime<Utc>) -> Result<u32> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM login_failure WHERE key = $1 AND at >= $2")
                .bind(key)
                .bind(micros(since))
                .fetch_one(&mut *self.conn().await?)
                .await
                .map_err(db_err)?;
        to_u32(n)
    }
    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failure WHERE key = $1")
            .bind(key)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

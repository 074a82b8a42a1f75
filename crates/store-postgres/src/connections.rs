//! Connections ([`ConnectionStore`]): `password` and `extra` go through the store's
//! [`Secrets`], sealed on writing and opened according to their row's flags.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use updraft_store::*;

use crate::codec::col;
use crate::variables::{window_args, LIKE_FILTER};
use crate::{db_err, PostgresStore};

const COLUMNS: &str = "conn_id, conn_type, description, host, schema, login, password, port, \
    extra, is_encrypted, is_extra_encrypted";

fn open(secrets: &Secrets, row: &PgRow) -> Result<ConnectionRecord> {
    let conn_id: String = col(row, 0)?;
    let password_name = || format!("password of connection `{conn_id}`");
    let extra_name = || format!("extra of connection `{conn_id}`");
    let password = secrets.open_opt(col(row, 6)?, col(row, 9)?, &password_name)?;
    let extra = secrets.open_opt(col(row, 8)?, col(row, 10)?, &extra_name)?;
    Ok(ConnectionRecord {
        conn_type: col(row, 1)?,
        description: col(row, 2)?,
        host: col(row, 3)?,
        schema: col(row, 4)?,
        login: col(row, 5)?,
        password,
        port: col(row, 7)?,
        extra,
        conn_id,
    })
}

#[async_trait]
impl ConnectionStore for PostgresStore {
    async fn get_connection(&self, conn_id: &str) -> Result<Option<ConnectionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connection WHERE conn_id = $1"
        ))
        .bind(conn_id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        row.map(|row| open(&self.secrets, &row)).transpose()
    }
    async fn put_connection(&self, c: ConnectionRecord) -> Result<()> {
        let (password, password_encrypted) = self.secrets.seal_opt(c.password.as_deref());
        let (extra, extra_encrypted) = self.secrets.seal_opt(c.extra.as_deref());
        sqlx::query(&format!(
            "INSERT INTO connection ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, \
             description = excluded.description, host = excluded.host, \
             schema = excluded.schema, login = excluded.login, password = excluded.password, \
             port = excluded.port, extra = excluded.extra, is_encrypted = excluded.is_encrypted, \
             is_extra_encrypted = excluded.is_extra_encrypted"
        ))
        .bind(&c.conn_id)
        .bind(&c.conn_type)
        .bind(&c.description)
        .bind(&c.host)
        .bind(&c.schema)
        .bind(&c.login)
        .bind(password)
        .bind(c.port)
        .bind(extra)
        .bind(password_encrypted)
        .bind(extra_encrypted)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn delete_connection(&self, conn_id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM connection WHERE conn_id = $1")
            .bind(conn_id)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n > 0 {
            self.changed([Change::Everything]);
        }
        Ok(n > 0)
    }
    async fn query_connections(
        &self,
        conn_id_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<ConnectionRecord>> {
        let filter = LIKE_FILTER.replace("{column}", "conn_id");
        let mut conn = self.conn().await?;
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM connection WHERE {filter}"))
                .bind(&conn_id_pattern)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
        let (limit, offset) = window_args(window);
        let order = if descending { "DESC" } else { "ASC" };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connection WHERE {filter} ORDER BY conn_id {order} \
             LIMIT $2 OFFSET $3"
        ))
        .bind(&conn_id_pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        Ok(Page {
            items: rows
                .iter()
                .map(|row| open(&self.secrets, row))
                .collect::<Result<_>>()?,
            total: total.max(0) as u64,
        })
    }
}

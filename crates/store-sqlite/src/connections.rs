//! Connections ([`ConnectionStore`]): `password` and `extra` go through the store's
//! [`Secrets`], sealed on writing and opened according to their row's flags.

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use updraft_store::*;

use crate::manage::window_args;
use crate::variables::like_filter;
use crate::{db_err, SqliteStore};

const COLUMNS: &str = "conn_id, conn_type, description, host, schema, login, password, port, \
    extra, is_encrypted, is_extra_encrypted";

/// A row as stored: the record with sealed secrets, and their flags.
struct Stored {
    record: ConnectionRecord,
    password_encrypted: bool,
    extra_encrypted: bool,
}

fn stored_from_row(row: &Row) -> rusqlite::Result<Stored> {
    Ok(Stored {
        record: ConnectionRecord {
            conn_id: row.get(0)?,
            conn_type: row.get(1)?,
            description: row.get(2)?,
            host: row.get(3)?,
            schema: row.get(4)?,
            login: row.get(5)?,
            password: row.get(6)?,
            port: row.get(7)?,
            extra: row.get(8)?,
        },
        password_encrypted: row.get(9)?,
        extra_encrypted: row.get(10)?,
    })
}

fn open(secrets: &Secrets, stored: Stored) -> Result<ConnectionRecord> {
    let mut record = stored.record;
    let conn_id = record.conn_id.clone();
    let password_name = || format!("password of connection `{conn_id}`");
    let extra_name = || format!("extra of connection `{conn_id}`");
    record.password = secrets.open_opt(
        record.password.take(),
        stored.password_encrypted,
        &password_name,
    )?;
    record.extra = secrets.open_opt(record.extra.take(), stored.extra_encrypted, &extra_name)?;
    Ok(record)
}

fn get(conn: &Connection, secrets: &Secrets, conn_id: &str) -> Result<Option<ConnectionRecord>> {
    let stored = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM connection WHERE conn_id = ?1"
        ))
        .and_then(|mut s| s.query_row(params![conn_id], stored_from_row).optional())
        .map_err(db_err)?;
    stored.map(|s| open(secrets, s)).transpose()
}

fn query(
    conn: &Connection,
    secrets: &Secrets,
    pattern: Option<LikePattern>,
    descending: bool,
    window: Window,
) -> Result<Page<ConnectionRecord>> {
    let (filter, args) = like_filter("conn_id", &pattern);
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM connection {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let (limit, offset) = window_args(window);
    let order = if descending { "DESC" } else { "ASC" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM connection {filter} ORDER BY conn_id {order} \
             LIMIT {limit} OFFSET {offset}"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), stored_from_row)
        .map_err(db_err)?;
    let mut items = Vec::new();
    for row in rows {
        items.push(open(secrets, row.map_err(db_err)?)?);
    }
    Ok(Page {
        items,
        total: total.max(0) as u64,
    })
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn get_connection(&self, conn_id: &str) -> Result<Option<ConnectionRecord>> {
        let (conn_id, secrets) = (conn_id.to_string(), self.secrets.clone());
        self.read(move |c| get(c, &secrets, &conn_id)).await
    }
    async fn put_connection(&self, connection: ConnectionRecord) -> Result<()> {
        let (password, password_encrypted) = self.secrets.seal_opt(connection.password.as_deref());
        let (extra, extra_encrypted) = self.secrets.seal_opt(connection.extra.as_deref());
        self.write(move |tx| {
            let c = connection;
            tx.execute(
                &format!(
                    "INSERT INTO connection ({COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, \
                     description = excluded.description, host = excluded.host, \
                     schema = excluded.schema, login = excluded.login, \
                     password = excluded.password, port = excluded.port, extra = excluded.extra, \
                     is_encrypted = excluded.is_encrypted, \
                     is_extra_encrypted = excluded.is_extra_encrypted"
                ),
                params![
                    c.conn_id,
                    c.conn_type,
                    c.description,
                    c.host,
                    c.schema,
                    c.login,
                    password,
                    c.port,
                    extra,
                    password_encrypted,
                    extra_encrypted
                ],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
        .inspect(|_| self.changed([Change::Everything]))
    }
    async fn delete_connection(&self, conn_id: &str) -> Result<bool> {
        let conn_id = conn_id.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM connection WHERE conn_id = ?1",
                    params![conn_id],
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
    async fn query_connections(
        &self,
        conn_id_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<ConnectionRecord>> {
        let secrets = self.secrets.clone();
        self.read(move |c| query(c, &secrets, conn_id_pattern, descending, window))
            .await
    }
}

//! Variables and XComs: small keyed values that templates read. Variable values go through
//! the store's [`Secrets`]: sealed on writing, opened by their row's flag.

use sqlx::PgConnection;
use updraft_store::{Page, PoolRecord, Result, Secrets, StoreError, VariableRecord, Window, XCom};

use crate::codec::{col, col_u32};
use crate::db_err;

pub async fn xcoms_for_run(conn: &mut PgConnection, dag_run_id: i64) -> Result<Vec<XCom>> {
    let rows = sqlx::query(
        "SELECT task_id, key, value, map_index FROM xcom WHERE dag_run_id = $1 \
         ORDER BY task_id, map_index, key",
    )
    .bind(dag_run_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let task_id: String = col(row, 0)?;
            let key: String = col(row, 1)?;
            let value: String = col(row, 2)?;
            let map_index: i64 = col(row, 3)?;
            let value = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("xcom {task_id}/{key}: {e}")))?;
            Ok(XCom {
                task_id,
                map_index,
                key,
                value,
            })
        })
        .collect()
}

/// How a variable is named in errors about its value.
pub(crate) fn variable_name(key: &str) -> impl Fn() -> String + '_ {
    move || format!("variable `{key}`")
}

pub async fn get(conn: &mut PgConnection, secrets: &Secrets, key: &str) -> Result<Option<String>> {
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT val, is_encrypted FROM variable WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    row.map(|(val, encrypted)| secrets.open(val, encrypted, &variable_name(key)))
        .transpose()
}

/// Stores `value` as given (already sealed: `encrypted` says whether it is); the description
/// is kept.
pub async fn set(conn: &mut PgConnection, key: &str, value: &str, encrypted: bool) -> Result<()> {
    sqlx::query(
        "INSERT INTO variable (key, val, is_encrypted) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val, is_encrypted = excluded.is_encrypted",
    )
    .bind(key)
    .bind(value)
    .bind(encrypted)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn delete(conn: &mut PgConnection, key: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM variable WHERE key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?
        .rows_affected();
    Ok(n > 0)
}

pub async fn list(conn: &mut PgConnection, secrets: &Secrets) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT key, val, is_encrypted FROM variable ORDER BY key")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let key: String = col(row, 0)?;
            let val = secrets.open(col(row, 1)?, col(row, 2)?, &variable_name(&key))?;
            Ok((key, val))
        })
        .collect()
}

pub async fn set_pool(conn: &mut PgConnection, pool: &PoolRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO pool (name, slots, description) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, \
         description = excluded.description",
    )
    .bind(&pool.name)
    .bind(i64::from(pool.slots))
    .bind(&pool.description)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn list_pools(conn: &mut PgConnection) -> Result<Vec<PoolRecord>> {
    let rows = sqlx::query("SELECT name, slots, description FROM pool ORDER BY name")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(PoolRecord {
                name: col(row, 0)?,
                slots: col_u32(row, 1)?,
                description: col(row, 2)?,
            })
        })
        .collect()
}

pub async fn delete_pool(conn: &mut PgConnection, name: &str) -> Result<bool> {
    let n = sqlx::query("DELETE FROM pool WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?
        .rows_affected();
    Ok(n > 0)
}

fn record_from(secrets: &Secrets, row: &sqlx::postgres::PgRow) -> Result<VariableRecord> {
    let key: String = col(row, 0)?;
    let encrypted: bool = col(row, 2)?;
    let value = secrets.open(col(row, 1)?, encrypted, &variable_name(&key))?;
    Ok(VariableRecord {
        key,
        value,
        description: col(row, 3)?,
        is_encrypted: encrypted,
    })
}

pub async fn get_record(
    conn: &mut PgConnection,
    secrets: &Secrets,
    key: &str,
) -> Result<Option<VariableRecord>> {
    let row =
        sqlx::query("SELECT key, val, is_encrypted, description FROM variable WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    row.map(|row| record_from(secrets, &row)).transpose()
}

/// Creates or replaces a variable with its description; `value` is already sealed.
pub async fn put(
    conn: &mut PgConnection,
    key: &str,
    value: &str,
    encrypted: bool,
    description: &Option<String>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO variable (key, val, is_encrypted, description) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val, \
         is_encrypted = excluded.is_encrypted, description = excluded.description",
    )
    .bind(key)
    .bind(value)
    .bind(encrypted)
    .bind(description)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// `LIMIT`/`OFFSET` of a window as PostgreSQL `BIGINT`s (an offset past `i64::MAX` is no row).
pub(crate) fn window_args(window: Window) -> (i64, i64) {
    (
        i64::from(window.limit),
        i64::try_from(window.offset).unwrap_or(i64::MAX),
    )
}

/// A `*_pattern` filter: a case-insensitive substring with the caller's `%` and `_`
/// wildcards (`\` escapes them); `$1` is the pattern or NULL for none.
pub(crate) const LIKE_FILTER: &str = "($1::text IS NULL OR {column} ILIKE '%' || $1 || '%')";

pub async fn query(
    conn: &mut PgConnection,
    secrets: &Secrets,
    key_pattern: Option<String>,
    descending: bool,
    window: Window,
) -> Result<Page<VariableRecord>> {
    let filter = LIKE_FILTER.replace("{column}", "key");
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM variable WHERE {filter}"))
        .bind(&key_pattern)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let (limit, offset) = window_args(window);
    let order = if descending { "DESC" } else { "ASC" };
    let rows = sqlx::query(&format!(
        "SELECT key, val, is_encrypted, description FROM variable WHERE {filter} \
         ORDER BY key {order} LIMIT $2 OFFSET $3"
    ))
    .bind(&key_pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(Page {
        items: rows
            .iter()
            .map(|row| record_from(secrets, row))
            .collect::<Result<_>>()?,
        total: total.max(0) as u64,
    })
}

//! Variables and XComs: small keyed values that templates read.

use sqlx::PgConnection;
use updraft_store::{PoolRecord, Result, StoreError, XCom};

use crate::codec::{col, col_u32};
use crate::db_err;

pub async fn xcoms_for_run(conn: &mut PgConnection, dag_run_id: i64) -> Result<Vec<XCom>> {
    let rows = sqlx::query(
        "SELECT task_id, key, value FROM xcom WHERE dag_run_id = $1 \
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
            let value = serde_json::from_str(&value)
                .map_err(|e| StoreError::Corrupt(format!("xcom {task_id}/{key}: {e}")))?;
            Ok(XCom {
                task_id,
                key,
                value,
            })
        })
        .collect()
}

pub async fn get(conn: &mut PgConnection, key: &str) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT val FROM variable WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)
}

pub async fn set(conn: &mut PgConnection, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO variable (key, val) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val",
    )
    .bind(key)
    .bind(value)
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

pub async fn list(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT key, val FROM variable ORDER BY key")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| Ok((col(row, 0)?, col(row, 1)?)))
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

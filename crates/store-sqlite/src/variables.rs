//! Variables, XComs and pools: small keyed values that templates and queueing read.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use updraft_store::{PoolRecord, Result, StoreError, XCom};

use crate::db_err;

pub fn xcoms_for_run(conn: &Connection, dag_run_id: i64) -> Result<Vec<XCom>> {
    let mut stmt = conn
        .prepare_cached("SELECT task_id, key, value FROM xcom WHERE dag_run_id = ?1")
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![dag_run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (task_id, key, value) = row.map_err(db_err)?;
        let value = serde_json::from_str(&value)
            .map_err(|e| StoreError::Corrupt(format!("xcom {task_id}/{key}: {e}")))?;
        out.push(XCom {
            task_id,
            key,
            value,
        });
    }
    Ok(out)
}

pub fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT val FROM variable WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map_err(db_err)
}

pub fn set(tx: &Transaction, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO variable (key, val) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val",
        params![key, value],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn delete(tx: &Transaction, key: &str) -> Result<bool> {
    let n = tx
        .execute("DELETE FROM variable WHERE key = ?1", params![key])
        .map_err(db_err)?;
    Ok(n > 0)
}

pub fn list(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT key, val FROM variable ORDER BY key")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn set_pool(tx: &Transaction, pool: &PoolRecord) -> Result<()> {
    tx.execute(
        "INSERT INTO pool (name, slots, description) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, \
           description = excluded.description",
        params![pool.name, pool.slots, pool.description],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn list_pools(conn: &Connection) -> Result<Vec<PoolRecord>> {
    let mut stmt = conn
        .prepare_cached("SELECT name, slots, description FROM pool ORDER BY name")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(PoolRecord {
                name: r.get(0)?,
                slots: r.get(1)?,
                description: r.get(2)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn delete_pool(tx: &Transaction, name: &str) -> Result<bool> {
    let n = tx
        .execute("DELETE FROM pool WHERE name = ?1", params![name])
        .map_err(db_err)?;
    Ok(n > 0)
}

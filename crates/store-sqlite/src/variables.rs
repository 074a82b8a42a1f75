//! Variables, XComs and pools: small keyed values that templates and queueing read. Variable
//! values go through the store's [`Secrets`]: sealed on writing, opened by their row's flag.

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use updraft_store::{Page, PoolRecord, Result, Secrets, StoreError, VariableRecord, Window, XCom};

use crate::db_err;

pub fn xcoms_for_run(conn: &Connection, dag_run_id: i64) -> Result<Vec<XCom>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT task_id, key, value, map_index FROM xcom WHERE dag_run_id = ?1 \
             ORDER BY task_id, map_index, key",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![dag_run_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (task_id, key, value, map_index) = row.map_err(db_err)?;
        let value = serde_json::from_str(&value)
            .map_err(|e| StoreError::Corrupt(format!("xcom {task_id}/{key}: {e}")))?;
        out.push(XCom {
            task_id,
            map_index,
            key,
            value,
        });
    }
    Ok(out)
}

/// How a variable is named in errors about its value.
pub(crate) fn variable_name(key: &str) -> impl Fn() -> String + '_ {
    move || format!("variable `{key}`")
}

pub fn get(conn: &Connection, secrets: &Secrets, key: &str) -> Result<Option<String>> {
    let row: Option<(String, bool)> = conn
        .prepare_cached("SELECT val, is_encrypted FROM variable WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db_err)?;
    row.map(|(val, encrypted)| secrets.open(val, encrypted, &variable_name(key)))
        .transpose()
}

/// Stores `value` as given (already sealed: `encrypted` says whether it is); the description
/// is kept.
pub fn set(tx: &Transaction, key: &str, value: &str, encrypted: bool) -> Result<()> {
    tx.execute(
        "INSERT INTO variable (key, val, is_encrypted) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val, is_encrypted = excluded.is_encrypted",
        params![key, value, encrypted],
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

pub fn list(conn: &Connection, secrets: &Secrets) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT key, val, is_encrypted FROM variable ORDER BY key")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (key, val, encrypted) = row.map_err(db_err)?;
        let val = secrets.open(val, encrypted, &variable_name(&key))?;
        out.push((key, val));
    }
    Ok(out)
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

fn record_from(
    secrets: &Secrets,
    (key, val, encrypted, description): (String, String, bool, Option<String>),
) -> Result<VariableRecord> {
    let value = secrets.open(val, encrypted, &variable_name(&key))?;
    Ok(VariableRecord {
        key,
        value,
        description,
        is_encrypted: encrypted,
    })
}

type VariableRow = (String, String, bool, Option<String>);

fn variable_row(r: &rusqlite::Row) -> rusqlite::Result<VariableRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub fn get_record(
    conn: &Connection,
    secrets: &Secrets,
    key: &str,
) -> Result<Option<VariableRecord>> {
    let row = conn
        .prepare_cached("SELECT key, val, is_encrypted, description FROM variable WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], variable_row).optional())
        .map_err(db_err)?;
    row.map(|row| record_from(secrets, row)).transpose()
}

/// Creates or replaces a variable with its description; `value` is already sealed.
pub fn put(
    tx: &Transaction,
    key: &str,
    value: &str,
    encrypted: bool,
    description: &Option<String>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO variable (key, val, is_encrypted, description) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key) DO UPDATE SET val = excluded.val, \
           is_encrypted = excluded.is_encrypted, description = excluded.description",
        params![key, value, encrypted, description],
    )
    .map_err(db_err)?;
    Ok(())
}

/// A `*_pattern` filter on `column`: a case-insensitive substring with the caller's `%` and
/// `_` wildcards; `\` escapes them, as in PostgreSQL. SQLite's `LIKE` ignores ASCII case.
pub(crate) fn like_filter(column: &str, pattern: &Option<String>) -> (String, Vec<String>) {
    match pattern {
        Some(p) => (
            format!("WHERE {column} LIKE '%' || ?1 || '%' ESCAPE '\\'"),
            vec![p.clone()],
        ),
        None => (String::new(), Vec::new()),
    }
}

pub fn query(
    conn: &Connection,
    secrets: &Secrets,
    key_pattern: Option<String>,
    descending: bool,
    window: Window,
) -> Result<Page<VariableRecord>> {
    let (filter, args) = like_filter("key", &key_pattern);
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM variable {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let (limit, offset) = crate::manage::window_args(window);
    let order = if descending { "DESC" } else { "ASC" };
    let mut stmt = conn
        .prepare(&format!(
            "SELECT key, val, is_encrypted, description FROM variable {filter} \
             ORDER BY key {order} LIMIT {limit} OFFSET {offset}"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), variable_row)
        .map_err(db_err)?;
    let mut items = Vec::new();
    for row in rows {
        items.push(record_from(secrets, row.map_err(db_err)?)?);
    }
    Ok(Page {
        items,
        total: total.max(0) as u64,
    })
}

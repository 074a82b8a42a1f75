//! DAG rows: publishing a folder scan as DAG versions, pausing, and the next-run bookkeeping.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use updraft_model::Schedule;
use updraft_store::{DagRecord, DagSync, ImportErrorRecord, Result, StoreError, SyncReport};

use crate::codec::{micros, opt_instant, opt_micros};
use crate::db_err;

const DAG_COLUMNS: &str =
    "dag_id, fileloc, is_paused, is_active, version, schedule, tags, description, next_dagrun";

fn dag_from_row(row: &Row) -> rusqlite::Result<DagRecord> {
    let tags: String = row.get(6)?;
    let next: Option<i64> = row.get(8)?;
    Ok(DagRecord {
        dag_id: row.get(0)?,
        fileloc: row.get(1)?,
        is_paused: row.get(2)?,
        is_active: row.get(3)?,
        version: row.get(4)?,
        schedule: row.get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        description: row.get(7)?,
        next_dagrun: opt_instant(next).map_err(|e| conversion(8, e))?,
    })
}

pub(crate) fn conversion(index: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
}

pub fn sync(tx: &Transaction, sync: &DagSync) -> Result<SyncReport> {
    let mut existing: HashMap<String, (bool, i64, String, String)> = HashMap::new();
    {
        let mut stmt = tx
            .prepare(
                "SELECT d.dag_id, d.is_active, d.version, v.content_hash, d.fileloc FROM dag d \
                 JOIN dag_version v ON v.dag_id = d.dag_id AND v.version = d.version",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                ))
            })
            .map_err(db_err)?;
        for row in rows {
            let (id, info) = row.map_err(db_err)?;
            existing.insert(id, info);
        }
    }
    let now = micros(sync.now);
    let mut report = SyncReport::default();
    let mut seen = HashSet::new();
    for upsert in &sync.dags {
        let dag = &upsert.dag;
        seen.insert(dag.dag_id.clone());
        let definition = serde_json::to_string(dag)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize DAG: {e}")))?;
        let tags = serde_json::to_string(&dag.tags).unwrap_or_else(|_| "[]".into());
        let has_schedule = dag.schedule != Schedule::None;
        let schedule = dag.schedule.describe();
        match existing.get(&dag.dag_id) {
            Some((active, version, hash, fileloc)) if *hash == upsert.content_hash => {
                if !active || *fileloc != upsert.fileloc {
                    tx.execute(
                        "UPDATE dag SET is_active = 1, fileloc = ?2, needs_next_dagrun = 1 \
                         WHERE dag_id = ?1",
                        params![dag.dag_id, upsert.fileloc],
                    )
                    .map_err(db_err)?;
                    report.updated.push(dag.dag_id.clone());
                }
                let _ = version;
            }
            Some((_, version, _, _)) => {
                let version = version + 1;
                insert_version(tx, upsert, version, &definition, now)?;
                tx.execute(
                    "UPDATE dag SET fileloc = ?2, is_active = 1, version = ?3, schedule = ?4, \
                     has_schedule = ?5, tags = ?6, description = ?7, needs_next_dagrun = 1, \
                     last_parsed_at = ?8 WHERE dag_id = ?1",
                    params![
                        dag.dag_id,
                        upsert.fileloc,
                        version,
                        schedule,
                        has_schedule,
                        tags,
                        dag.description,
                        now
                    ],
                )
                .map_err(db_err)?;
                report.updated.push(dag.dag_id.clone());
            }
            None => {
                tx.execute(
                    "INSERT INTO dag (dag_id, fileloc, is_paused, is_active, version, schedule, \
                     has_schedule, tags, description, needs_next_dagrun, last_parsed_at) \
                     VALUES (?1, ?2, ?8, 1, 1, ?3, ?4, ?5, ?6, 1, ?7)",
                    params![
                        dag.dag_id,
                        upsert.fileloc,
                        schedule,
                        has_schedule,
                        tags,
                        dag.description,
                        now,
                        sync.paused_at_creation
                    ],
                )
                .map_err(db_err)?;
                insert_version(tx, upsert, 1, &definition, now)?;
                report.added.push(dag.dag_id.clone());
            }
        }
    }
    for (dag_id, (active, _, _, fileloc)) in &existing {
        let in_scanned_folder = sync
            .folder
            .as_deref()
            .is_none_or(|folder| std::path::Path::new(fileloc).starts_with(folder));
        if *active && !seen.contains(dag_id) && in_scanned_folder {
            tx.execute(
                "UPDATE dag SET is_active = 0, next_dagrun = NULL WHERE dag_id = ?1",
                params![dag_id],
            )
            .map_err(db_err)?;
            report.deactivated.push(dag_id.clone());
        }
    }
    replace_import_errors(tx, &sync.import_errors, now)?;
    report.added.sort();
    report.updated.sort();
    report.deactivated.sort();
    Ok(report)
}

fn insert_version(
    tx: &Transaction,
    upsert: &updraft_store::DagUpsert,
    version: i64,
    definition: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO dag_version (dag_id, version, content_hash, definition, source, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            upsert.dag.dag_id,
            version,
            upsert.content_hash,
            definition,
            upsert.source,
            now
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

fn replace_import_errors(tx: &Transaction, errors: &[ImportErrorRecord], now: i64) -> Result<()> {
    let current = import_errors(tx)?;
    if current.as_slice() == errors {
        return Ok(());
    }
    tx.execute("DELETE FROM import_error", []).map_err(db_err)?;
    for e in errors {
        tx.execute(
            "INSERT OR REPLACE INTO import_error (filename, error, timestamp) VALUES (?1, ?2, ?3)",
            params![e.filename, e.error, now],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

pub fn list(conn: &Connection) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!("SELECT {DAG_COLUMNS} FROM dag WHERE is_active = 1 ORDER BY dag_id"),
        [],
    )
}

fn query_dags<P: rusqlite::Params>(conn: &Connection, sql: &str, p: P) -> Result<Vec<DagRecord>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(p, dag_from_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn get(conn: &Connection, dag_id: &str) -> Result<DagRecord> {
    conn.query_row(
        &format!("SELECT {DAG_COLUMNS} FROM dag WHERE dag_id = ?1 AND is_active = 1"),
        params![dag_id],
        dag_from_row,
    )
    .optional()
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("DAG {dag_id:?}")))
}

pub fn definition(conn: &Connection, dag_id: &str, version: i64) -> Result<updraft_model::Dag> {
    let text: String = conn
        .prepare_cached("SELECT definition FROM dag_version WHERE dag_id = ?1 AND version = ?2")
        .and_then(|mut s| {
            s.query_row(params![dag_id, version], |r| r.get(0))
                .optional()
        })
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("version {version} of DAG {dag_id:?}")))?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("definition of DAG {dag_id:?}: {e}")))
}

pub fn set_paused(tx: &Transaction, dag_id: &str, paused: bool) -> Result<()> {
    let changed = tx
        .execute(
            "UPDATE dag SET is_paused = ?2, needs_next_dagrun = 1 WHERE dag_id = ?1 AND is_active = 1",
            params![dag_id, paused],
        )
        .map_err(db_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
    }
    Ok(())
}

pub fn import_errors(conn: &Connection) -> Result<Vec<ImportErrorRecord>> {
    let mut stmt = conn
        .prepare_cached("SELECT filename, error FROM import_error ORDER BY filename")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ImportErrorRecord {
                filename: r.get(0)?,
                error: r.get(1)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn needing_next_run(conn: &Connection) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!(
            "SELECT {DAG_COLUMNS} FROM dag WHERE is_active = 1 AND is_paused = 0 \
             AND has_schedule = 1 AND needs_next_dagrun = 1"
        ),
        [],
    )
}

pub fn set_next_dagrun(tx: &Transaction, dag_id: &str, next: Option<DateTime<Utc>>) -> Result<()> {
    tx.execute(
        "UPDATE dag SET next_dagrun = ?2, needs_next_dagrun = 0 WHERE dag_id = ?1",
        params![dag_id, opt_micros(next)],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn due(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!(
            "SELECT {DAG_COLUMNS} FROM dag WHERE is_active = 1 AND is_paused = 0 \
             AND needs_next_dagrun = 0 AND next_dagrun IS NOT NULL AND next_dagrun <= ?1 \
             ORDER BY next_dagrun"
        ),
        params![micros(now)],
    )
}

pub fn earliest_next_dagrun(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MIN(next_dagrun) FROM dag WHERE is_active = 1 AND is_paused = 0 \
             AND needs_next_dagrun = 0",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    opt_instant(v)
}

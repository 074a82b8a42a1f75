//! DAG rows: publishing a folder scan as DAG versions, pausing, and the next-run bookkeeping.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use updraft_store::{
    plan_file_records, plan_sync, readable_file_record, under, unknown_dag_ids, DagFileOutcome,
    DagFileRecord, DagRecord, DagSync, DagUpsert, DagWrite, ImportErrorRecord, PublishedDag,
    Result, StoreError, SyncReport, VersionsWritten,
};

use crate::codec::{instant, micros, opt_instant, opt_micros};
use crate::db_err;

pub(crate) const DAG_COLUMNS: &str =
    "dag_id, fileloc, is_paused, is_active, version, schedule, tags, description, next_dagrun, last_parsed_at";

pub(crate) fn dag_from_row(row: &Row) -> rusqlite::Result<DagRecord> {
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
        last_parsed_at: instant(row.get(9)?).map_err(|e| conversion(9, e))?,
    })
}

pub(crate) fn conversion(index: usize, e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
}

/// Makes the database match the scan (as [`plan_sync`] decides); also says whether anything
/// changed (for watchers).
pub fn sync(tx: &Transaction, sync: &DagSync) -> Result<(SyncReport, bool, VersionsWritten)> {
    let existing = published(tx)?;
    let stored_errors = import_errors(tx)?;
    let deleted = deleted_versions(tx, &unknown_dag_ids(sync, &existing))?;
    let plan = plan_sync(sync, &existing, &stored_errors, &deleted);
    let now = micros(sync.now);
    for write in &plan.writes {
        match *write {
            DagWrite::Reactivate(upsert) => {
                tx.execute(
                    "UPDATE dag SET is_active = 1, fileloc = ?2, needs_next_dagrun = 1 \
                     WHERE dag_id = ?1",
                    params![upsert.dag.dag_id, upsert.fileloc],
                )
                .map_err(db_err)?;
            }
            DagWrite::NewVersion { upsert, version } => {
                let dag = &upsert.dag;
                insert_version(tx, upsert, version, now)?;
                crate::assets::register(tx, dag, now)?;
                tx.execute(
                    "UPDATE dag SET fileloc = ?2, is_active = 1, version = ?3, schedule = ?4, \
                     has_schedule = ?5, tags = ?6, description = ?7, needs_next_dagrun = 1, \
                     last_parsed_at = ?8 WHERE dag_id = ?1",
                    params![
                        dag.dag_id,
                        upsert.fileloc,
                        version,
                        dag.schedule.describe(),
                        upsert.has_schedule(),
                        upsert.tags_json(),
                        dag.description,
                        now
                    ],
                )
                .map_err(db_err)?;
            }
            DagWrite::Create { upsert, version } => {
                let dag = &upsert.dag;
                tx.execute(
                    "INSERT INTO dag (dag_id, fileloc, is_paused, is_active, version, schedule, \
                     has_schedule, tags, description, needs_next_dagrun, last_parsed_at) \
                     VALUES (?1, ?2, ?8, 1, ?9, ?3, ?4, ?5, ?6, 1, ?7)",
                    params![
                        dag.dag_id,
                        upsert.fileloc,
                        dag.schedule.describe(),
                        upsert.has_schedule(),
                        upsert.tags_json(),
                        dag.description,
                        now,
                        sync.paused_at_creation,
                        version
                    ],
                )
                .map_err(db_err)?;
                insert_version(tx, upsert, version, now)?;
                crate::assets::register(tx, dag, now)?;
            }
        }
    }
    for dag_id in &plan.deactivate {
        tx.execute(
            "UPDATE dag SET is_active = 0, next_dagrun = NULL WHERE dag_id = ?1",
            params![dag_id],
        )
        .map_err(db_err)?;
    }
    if let Some(errors) = &plan.import_errors {
        tx.execute("DELETE FROM import_error", []).map_err(db_err)?;
        for e in errors {
            tx.execute(
                "INSERT INTO import_error (filename, error, timestamp) VALUES (?1, ?2, ?3)",
                params![e.filename, e.error, now],
            )
            .map_err(db_err)?;
        }
    }
    if let Some(files) = &sync.files {
        record_files(tx, sync.folder.as_deref(), files)?;
    }
    let changed = plan.changes_anything();
    let written = plan.versions_written();
    Ok((plan.report, changed, written))
}

/// The last version of each of `dag_ids` that was deleted (`deleted_dag_version`).
fn deleted_versions(tx: &Transaction, dag_ids: &[&str]) -> Result<HashMap<String, i64>> {
    let mut deleted = HashMap::new();
    if dag_ids.is_empty() {
        return Ok(deleted);
    }
    let mut stmt = tx
        .prepare_cached("SELECT last_version FROM deleted_dag_version WHERE dag_id = ?1")
        .map_err(db_err)?;
    for &dag_id in dag_ids {
        let last: Option<i64> = stmt
            .query_row([dag_id], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        if let Some(last) = last {
            deleted.insert(dag_id.to_string(), last);
        }
    }
    Ok(deleted)
}

/// Every DAG with its current version's hash.
fn published(tx: &Transaction) -> Result<Vec<PublishedDag>> {
    let mut stmt = tx
        .prepare(
            "SELECT d.dag_id, d.is_active, d.version, v.content_hash, d.fileloc FROM dag d \
             JOIN dag_version v ON v.dag_id = d.dag_id AND v.version = d.version",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(PublishedDag {
                dag_id: r.get(0)?,
                is_active: r.get(1)?,
                version: r.get(2)?,
                content_hash: r.get(3)?,
                fileloc: r.get(4)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

fn insert_version(tx: &Transaction, upsert: &DagUpsert, version: i64, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO dag_version (dag_id, version, content_hash, definition, source, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            upsert.dag.dag_id,
            version,
            upsert.content_hash,
            upsert.definition_json()?,
            upsert.source,
            now
        ],
    )
    .map_err(db_err)?;
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

const FILE_COLUMNS: &str = "f.fileloc, f.mtime, f.size, f.content_hash, f.recorded_at, \
     f.parser_version, f.dag_id, f.import_error";

fn file_from_row(row: &Row) -> rusqlite::Result<DagFileRecord> {
    let size: i64 = row.get(2)?;
    let outcome = match (row.get(6)?, row.get(7)?) {
        (Some(dag_id), None) => DagFileOutcome::Dag(dag_id),
        (None, Some(error)) => DagFileOutcome::ImportError(error),
        _ => {
            let e = StoreError::Corrupt("a dag_file row needs a dag_id or an error".into());
            return Err(conversion(6, e));
        }
    };
    Ok(DagFileRecord {
        fileloc: row.get(0)?,
        mtime: opt_instant(row.get(1)?).map_err(|e| conversion(1, e))?,
        size: u64::try_from(size)
            .map_err(|_| conversion(2, StoreError::Corrupt(format!("file size {size}"))))?,
        content_hash: row.get(3)?,
        recorded_at: instant(row.get(4)?).map_err(|e| conversion(4, e))?,
        parser_version: row.get(5)?,
        outcome,
    })
}

/// The file of a `dag_file` row, and the row as a record if it can be decoded.
fn located_file_from_row(row: &Row) -> rusqlite::Result<(String, rusqlite::Result<DagFileRecord>)> {
    Ok((row.get(0)?, file_from_row(row)))
}

/// The records under `folder` that the database still matches (see `Store::dag_files`).
pub fn files(conn: &Connection, folder: &str) -> Result<Vec<DagFileRecord>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM dag_file f \
             LEFT JOIN dag d ON d.dag_id = f.dag_id AND d.is_active = 1 \
                 AND d.fileloc = f.fileloc \
             LEFT JOIN dag_version v ON v.dag_id = d.dag_id AND v.version = d.version \
             LEFT JOIN import_error e ON e.filename = f.fileloc \
             WHERE (f.dag_id IS NOT NULL AND v.content_hash = f.content_hash) \
                OR (f.dag_id IS NULL AND e.error = f.import_error) \
             ORDER BY f.fileloc"
        ))
        .map_err(db_err)?;
    let rows = stmt.query_map([], located_file_from_row).map_err(db_err)?;
    let mut files = Vec::new();
    for row in rows {
        let (fileloc, decoded) = row.map_err(db_err)?;
        if !under(Some(folder), &fileloc) {
            continue;
        }
        if let Some(file) = readable_file_record(&fileloc, decoded) {
            files.push(file);
        }
    }
    Ok(files)
}

/// Makes the records under `folder` be `files`, writing only those that changed.
fn record_files(tx: &Transaction, folder: Option<&str>, files: &[DagFileRecord]) -> Result<()> {
    // `None`: unreadable, so rewritten or deleted like a changed record.
    let mut existing: HashMap<String, Option<DagFileRecord>> = HashMap::new();
    {
        let mut stmt = tx
            .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM dag_file f"))
            .map_err(db_err)?;
        let rows = stmt.query_map([], located_file_from_row).map_err(db_err)?;
        for row in rows {
            let (fileloc, decoded) = row.map_err(db_err)?;
            if under(folder, &fileloc) {
                let file = readable_file_record(&fileloc, decoded);
                existing.insert(fileloc, file);
            }
        }
    }
    let plan = plan_file_records(existing, files);
    let mut upsert = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO dag_file (fileloc, mtime, size, content_hash, recorded_at, \
             parser_version, dag_id, import_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(db_err)?;
    for file in plan.upsert {
        let size = i64::try_from(file.size)
            .map_err(|_| StoreError::Corrupt(format!("file size {}", file.size)))?;
        let (dag_id, error) = match &file.outcome {
            DagFileOutcome::Dag(dag_id) => (Some(dag_id), None),
            DagFileOutcome::ImportError(error) => (None, Some(error)),
        };
        upsert
            .execute(params![
                file.fileloc,
                opt_micros(file.mtime),
                size,
                file.content_hash,
                micros(file.recorded_at),
                file.parser_version,
                dag_id,
                error
            ])
            .map_err(db_err)?;
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM dag_file WHERE fileloc = ?1")
        .map_err(db_err)?;
    for fileloc in &plan.delete {
        delete.execute(params![fileloc]).map_err(db_err)?;
    }
    Ok(())
}

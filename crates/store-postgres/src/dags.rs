//! DAG rows: publishing a folder scan as DAG versions, pausing, and the next-run bookkeeping.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::{
    plan_file_records, plan_sync, readable_file_record, under, unknown_dag_ids, DagFileOutcome,
    DagFileRecord, DagRecord, DagSync, DagUpsert, DagWrite, ImportErrorRecord, PublishedDag,
    Result, StoreError, SyncReport, VersionsWritten,
};

use crate::codec::{col, col_instant, col_opt_instant, micros, opt_instant, opt_micros};
use crate::db_err;

/// Serializes DAG folder syncs (transaction-level advisory lock): two DAG processors publishing
/// at once would otherwise both add the same new DAG.
const SYNC_LOCK: i64 = 0x7570_6472_6166_7402;

pub(crate) const DAG_COLUMNS: &str =
    "dag_id, fileloc, is_paused, is_active, version, schedule, tags, description, next_dagrun, last_parsed_at";

pub(crate) fn dag_from_row(row: &PgRow) -> Result<DagRecord> {
    let tags: String = col(row, 6)?;
    Ok(DagRecord {
        dag_id: col(row, 0)?,
        fileloc: col(row, 1)?,
        is_paused: col(row, 2)?,
        is_active: col(row, 3)?,
        version: col(row, 4)?,
        schedule: col(row, 5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        description: col(row, 7)?,
        next_dagrun: col_opt_instant(row, 8)?,
        last_parsed_at: col_instant(row, 9)?,
    })
}

/// Makes the database match the scan (as [`plan_sync`] decides); also says whether anything
/// changed (for notifications).
pub async fn sync(
    conn: &mut PgConnection,
    sync: &DagSync,
) -> Result<(SyncReport, bool, VersionsWritten)> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SYNC_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let existing = published(conn).await?;
    let stored_errors = import_errors(conn).await?;
    let deleted = deleted_versions(conn, &unknown_dag_ids(sync, &existing)).await?;
    let plan = plan_sync(sync, &existing, &stored_errors, &deleted);
    if !plan.rows_written.is_empty() {
        sqlx::query(
            "SELECT dag_id FROM dag WHERE dag_id = ANY($1) ORDER BY dag_id FOR NO KEY UPDATE",
        )
        .bind(&plan.rows_written)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    let now = micros(sync.now);
    for write in &plan.writes {
        match *write {
            DagWrite::Reactivate(upsert) => {
                sqlx::query(
                    "UPDATE dag SET is_active = TRUE, fileloc = $2, needs_next_dagrun = TRUE \
                     WHERE dag_id = $1",
                )
                .bind(&upsert.dag.dag_id)
                .bind(&upsert.fileloc)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
            DagWrite::NewVersion { upsert, version } => {
                let dag = &upsert.dag;
                insert_version(conn, upsert, version, now).await?;
                crate::assets::register(conn, dag, now).await?;
                sqlx::query(
                    "UPDATE dag SET fileloc = $2, is_active = TRUE, version = $3, schedule = $4, \
                     has_schedule = $5, tags = $6, description = $7, needs_next_dagrun = TRUE, \
                     last_parsed_at = $8 WHERE dag_id = $1",
                )
                .bind(&dag.dag_id)
                .bind(&upsert.fileloc)
                .bind(version)
                .bind(dag.schedule.describe())
                .bind(upsert.has_schedule())
                .bind(upsert.tags_json())
                .bind(&dag.description)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
            DagWrite::Create { upsert, version } => {
                let dag = &upsert.dag;
                sqlx::query(
                    "INSERT INTO dag (dag_id, fileloc, is_paused, is_active, version, schedule, \
                     has_schedule, tags, description, needs_next_dagrun, last_parsed_at) \
                     VALUES ($1, $2, $8, TRUE, $9, $3, $4, $5, $6, TRUE, $7)",
                )
                .bind(&dag.dag_id)
                .bind(&upsert.fileloc)
                .bind(dag.schedule.describe())
                .bind(upsert.has_schedule())
                .bind(upsert.tags_json())
                .bind(&dag.description)
                .bind(now)
                .bind(sync.paused_at_creation)
                .bind(version)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
                insert_version(conn, upsert, version, now).await?;
                crate::assets::register(conn, dag, now).await?;
            }
        }
    }
    if !plan.deactivate.is_empty() {
        sqlx::query("UPDATE dag SET is_active = FALSE, next_dagrun = NULL WHERE dag_id = ANY($1)")
            .bind(&plan.deactivate)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    if let Some(errors) = &plan.import_errors {
        sqlx::query("DELETE FROM import_error")
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let (files, texts): (Vec<&str>, Vec<&str>) = errors
            .iter()
            .map(|e| (e.filename.as_str(), e.error.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO import_error (filename, error, timestamp) \
             SELECT f, e, $3 FROM UNNEST($1::text[], $2::text[]) AS t(f, e)",
        )
        .bind(files)
        .bind(texts)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    // Records are bookkeeping of the DAG processors: writing them announces nothing.
    if let Some(files) = &sync.files {
        record_files(conn, sync.folder.as_deref(), files).await?;
    }
    let changed = plan.changes_anything();
    let written = plan.versions_written();
    Ok((plan.report, changed, written))
}

/// The last version of each of `dag_ids` that was deleted (`deleted_dag_version`).
async fn deleted_versions(
    conn: &mut PgConnection,
    dag_ids: &[&str],
) -> Result<HashMap<String, i64>> {
    if dag_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows =
        sqlx::query("SELECT dag_id, last_version FROM deleted_dag_version WHERE dag_id = ANY($1)")
            .bind(dag_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    rows.iter()
        .map(|row| Ok((col(row, 0)?, col(row, 1)?)))
        .collect()
}

/// Every DAG with its current version's hash.
async fn published(conn: &mut PgConnection) -> Result<Vec<PublishedDag>> {
    let rows = sqlx::query(
        "SELECT d.dag_id, d.is_active, d.version, v.content_hash, d.fileloc FROM dag d \
         JOIN dag_version v ON v.dag_id = d.dag_id AND v.version = d.version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(PublishedDag {
                dag_id: col(row, 0)?,
                is_active: col(row, 1)?,
                version: col(row, 2)?,
                content_hash: col(row, 3)?,
                fileloc: col(row, 4)?,
            })
        })
        .collect()
}

async fn insert_version(
    conn: &mut PgConnection,
    upsert: &DagUpsert,
    version: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO dag_version (dag_id, version, content_hash, definition, source, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&upsert.dag.dag_id)
    .bind(version)
    .bind(&upsert.content_hash)
    .bind(upsert.definition_json()?)
    .bind(&upsert.source)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn query_dags(
    conn: &mut PgConnection,
    sql: &str,
    now: Option<i64>,
) -> Result<Vec<DagRecord>> {
    let mut query = sqlx::query(sql);
    if let Some(now) = now {
        query = query.bind(now);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(db_err)?;
    rows.iter().map(dag_from_row).collect()
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!("SELECT {DAG_COLUMNS} FROM dag WHERE is_active ORDER BY dag_id"),
        None,
    )
    .await
}

pub async fn get(conn: &mut PgConnection, dag_id: &str) -> Result<DagRecord> {
    let row = sqlx::query(&format!(
        "SELECT {DAG_COLUMNS} FROM dag WHERE dag_id = $1 AND is_active"
    ))
    .bind(dag_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("DAG {dag_id:?}")))?;
    dag_from_row(&row)
}

pub async fn definition(
    conn: &mut PgConnection,
    dag_id: &str,
    version: i64,
) -> Result<updraft_model::Dag> {
    let text: String =
        sqlx::query_scalar("SELECT definition FROM dag_version WHERE dag_id = $1 AND version = $2")
            .bind(dag_id)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("version {version} of DAG {dag_id:?}")))?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("definition of DAG {dag_id:?}: {e}")))
}

pub async fn set_paused(conn: &mut PgConnection, dag_id: &str, paused: bool) -> Result<()> {
    let changed = sqlx::query(
        "UPDATE dag SET is_paused = $2, needs_next_dagrun = TRUE WHERE dag_id = $1 AND is_active",
    )
    .bind(dag_id)
    .bind(paused)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
    }
    Ok(())
}

pub async fn import_errors(conn: &mut PgConnection) -> Result<Vec<ImportErrorRecord>> {
    let rows = sqlx::query("SELECT filename, error FROM import_error ORDER BY filename")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            Ok(ImportErrorRecord {
                filename: col(r, 0)?,
                error: col(r, 1)?,
            })
        })
        .collect()
}

pub async fn needing_next_run(conn: &mut PgConnection) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!(
            "SELECT {DAG_COLUMNS} FROM dag WHERE is_active AND NOT is_paused \
             AND has_schedule AND needs_next_dagrun ORDER BY dag_id"
        ),
        None,
    )
    .await
}

pub async fn set_next_dagrun(
    conn: &mut PgConnection,
    dag_id: &str,
    next: Option<DateTime<Utc>>,
) -> Result<()> {
    sqlx::query("UPDATE dag SET next_dagrun = $2, needs_next_dagrun = FALSE WHERE dag_id = $1")
        .bind(dag_id)
        .bind(opt_micros(next))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn due(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<DagRecord>> {
    query_dags(
        conn,
        &format!(
            "SELECT {DAG_COLUMNS} FROM dag WHERE is_active AND NOT is_paused \
             AND NOT needs_next_dagrun AND next_dagrun IS NOT NULL AND next_dagrun <= $1 \
             ORDER BY next_dagrun, dag_id"
        ),
        Some(micros(now)),
    )
    .await
}

pub async fn earliest_next_dagrun(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_dagrun) FROM dag WHERE is_active AND NOT is_paused \
         AND NOT needs_next_dagrun",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    opt_instant(v)
}

const FILE_COLUMNS: &str = "f.fileloc, f.mtime, f.size, f.content_hash, f.recorded_at, \
     f.parser_version, f.dag_id, f.import_error";

fn file_from_row(row: &PgRow) -> Result<DagFileRecord> {
    let size: i64 = col(row, 2)?;
    let outcome = match (col(row, 6)?, col(row, 7)?) {
        (Some(dag_id), None) => DagFileOutcome::Dag(dag_id),
        (None, Some(error)) => DagFileOutcome::ImportError(error),
        _ => {
            return Err(StoreError::Corrupt(
                "a dag_file row needs a dag_id or an error".into(),
            ))
        }
    };
    Ok(DagFileRecord {
        fileloc: col(row, 0)?,
        mtime: col_opt_instant(row, 1)?,
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("file size {size}")))?,
        content_hash: col(row, 3)?,
        recorded_at: col_instant(row, 4)?,
        parser_version: col(row, 5)?,
        outcome,
    })
}

/// The records under `folder` that the database still matches (see `Store::dag_files`).
pub async fn files(conn: &mut PgConnection, folder: &str) -> Result<Vec<DagFileRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {FILE_COLUMNS} FROM dag_file f \
         LEFT JOIN dag d ON d.dag_id = f.dag_id AND d.is_active AND d.fileloc = f.fileloc \
         LEFT JOIN dag_version v ON v.dag_id = d.dag_id AND v.version = d.version \
         LEFT JOIN import_error e ON e.filename = f.fileloc \
         WHERE (f.dag_id IS NOT NULL AND v.content_hash = f.content_hash) \
            OR (f.dag_id IS NULL AND e.error = f.import_error) \
         ORDER BY f.fileloc"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut files = Vec::with_capacity(rows.len());
    for row in &rows {
        let fileloc: String = col(row, 0)?;
        if !under(Some(folder), &fileloc) {
            continue;
        }
        if let Some(file) = readable_file_record(&fileloc, file_from_row(row)) {
            files.push(file);
        }
    }
    Ok(files)
}

/// Makes the records under `folder` be `files`, writing only those that changed.
async fn record_files(
    conn: &mut PgConnection,
    folder: Option<&str>,
    files: &[DagFileRecord],
) -> Result<()> {
    let rows = sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM dag_file f"))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    // `None`: unreadable, so rewritten or deleted like a changed record.
    let mut existing: HashMap<String, Option<DagFileRecord>> = HashMap::new();
    for row in &rows {
        let fileloc: String = col(row, 0)?;
        if under(folder, &fileloc) {
            let file = readable_file_record(&fileloc, file_from_row(row));
            existing.insert(fileloc, file);
        }
    }
    let plan = plan_file_records(existing, files);
    let mut fileloc = Vec::new();
    let mut mtime = Vec::new();
    let mut size = Vec::new();
    let mut content_hash = Vec::new();
    let mut recorded_at = Vec::new();
    let mut parser_version = Vec::new();
    let mut dag_id = Vec::new();
    let mut import_error = Vec::new();
    for file in plan.upsert {
        fileloc.push(file.fileloc.as_str());
        mtime.push(opt_micros(file.mtime));
        size.push(
            i64::try_from(file.size)
                .map_err(|_| StoreError::Corrupt(format!("file size {}", file.size)))?,
        );
        content_hash.push(file.content_hash.as_str());
        recorded_at.push(micros(file.recorded_at));
        parser_version.push(file.parser_version.as_str());
        let (dag, error) = match &file.outcome {
            DagFileOutcome::Dag(id) => (Some(id.as_str()), None),
            DagFileOutcome::ImportError(error) => (None, Some(error.as_str())),
        };
        dag_id.push(dag);
        import_error.push(error);
    }
    if !fileloc.is_empty() {
        sqlx::query(
            "INSERT INTO dag_file (fileloc, mtime, size, content_hash, recorded_at, \
             parser_version, dag_id, import_error) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], \
                 $5::bigint[], $6::text[], $7::text[], $8::text[]) \
             ON CONFLICT (fileloc) DO UPDATE SET mtime = EXCLUDED.mtime, size = EXCLUDED.size, \
                 content_hash = EXCLUDED.content_hash, recorded_at = EXCLUDED.recorded_at, \
                 parser_version = EXCLUDED.parser_version, dag_id = EXCLUDED.dag_id, \
                 import_error = EXCLUDED.import_error",
        )
        .bind(&fileloc)
        .bind(&mtime)
        .bind(&size)
        .bind(&content_hash)
        .bind(&recorded_at)
        .bind(&parser_version)
        .bind(&dag_id)
        .bind(&import_error)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    if !plan.delete.is_empty() {
        sqlx::query("DELETE FROM dag_file WHERE fileloc = ANY($1)")
            .bind(&plan.delete)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

//! Backfills and their dates ([`BackfillStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use updraft_store::*;

use crate::codec::{instant, json_map, micros, opt_instant, parse};
use crate::dags::conversion;
use crate::{db_err, runs, task_instances, SqliteStore};

const COLUMNS: &str = "id, dag_id, from_date, to_date, dag_run_conf, reprocess_behavior, \
    max_active_runs, run_backwards, is_paused, created_at, completed_at, updated_at";

fn backfill_from_row(row: &Row) -> rusqlite::Result<Backfill> {
    let text = |i: usize| row.get::<_, String>(i);
    Ok(Backfill {
        id: row.get(0)?,
        dag_id: row.get(1)?,
        from_date: instant(row.get(2)?).map_err(|e| conversion(2, e))?,
        to_date: instant(row.get(3)?).map_err(|e| conversion(3, e))?,
        dag_run_conf: json_map(&text(4)?).map_err(|e| conversion(4, e))?,
        reprocess_behavior: parse(&text(5)?).map_err(|e| conversion(5, e))?,
        max_active_runs: row.get(6)?,
        run_backwards: row.get(7)?,
        is_paused: row.get(8)?,
        created_at: instant(row.get(9)?).map_err(|e| conversion(9, e))?,
        completed_at: opt_instant(row.get(10)?).map_err(|e| conversion(10, e))?,
        updated_at: instant(row.get(11)?).map_err(|e| conversion(11, e))?,
    })
}

fn get(conn: &Connection, id: i64) -> Result<Backfill> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM backfill WHERE id = ?1"),
        params![id],
        backfill_from_row,
    )
    .optional()
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("backfill #{id}")))
}

fn query(conn: &Connection, filter: &str, dag_id: Option<&str>) -> Result<Vec<Backfill>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM backfill WHERE {filter} AND (?1 IS NULL OR dag_id = ?1) \
             ORDER BY id"
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![dag_id], backfill_from_row)
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

fn create(tx: &Transaction, b: &NewBackfill) -> Result<Backfill> {
    let exists: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM dag WHERE dag_id = ?1)",
            params![b.dag_id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if !exists {
        return Err(StoreError::NotFound(format!("DAG {:?}", b.dag_id)));
    }
    let active: Option<i64> = tx
        .query_row(
            "SELECT id FROM backfill WHERE dag_id = ?1 AND completed_at IS NULL",
            params![b.dag_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if let Some(id) = active {
        return Err(StoreError::Conflict(format!(
            "There is already a running backfill (#{id}) for DAG {:?}",
            b.dag_id
        )));
    }
    let conf = serde_json::to_string(&b.dag_run_conf)
        .map_err(|e| StoreError::Corrupt(format!("conf: {e}")))?;
    tx.execute(
        "INSERT INTO backfill (dag_id, from_date, to_date, dag_run_conf, reprocess_behavior, \
         max_active_runs, run_backwards, is_paused, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?8)",
        params![
            b.dag_id,
            micros(b.from_date),
            micros(b.to_date),
            conf,
            b.reprocess_behavior.as_str(),
            b.max_active_runs,
            b.run_backwards,
            micros(b.now)
        ],
    )
    .map_err(db_err)?;
    let id = tx.last_insert_rowid();
    let mut stmt = tx
        .prepare(
            "INSERT INTO backfill_dag_run (backfill_id, logical_date, sort_ordinal, dag_run_id, \
             exception_reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db_err)?;
    for (ordinal, date) in b.dates.iter().enumerate() {
        stmt.execute(params![
            id,
            micros(date.logical_date),
            ordinal as i64 + 1,
            date.dag_run_id,
            date.exception_reason
        ])
        .map_err(db_err)?;
    }
    get(tx, id)
}

fn dag_runs(conn: &Connection, id: i64) -> Result<Vec<BackfillDagRun>> {
    get(conn, id)?;
    let mut stmt = conn
        .prepare(
            "SELECT b.backfill_id, b.logical_date, b.sort_ordinal, b.dag_run_id, \
             b.exception_reason, b.taken, r.state \
             FROM backfill_dag_run b LEFT JOIN dag_run r ON r.id = b.dag_run_id \
             WHERE b.backfill_id = ?1 ORDER BY b.sort_ordinal",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![id], |row| {
            let state: Option<String> = row.get(6)?;
            Ok(BackfillDagRun {
                backfill_id: row.get(0)?,
                logical_date: instant(row.get(1)?).map_err(|e| conversion(1, e))?,
                sort_ordinal: row.get(2)?,
                dag_run_id: row.get(3)?,
                exception_reason: row.get(4)?,
                taken: row.get(5)?,
                run_state: state
                    .map(|s| parse(&s))
                    .transpose()
                    .map_err(|e| conversion(6, e))?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

fn take(tx: &Transaction, id: i64, ordinal: i64, what: &TakeBackfillDate) -> Result<Option<i64>> {
    let pending: Option<Option<i64>> = tx
        .query_row(
            "SELECT d.dag_run_id FROM backfill_dag_run d JOIN backfill b ON b.id = d.backfill_id \
             WHERE d.backfill_id = ?1 AND d.sort_ordinal = ?2 AND d.taken = 0 \
             AND d.exception_reason IS NULL AND b.completed_at IS NULL AND b.is_paused = 0",
            params![id, ordinal],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    let Some(existing) = pending else {
        return Ok(None);
    };
    let run_id = match (what, existing) {
        (TakeBackfillDate::Reprocess { now }, Some(run_id)) => {
            let task_ids: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT DISTINCT task_id FROM task_instance WHERE dag_run_id = ?1")
                    .map_err(db_err)?;
                let rows = stmt
                    .query_map(params![run_id], |r| r.get(0))
                    .map_err(db_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?
            };
            task_instances::clear(tx, run_id, &task_ids, *now)?;
            tx.execute(
                "UPDATE dag_run SET run_type = 'backfill' WHERE id = ?1",
                params![run_id],
            )
            .map_err(db_err)?;
            run_id
        }
        (TakeBackfillDate::Create(run), _) => {
            let found: Option<i64> = tx
                .query_row(
                    "SELECT id FROM dag_run WHERE dag_id = ?1 AND run_id = ?2",
                    params![run.dag_id, run.run_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            match found {
                Some(run_id) => run_id,
                None => runs::create(tx, run)?.id,
            }
        }
        (TakeBackfillDate::Reprocess { .. }, None) => {
            return Err(StoreError::Conflict(format!(
                "date {ordinal} of backfill #{id} has no run to reprocess"
            )))
        }
    };
    tx.execute(
        "UPDATE backfill_dag_run SET taken = 1, dag_run_id = ?3 \
         WHERE backfill_id = ?1 AND sort_ordinal = ?2",
        params![id, ordinal, run_id],
    )
    .map_err(db_err)?;
    Ok(Some(run_id))
}

#[async_trait]
impl BackfillStore for SqliteStore {
    async fn create_backfill(&self, backfill: NewBackfill) -> Result<Backfill> {
        self.write(move |tx| create(tx, &backfill)).await
    }
    async fn get_backfill(&self, id: i64) -> Result<Backfill> {
        self.read(move |c| get(c, id)).await
    }
    async fn list_backfills(&self, dag_id: Option<&str>) -> Result<Vec<Backfill>> {
        let dag_id = dag_id.map(str::to_string);
        self.read(move |c| query(c, "1 = 1", dag_id.as_deref()))
            .await
    }
    async fn backfill_dag_runs(&self, id: i64) -> Result<Vec<BackfillDagRun>> {
        self.read(move |c| dag_runs(c, id)).await
    }
    async fn set_backfill_paused(
        &self,
        id: i64,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Backfill> {
        self.write(move |tx| {
            let current = get(tx, id)?;
            if current.completed_at.is_some() {
                return Err(StoreError::Conflict(format!("backfill #{id} is completed")));
            }
            tx.execute(
                "UPDATE backfill SET is_paused = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, paused, micros(now)],
            )
            .map_err(db_err)?;
            get(tx, id)
        })
        .await
    }
    async fn cancel_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<Backfill> {
        let (backfill, failed) = self
            .write(move |tx| {
                let current = get(tx, id)?;
                if current.completed_at.is_some() {
                    return Ok((current, Vec::new()));
                }
                let failed: Vec<i64> = {
                    let mut stmt = tx
                        .prepare(
                            "UPDATE dag_run SET state = 'failed', end_date = ?2 \
                             WHERE state = 'queued' AND id IN (SELECT dag_run_id \
                             FROM backfill_dag_run WHERE backfill_id = ?1 AND taken = 1) \
                             RETURNING id",
                        )
                        .map_err(db_err)?;
                    let rows = stmt
                        .query_map(params![id, micros(now)], |r| r.get(0))
                        .map_err(db_err)?;
                    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?
                };
                tx.execute(
                    "UPDATE backfill SET is_paused = 1, completed_at = ?2, updated_at = ?2 \
                     WHERE id = ?1",
                    params![id, micros(now)],
                )
                .map_err(db_err)?;
                Ok((get(tx, id)?, failed))
            })
            .await?;
        if !failed.is_empty() {
            self.changed([Change::Runs(failed)]);
        }
        Ok(backfill)
    }
    async fn active_backfills(&self) -> Result<Vec<Backfill>> {
        self.read(|c| query(c, "completed_at IS NULL AND is_paused = 0", None))
            .await
    }
    async fn take_backfill_date(
        &self,
        id: i64,
        sort_ordinal: i64,
        take_date: TakeBackfillDate,
    ) -> Result<Option<i64>> {
        let taken = self
            .write(move |tx| take(tx, id, sort_ordinal, &take_date))
            .await?;
        if let Some(run) = taken {
            self.changed([Change::Runs(vec![run])]);
        }
        Ok(taken)
    }
    async fn complete_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE backfill SET completed_at = ?2, updated_at = ?2 \
                     WHERE id = ?1 AND completed_at IS NULL",
                    params![id, micros(now)],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }
}

//! DAG run rows: creation with their task instances, lookups and run state changes.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use updraft_store::{
    DagRun, DagRunState, NewDagRun, Result, RunStart, StoreError, TransitionResult,
};

use crate::codec::{instant, json_map, micros, opt_instant, opt_micros, parse};
use crate::dags::conversion;
use crate::db_err;

pub(crate) const RUN_COLUMNS: &str = "id, dag_id, run_id, run_type, state, logical_date, \
    data_interval_start, data_interval_end, conf, dag_version, queued_at, start_date, end_date, runner, note";

pub(crate) fn run_from_row(row: &Row) -> rusqlite::Result<DagRun> {
    let text = |i: usize| row.get::<_, String>(i);
    Ok(DagRun {
        id: row.get(0)?,
        dag_id: row.get(1)?,
        run_id: row.get(2)?,
        run_type: parse(&text(3)?).map_err(|e| conversion(3, e))?,
        state: parse(&text(4)?).map_err(|e| conversion(4, e))?,
        logical_date: instant(row.get(5)?).map_err(|e| conversion(5, e))?,
        data_interval_start: instant(row.get(6)?).map_err(|e| conversion(6, e))?,
        data_interval_end: instant(row.get(7)?).map_err(|e| conversion(7, e))?,
        conf: json_map(&text(8)?).map_err(|e| conversion(8, e))?,
        dag_version: row.get(9)?,
        queued_at: instant(row.get(10)?).map_err(|e| conversion(10, e))?,
        start_date: opt_instant(row.get(11)?).map_err(|e| conversion(11, e))?,
        end_date: opt_instant(row.get(12)?).map_err(|e| conversion(12, e))?,
        runner: row.get(13)?,
        note: row.get(14)?,
    })
}

pub fn create(tx: &Transaction, run: &NewDagRun) -> Result<DagRun> {
    let conf =
        serde_json::to_string(&run.conf).map_err(|e| StoreError::Corrupt(format!("conf: {e}")))?;
    let now = micros(run.now);
    let inserted = tx.execute(
        "INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, data_interval_start, \
         data_interval_end, conf, dag_version, queued_at, runner) \
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            run.dag_id,
            run.run_id,
            run.run_type.as_str(),
            micros(run.logical_date),
            micros(run.data_interval_start),
            micros(run.data_interval_end),
            conf,
            run.dag_version,
            now,
            run.runner
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            return Err(StoreError::AlreadyExists(format!(
                "dag run {:?} of DAG {:?}",
                run.run_id, run.dag_id
            )));
        }
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            return Err(StoreError::NotFound(format!("DAG {:?}", run.dag_id)));
        }
        other => {
            other.map_err(db_err)?;
        }
    }
    let id = tx.last_insert_rowid();
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, state, queue, \
                 pool, priority_weight) VALUES (?1, ?2, ?3, ?4, 'none', ?5, ?6, ?7)",
            )
            .map_err(db_err)?;
        for t in &run.tasks {
            stmt.execute(params![
                id,
                run.dag_id,
                run.run_id,
                t.task_id,
                t.queue,
                t.pool,
                t.priority_weight
            ])
            .map_err(db_err)?;
        }
    }
    if let Some(next) = run.next_dagrun {
        tx.execute(
            "UPDATE dag SET next_dagrun = ?2, needs_next_dagrun = 0 WHERE dag_id = ?1",
            params![run.dag_id, opt_micros(next)],
        )
        .map_err(db_err)?;
    }
    get_by_id(tx, id)
}

pub fn get(conn: &Connection, dag_id: &str, run_id: &str) -> Result<DagRun> {
    conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = ?1 AND run_id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![dag_id, run_id], run_from_row)
            .optional()
    })
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("dag run {run_id:?} of DAG {dag_id:?}")))
}

pub fn get_by_id(conn: &Connection, id: i64) -> Result<DagRun> {
    conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id], run_from_row).optional())
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("dag run #{id}")))
}

pub(crate) fn query_runs<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    p: P,
) -> Result<Vec<DagRun>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(p, run_from_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn list(conn: &Connection, dag_id: &str) -> Result<Vec<DagRun>> {
    query_runs(
        conn,
        &format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = ?1 ORDER BY logical_date, id"),
        params![dag_id],
    )
}

pub fn unfinished(conn: &Connection) -> Result<Vec<DagRun>> {
    query_runs(
        conn,
        &format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE state IN ('queued', 'running') \
             ORDER BY logical_date, id"
        ),
        [],
    )
}

pub fn release(tx: &Transaction, id: i64) -> Result<()> {
    tx.execute(
        "UPDATE dag_run SET runner = NULL WHERE id = ?1",
        params![id],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn last_scheduled_logical_date(
    conn: &Connection,
    dag_id: &str,
) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MAX(logical_date) FROM dag_run WHERE dag_id = ?1 AND run_type = 'scheduled'",
            params![dag_id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    opt_instant(v)
}

/// See [`updraft_store::Store::previous_dag_run`].
pub fn previous(
    conn: &Connection,
    dag_id: &str,
    before: DateTime<Utc>,
    scheduled_only: bool,
) -> Result<Option<DagRun>> {
    Ok(query_runs(
        conn,
        &format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = ?1 AND logical_date < ?2 \
             AND (NOT ?3 OR run_type <> 'manual') ORDER BY logical_date DESC, id DESC LIMIT 1"
        ),
        params![dag_id, micros(before), scheduled_only],
    )?
    .pop())
}

/// See [`updraft_store::Store::has_earlier_task_instance`].
pub fn has_earlier_task_instance(
    conn: &Connection,
    dag_id: &str,
    task_id: &str,
    before: DateTime<Utc>,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM dag_run r JOIN task_instance ti ON ti.dag_run_id = r.id \
         WHERE r.dag_id = ?1 AND r.logical_date < ?3 AND ti.task_id = ?2)",
    )
    .and_then(|mut s| s.query_row(params![dag_id, task_id, micros(before)], |r| r.get(0)))
    .map_err(db_err)
}

/// See [`updraft_store::Store::latest_dag_run_states`].
pub fn latest_states(conn: &Connection, dag_id: &str, limit: u32) -> Result<Vec<DagRunState>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, state FROM dag_run WHERE dag_id = ?1 \
             ORDER BY logical_date DESC, id DESC LIMIT ?2",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![dag_id, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err)?;
    rows.map(|row| {
        let (id, text) = row.map_err(db_err)?;
        text.parse::<DagRunState>()
            .map_err(|e| StoreError::Corrupt(format!("dag run {id}: {e}")))
    })
    .collect()
}

/// The running runs of a DAG; its `WHERE` matches the partial index `dag_run_running`.
pub(crate) const RUNNING_RUNS: &str =
    "SELECT count(*) FROM dag_run WHERE dag_id = ?1 AND state = 'running'";

/// See [`updraft_store::Store::start_dag_run`]; SQLite's one writer at a time makes the count
/// and the change atomic.
pub fn start(
    tx: &Transaction,
    id: i64,
    max_active_runs: u32,
    now: DateTime<Utc>,
) -> Result<RunStart> {
    let dag_id: Option<String> = tx
        .query_row(
            "SELECT dag_id FROM dag_run WHERE id = ?1 AND state = 'queued'",
            params![id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    let Some(dag_id) = dag_id else {
        return Ok(RunStart::NotQueued);
    };
    let running: i64 = tx
        .query_row(RUNNING_RUNS, params![dag_id], |r| r.get(0))
        .map_err(db_err)?;
    if running >= i64::from(max_active_runs) {
        return Ok(RunStart::AtLimit);
    }
    Ok(
        match set_state(tx, id, DagRunState::Queued, DagRunState::Running, now)? {
            TransitionResult::Applied => RunStart::Started,
            TransitionResult::Conflict => RunStart::NotQueued,
        },
    )
}

pub fn set_state(
    tx: &Transaction,
    id: i64,
    expected: DagRunState,
    to: DagRunState,
    now: DateTime<Utc>,
) -> Result<TransitionResult> {
    let changed = tx
        .execute(
            "UPDATE dag_run SET state = ?3, \
             start_date = CASE WHEN ?3 = 'running' AND start_date IS NULL THEN ?4 ELSE start_date END, \
             end_date = CASE WHEN ?3 IN ('success', 'failed') THEN ?4 ELSE NULL END \
             WHERE id = ?1 AND state = ?2",
            params![id, expected.as_str(), to.as_str(), micros(now)],
        )
        .map_err(db_err)?;
    Ok(if changed == 1 {
        TransitionResult::Applied
    } else {
        TransitionResult::Conflict
    })
}

//! DAG run rows: creation with their task instances, lookups and run state changes.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::{
    DagRun, DagRunState, NewDagRun, Result, RunStart, RunType, StoreError, TransitionResult,
};

use crate::codec::{
    col, col_instant, col_opt_instant, json_map, micros, opt_instant, opt_micros, parse,
};
use crate::db_err;

pub(crate) const RUN_COLUMNS: &str = "id, dag_id, run_id, run_type, state, logical_date, \
    data_interval_start, data_interval_end, conf, dag_version, queued_at, start_date, end_date, runner, note";

pub(crate) fn run_from_row(row: &PgRow) -> Result<DagRun> {
    run_from_row_at(row, 0)
}

/// A run from [`RUN_COLUMNS`] starting at column `at` of `row`.
pub(crate) fn run_from_row_at(row: &PgRow, at: usize) -> Result<DagRun> {
    Ok(DagRun {
        id: col(row, at)?,
        dag_id: col(row, at + 1)?,
        run_id: col(row, at + 2)?,
        run_type: parse(&col::<String>(row, at + 3)?)?,
        state: parse(&col::<String>(row, at + 4)?)?,
        logical_date: col_instant(row, at + 5)?,
        data_interval_start: col_instant(row, at + 6)?,
        data_interval_end: col_instant(row, at + 7)?,
        conf: json_map(&col::<String>(row, at + 8)?)?,
        dag_version: col(row, at + 9)?,
        queued_at: col_instant(row, at + 10)?,
        start_date: col_opt_instant(row, at + 11)?,
        end_date: col_opt_instant(row, at + 12)?,
        runner: col(row, at + 13)?,
        note: col(row, at + 14)?,
    })
}

pub(crate) fn runs_from_rows(rows: &[PgRow]) -> Result<Vec<DagRun>> {
    rows.iter().map(run_from_row).collect()
}

pub async fn create(conn: &mut PgConnection, run: &NewDagRun) -> Result<DagRun> {
    let conf =
        serde_json::to_string(&run.conf).map_err(|e| StoreError::Corrupt(format!("conf: {e}")))?;
    let inserted = sqlx::query_scalar::<_, i64>(
        "INSERT INTO dag_run (dag_id, run_id, run_type, state, logical_date, data_interval_start, \
         data_interval_end, conf, dag_version, queued_at, runner) \
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&run.dag_id)
    .bind(&run.run_id)
    .bind(run.run_type.as_str())
    .bind(micros(run.logical_date))
    .bind(micros(run.data_interval_start))
    .bind(micros(run.data_interval_end))
    .bind(conf)
    .bind(run.dag_version)
    .bind(micros(run.now))
    .bind(&run.runner)
    .fetch_one(&mut *conn)
    .await;
    let id = match inserted {
        Ok(id) => id,
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(StoreError::AlreadyExists(format!(
                "dag run {:?} of DAG {:?}",
                run.run_id, run.dag_id
            )));
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            return Err(StoreError::NotFound(format!("DAG {:?}", run.dag_id)));
        }
        Err(e) => return Err(db_err(e)),
    };
    if !run.tasks.is_empty() {
        let task_ids: Vec<&str> = run.tasks.iter().map(|t| t.task_id.as_str()).collect();
        let queues: Vec<&str> = run.tasks.iter().map(|t| t.queue.as_str()).collect();
        let pools: Vec<&str> = run.tasks.iter().map(|t| t.pool.as_str()).collect();
        let weights: Vec<i64> = run.tasks.iter().map(|t| t.priority_weight).collect();
        // In the given order, so that ids (the tie-break of priorities) follow it.
        sqlx::query(
            "INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, state, queue, pool, \
             priority_weight) \
             SELECT $1, $2, $3, t.task_id, 'none', t.queue, t.pool, t.weight \
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bigint[]) \
                  WITH ORDINALITY AS t(task_id, queue, pool, weight, ord) \
             ORDER BY t.ord",
        )
        .bind(id)
        .bind(&run.dag_id)
        .bind(&run.run_id)
        .bind(task_ids)
        .bind(queues)
        .bind(pools)
        .bind(weights)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    if let Some(next) = run.next_dagrun {
        sqlx::query("UPDATE dag SET next_dagrun = $2, needs_next_dagrun = FALSE WHERE dag_id = $1")
            .bind(&run.dag_id)
            .bind(opt_micros(next))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    get_by_id(conn, id).await
}

pub async fn get(conn: &mut PgConnection, dag_id: &str, run_id: &str) -> Result<DagRun> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 AND run_id = $2"
    ))
    .bind(dag_id)
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .ok_or_else(|| StoreError::NotFound(format!("dag run {run_id:?} of DAG {dag_id:?}")))?;
    run_from_row(&row)
}

pub async fn get_by_id(conn: &mut PgConnection, id: i64) -> Result<DagRun> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM dag_run WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("dag run #{id}")))?;
    run_from_row(&row)
}

pub async fn list(conn: &mut PgConnection, dag_id: &str) -> Result<Vec<DagRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 ORDER BY logical_date, id"
    ))
    .bind(dag_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    runs_from_rows(&rows)
}

/// See [`updraft_store::Store::previous_dag_run`].
pub async fn previous(
    conn: &mut PgConnection,
    dag_id: &str,
    before: DateTime<Utc>,
    scheduled_only: bool,
) -> Result<Option<DagRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE dag_id = $1 AND logical_date < $2 \
         AND (NOT $3 OR run_type <> 'manual') ORDER BY logical_date DESC, id DESC LIMIT 1"
    ))
    .bind(dag_id)
    .bind(micros(before))
    .bind(scheduled_only)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(runs_from_rows(&rows)?.pop())
}

/// See [`updraft_store::Store::has_earlier_task_instance`].
pub async fn has_earlier_task_instance(
    conn: &mut PgConnection,
    dag_id: &str,
    task_id: &str,
    before: DateTime<Utc>,
) -> Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM dag_run r JOIN task_instance ti ON ti.dag_run_id = r.id \
         WHERE r.dag_id = $1 AND r.logical_date < $3 AND ti.task_id = $2)",
    )
    .bind(dag_id)
    .bind(task_id)
    .bind(micros(before))
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)
}

/// See [`updraft_store::Store::latest_dag_run_states`].
pub async fn latest_states(
    conn: &mut PgConnection,
    dag_id: &str,
    limit: u32,
) -> Result<Vec<DagRunState>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, state FROM dag_run WHERE dag_id = $1 \
         ORDER BY logical_date DESC, id DESC LIMIT $2",
    )
    .bind(dag_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|(id, text)| {
            text.parse::<DagRunState>()
                .map_err(|e| StoreError::Corrupt(format!("dag run {id}: {e}")))
        })
        .collect()
}

pub async fn unfinished(conn: &mut PgConnection) -> Result<Vec<DagRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run WHERE state IN ('queued', 'running') \
         ORDER BY logical_date, id"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    runs_from_rows(&rows)
}

pub async fn release(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("UPDATE dag_run SET runner = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn last_scheduled_logical_date(
    conn: &mut PgConnection,
    dag_id: &str,
) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(logical_date) FROM dag_run WHERE dag_id = $1 AND run_type = 'scheduled'",
    )
    .bind(dag_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    opt_instant(v)
}

/// See [`updraft_store::Store::start_dag_run`]. The lock on the DAG's row serialises the
/// starts of its runs; under `READ COMMITTED` the count, taken after the lock, sees every start
/// committed by whoever held it before.
pub async fn start(
    conn: &mut PgConnection,
    id: i64,
    max_active_runs: u32,
    now: DateTime<Utc>,
) -> Result<RunStart> {
    let queued: Option<(String, String)> =
        sqlx::query_as("SELECT dag_id, run_type FROM dag_run WHERE id = $1 AND state = 'queued'")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    let Some((dag_id, run_type)) = queued else {
        return Ok(RunStart::NotQueued);
    };
    // A backfill's runs are limited by the backfill's own `max_active_runs` (when they are
    // created), not by the DAG's, and do not count against it (Airflow 3).
    if run_type == RunType::Backfill.as_str() {
        return Ok(
            match set_state(conn, id, DagRunState::Queued, DagRunState::Running, now).await? {
                TransitionResult::Applied => RunStart::Started,
                TransitionResult::Conflict => RunStart::NotQueued,
            },
        );
    }
    sqlx::query("SELECT dag_id FROM dag WHERE dag_id = $1 FOR NO KEY UPDATE")
        .bind(&dag_id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dag_run WHERE dag_id = $1 AND state = 'running' \
             AND run_type <> 'backfill'",
    )
    .bind(&dag_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    if running >= i64::from(max_active_runs) {
        return Ok(RunStart::AtLimit);
    }
    Ok(
        match set_state(conn, id, DagRunState::Queued, DagRunState::Running, now).await? {
            TransitionResult::Applied => RunStart::Started,
            TransitionResult::Conflict => RunStart::NotQueued,
        },
    )
}

pub async fn set_state(
    conn: &mut PgConnection,
    id: i64,
    expected: DagRunState,
    to: DagRunState,
    now: DateTime<Utc>,
) -> Result<TransitionResult> {
    let changed = sqlx::query(
        "UPDATE dag_run SET state = $3, \
         start_date = CASE WHEN $3 = 'running' AND start_date IS NULL THEN $4 ELSE start_date END, \
         end_date = CASE WHEN $3 IN ('success', 'failed') THEN $4 ELSE NULL END \
         WHERE id = $1 AND state = $2",
    )
    .bind(id)
    .bind(expected.as_str())
    .bind(to.as_str())
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    Ok(if changed == 1 {
        TransitionResult::Applied
    } else {
        TransitionResult::Conflict
    })
}

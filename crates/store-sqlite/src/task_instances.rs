//! Task instance rows: reading them, compare-and-set state changes and clearing (claims are
//! in `claims`, finished tries in `finish`, queueing in `queueing`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row, Transaction};
use updraft_store::{
    Change, Expansion, Result, TaskInstance, TaskState, Transition, TransitionResult,
};

use crate::codec::{micros, opt_instant, opt_micros, parse};
use crate::dags::conversion;
use crate::db_err;

pub(crate) const TI_COLUMNS: &str =
    "id, dag_run_id, dag_id, run_id, task_id, map_index, try_number, state, \
    queue, pool, priority_weight, hostname, worker_id, claim_id, lease_until, queued_at, \
    start_date, end_date, next_retry_at, infra_failures, note";

pub(crate) fn ti_from_row(row: &Row) -> rusqlite::Result<TaskInstance> {
    let at = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        opt_instant(row.get(i)?).map_err(|e| conversion(i, e))
    };
    Ok(TaskInstance {
        id: row.get(0)?,
        dag_run_id: row.get(1)?,
        dag_id: row.get(2)?,
        run_id: row.get(3)?,
        task_id: row.get(4)?,
        map_index: row.get(5)?,
        try_number: row.get(6)?,
        state: parse(&row.get::<_, String>(7)?).map_err(|e| conversion(7, e))?,
        queue: row.get(8)?,
        pool: row.get(9)?,
        priority_weight: row.get(10)?,
        hostname: row.get(11)?,
        worker_id: row.get(12)?,
        claim_id: row.get(13)?,
        lease_until: at(14)?,
        queued_at: at(15)?,
        start_date: at(16)?,
        end_date: at(17)?,
        next_retry_at: at(18)?,
        infra_failures: row.get(19)?,
        note: row.get(20)?,
    })
}

pub(crate) fn query_tis<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    p: P,
) -> Result<Vec<TaskInstance>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(p, ti_from_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn of_run(conn: &Connection, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        &format!("SELECT {TI_COLUMNS} FROM task_instance WHERE dag_run_id = ?1 ORDER BY id"),
        params![dag_run_id],
    )
}

/// What a write changed, for the store's watchers.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub runs: BTreeSet<i64>,
    pub queues: BTreeSet<String>,
}

impl Touched {
    pub fn changes(self) -> Vec<Change> {
        let mut changes = Vec::with_capacity(2);
        if !self.runs.is_empty() {
            changes.push(Change::Runs(self.runs.into_iter().collect()));
        }
        if !self.queues.is_empty() {
            changes.push(Change::WorkQueued(self.queues.into_iter().collect()));
        }
        changes
    }
}

/// Applies `batch` (already checked against the state machine), noting the runs (and queues)
/// of the transitions that applied in `touched`.
pub(crate) fn apply(
    tx: &Transaction,
    batch: &[Transition],
    touched: &mut Touched,
) -> Result<Vec<TransitionResult>> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE task_instance SET state = ?4, try_number = try_number + ?5, \
             next_retry_at = ?6, \
             queued_at = CASE WHEN ?4 = 'queued' THEN ?7 ELSE queued_at END, \
             start_date = CASE WHEN ?3 = 'up_for_reschedule' AND ?4 = 'queued' THEN start_date \
                               WHEN ?4 IN ('skipped', 'upstream_failed') THEN ?7 \
                               WHEN ?4 IN ('success', 'deferred') AND start_date IS NULL THEN ?7 \
                               WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL \
                               ELSE start_date END, \
             end_date = CASE WHEN ?4 IN ('success', 'failed', 'skipped', 'upstream_failed', \
                             'removed', 'up_for_retry') THEN ?7 \
                             WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL \
                             ELSE end_date END, \
             claim_id = CASE WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL ELSE claim_id END, \
             lease_until = CASE WHEN ?4 = 'running' THEN lease_until ELSE NULL END \
             WHERE id = ?1 AND try_number = ?2 AND state = ?3 \
             RETURNING dag_run_id, queue",
        )
        .map_err(db_err)?;
    let mut results = Vec::with_capacity(batch.len());
    for t in batch {
        let mut rows = stmt
            .query(params![
                t.ti_id,
                t.try_number,
                t.from.as_str(),
                t.to.as_str(),
                t.new_try as i64,
                opt_micros(t.next_retry_at),
                micros(t.now)
            ])
            .map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(row) => {
                touched.runs.insert(row.get(0).map_err(db_err)?);
                if t.to == TaskState::Queued {
                    touched.queues.insert(row.get(1).map_err(db_err)?);
                }
                results.push(TransitionResult::Applied);
            }
            None => results.push(TransitionResult::Conflict),
        }
    }
    Ok(results)
}

/// Expands the mapped tasks whose placeholder's transition was applied (see
/// [`updraft_store::Expansion`]), inside the transaction of that transition.
pub(crate) fn expand(
    tx: &Transaction,
    batch: &[Transition],
    results: &[TransitionResult],
    expansions: &[Expansion],
) -> Result<()> {
    for expansion in expansions {
        let applied = batch
            .iter()
            .zip(results)
            .any(|(t, r)| t.ti_id == expansion.ti_id && *r == TransitionResult::Applied);
        if !applied {
            continue;
        }
        tx.execute(
            "UPDATE task_instance SET map_index = 0 WHERE id = ?1 AND map_index = -1",
            params![expansion.ti_id],
        )
        .map_err(db_err)?;
        // From instance 0: a placeholder just expanded, or a task expanded again to more
        // instances than it had (the indexes it has are kept).
        let mut insert = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO task_instance (dag_run_id, dag_id, run_id, task_id, \
                 map_index, try_number, state, queue, pool, priority_weight, start_date, \
                 end_date) \
                 SELECT dag_run_id, dag_id, run_id, task_id, ?2, 0, state, queue, pool, \
                 priority_weight, start_date, end_date FROM task_instance \
                 WHERE id = ?1 AND map_index = 0",
            )
            .map_err(db_err)?;
        for map_index in 1..i64::from(expansion.count) {
            insert
                .execute(params![expansion.ti_id, map_index])
                .map_err(db_err)?;
        }
    }
    Ok(())
}

pub fn earliest_retry(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MIN(next_retry_at) FROM task_instance WHERE state IN ('up_for_retry', 'up_for_reschedule', 'deferred') \
             AND dag_run_id IN (SELECT id FROM dag_run WHERE state IN ('queued', 'running'))",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    opt_instant(v)
}

pub fn clear(
    tx: &Transaction,
    dag_run_id: i64,
    task_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize> {
    let items: Vec<(String, Option<i64>)> = task_ids.iter().map(|t| (t.clone(), None)).collect();
    clear_instances(tx, dag_run_id, &items, now)
}

/// Clears each `(task_id, map_index)`: every instance of the task for `None`.
pub fn clear_instances(
    tx: &Transaction,
    dag_run_id: i64,
    items: &[(String, Option<i64>)],
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut cleared = 0;
    for (task_id, map_index) in items {
        cleared += tx
            .execute(
                // A running try (or one already cleared while running) keeps its claim and
                // becomes `restarting` until its worker reports: its process may still run.
                "UPDATE task_instance SET \
                 state = CASE WHEN state IN ('running', 'restarting') THEN 'restarting' \
                              ELSE 'none' END, \
                 next_retry_at = NULL, \
                 start_date = CASE WHEN state IN ('running', 'restarting') THEN start_date \
                                   ELSE NULL END, \
                 end_date = CASE WHEN state IN ('running', 'restarting') THEN end_date \
                                 ELSE NULL END, \
                 claim_id = CASE WHEN state IN ('running', 'restarting') THEN claim_id \
                                 ELSE NULL END \
                 WHERE dag_run_id = ?1 AND task_id = ?2 AND (?3 IS NULL OR map_index = ?3)",
                params![dag_run_id, task_id, map_index],
            )
            .map_err(db_err)?;
        tx.execute(
            "DELETE FROM xcom WHERE dag_run_id = ?1 AND task_id = ?2 \
             AND (?3 IS NULL OR map_index = ?3)",
            params![dag_run_id, task_id, map_index],
        )
        .map_err(db_err)?;
    }
    if cleared > 0 {
        tx.execute(
            "UPDATE dag_run SET state = 'queued', start_date = NULL, end_date = NULL, queued_at = ?2 \
             WHERE id = ?1 AND state IN ('success', 'failed')",
            params![dag_run_id, micros(now)],
        )
        .map_err(db_err)?;
    }
    Ok(cleared)
}

//! What users change by hand: notes, deletions, states set by hand, XCom entries, variable
//! records and pool usage ([`ManageStore`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{
    params, params_from_iter, types::Value, Connection, OptionalExtension, Transaction,
};
use updraft_store::*;

use crate::codec::{instant, micros, opt_instant};
use crate::task_instances::{query_tis, TI_COLUMNS};
use crate::{db_err, variables, SqliteStore};

#[async_trait]
impl ManageStore for SqliteStore {
    async fn set_dag_run_note(&self, id: i64, note: Option<String>) -> Result<()> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE dag_run SET note = ?2 WHERE id = ?1",
                    params![id, note],
                )
                .map_err(db_err)?;
            found(n, || format!("dag run #{id}"))
        })
        .await
        .inspect(|_| self.changed([Change::Runs(vec![id])]))
    }
    async fn set_task_instance_note(&self, ti_id: i64, note: Option<String>) -> Result<()> {
        let run = self
            .write(move |tx| {
                tx.query_row(
                    "UPDATE task_instance SET note = ?2 WHERE id = ?1 RETURNING dag_run_id",
                    params![ti_id, note],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::NotFound(format!("task instance #{ti_id}")))
            })
            .await?;
        self.changed([Change::Runs(vec![run])]);
        Ok(())
    }
    async fn delete_dag_run(&self, id: i64) -> Result<()> {
        self.write(move |tx| {
            delete_run_rows(tx, "id = ?1", params![id])?;
            let n = tx
                .execute("DELETE FROM dag_run WHERE id = ?1", params![id])
                .map_err(db_err)?;
            found(n, || format!("dag run #{id}"))
        })
        .await
        .inspect(|_| self.changed([Change::Runs(vec![id])]))
    }
    async fn delete_dag(&self, dag_id: &str) -> Result<()> {
        let dag_id = dag_id.to_string();
        self.write(move |tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM dag WHERE dag_id = ?1",
                    params![dag_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
            }
            let running: Option<i64> = tx
                .query_row(RUNNING_TASK_OF_DAG, params![dag_id], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if running.is_some() {
                return Err(still_running(&dag_id));
            }
            delete_run_rows(tx, "dag_id = ?1", params![dag_id])?;
            for sql in [
                "DELETE FROM backfill_dag_run WHERE backfill_id IN \
                 (SELECT id FROM backfill WHERE dag_id = ?1)",
                "DELETE FROM backfill WHERE dag_id = ?1",
                "DELETE FROM dag_run WHERE dag_id = ?1",
                // Remembered, so that a DAG created again under the id numbers its versions
                // past these (a process may still hold them by id and number).
                "INSERT INTO deleted_dag_version (dag_id, last_version) \
                 SELECT dag_id, MAX(version) FROM dag_version WHERE dag_id = ?1 GROUP BY dag_id \
                 ON CONFLICT (dag_id) DO UPDATE SET \
                 last_version = MAX(last_version, excluded.last_version)",
                "DELETE FROM dag_version WHERE dag_id = ?1",
                "DELETE FROM dag_file WHERE dag_id = ?1",
                "DELETE FROM dag WHERE dag_id = ?1",
            ] {
                tx.execute(sql, params![dag_id]).map_err(db_err)?;
            }
            Ok(())
        })
        .await
        .inspect(|_| self.changed([Change::Everything]))
    }
    async fn mark_task_instances(&self, mark: MarkTaskInstances) -> Result<Vec<TaskInstance>> {
        if mark.ti_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |tx| mark_tis(tx, &mark))
            .await
            .inspect(|marked| self.changed(crate::runs_of(marked)))
    }
    async fn force_dag_run_state(
        &self,
        id: i64,
        state: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(move |tx| {
            let tis = run_ti_states(tx, id)?;
            for mark in marks_for_run_state(&tis, state, now) {
                mark_tis(tx, &mark)?;
            }
            let n = tx
                .execute(
                    "UPDATE dag_run SET state = ?2, \
                     queued_at = CASE WHEN ?2 = 'queued' THEN ?3 ELSE queued_at END, \
                     start_date = CASE WHEN ?2 = 'queued' THEN NULL \
                                       WHEN start_date IS NULL AND ?2 = 'running' THEN ?3 \
                                       ELSE start_date END, \
                     end_date = CASE WHEN ?2 IN ('success', 'failed') THEN ?3 ELSE NULL END \
                     WHERE id = ?1",
                    params![id, state.as_str(), micros(now)],
                )
                .map_err(db_err)?;
            found(n, || format!("dag run #{id}"))
        })
        .await
        .inspect(|_| self.changed([Change::Runs(vec![id])]))
    }

    async fn query_xcoms(&self, query: XComQuery) -> Result<Page<XComEntry>> {
        self.read(move |c| query_xcoms(c, &query)).await
    }
    async fn put_xcom(
        &self,
        key: XComKey,
        value: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<XComEntry> {
        self.write(move |tx| put_xcom(tx, key, value, now))
            .await
            .inspect(|_| self.changed([Change::Everything]))
    }
    async fn delete_xcom(&self, key: XComKey) -> Result<bool> {
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM xcom WHERE task_id = ?3 AND map_index = ?4 AND key = ?5 \
                     AND dag_run_id = (SELECT id FROM dag_run WHERE dag_id = ?1 AND run_id = ?2)",
                    params![key.dag_id, key.run_id, key.task_id, key.map_index, key.key],
                )
                .map_err(db_err)?;
            Ok(n > 0)
        })
        .await
        .inspect(|deleted| {
            if *deleted {
                self.changed([Change::Everything])
            }
        })
    }

    async fn get_variable_record(&self, key: &str) -> Result<Option<VariableRecord>> {
        let (key, secrets) = (key.to_string(), self.secrets.clone());
        self.read(move |c| variables::get_record(c, &secrets, &key))
            .await
    }
    async fn put_variable(&self, variable: VariableRecord) -> Result<()> {
        let (value, encrypted) = self.secrets.seal(&variable.value);
        self.write(move |tx| {
            variables::put(tx, &variable.key, &value, encrypted, &variable.description)
        })
        .await
        .inspect(|_| self.changed([Change::Everything]))
    }
    async fn query_variables(
        &self,
        key_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<VariableRecord>> {
        let secrets = self.secrets.clone();
        self.read(move |c| variables::query(c, &secrets, key_pattern, descending, window))
            .await
    }

    async fn pool_usage(&self) -> Result<HashMap<String, PoolUsage>> {
        self.read(pool_usage).await
    }
}

/// `Ok` when a statement changed a row, `NotFound(what)` otherwise.
pub(crate) fn found(changed: usize, what: impl FnOnce() -> String) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

/// Deletes what belongs to the runs matching `run_filter` (a condition on `dag_run`). The
/// foreign keys cascade too; deleting explicitly keeps this right even on a connection
/// opened without `foreign_keys`.
fn delete_run_rows<P: rusqlite::Params + Copy>(
    tx: &Transaction,
    run_filter: &str,
    p: P,
) -> Result<()> {
    let runs = format!("SELECT id FROM dag_run WHERE {run_filter}");
    let tis = format!("SELECT id FROM task_instance WHERE dag_run_id IN ({runs})");
    for sql in [
        format!("DELETE FROM task_log WHERE ti_id IN ({tis})"),
        format!("DELETE FROM task_try WHERE ti_id IN ({tis})"),
        format!("DELETE FROM xcom WHERE dag_run_id IN ({runs})"),
        format!("DELETE FROM task_instance WHERE dag_run_id IN ({runs})"),
    ] {
        tx.execute(&sql, p).map_err(db_err)?;
    }
    Ok(())
}

/// See [`Store::time_out_dag_run`].
pub(crate) fn time_out_run(
    tx: &Transaction,
    id: i64,
    now: DateTime<Utc>,
) -> Result<TransitionResult> {
    let changed = tx
        .execute(
            "UPDATE dag_run SET state = 'failed', end_date = ?2 WHERE id = ?1 AND state = 'running'",
            params![id, micros(now)],
        )
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(TransitionResult::Conflict);
    }
    let tis = run_ti_states(tx, id)?;
    for mark in marks_for_timeout(&tis, now) {
        mark_tis(tx, &mark)?;
    }
    Ok(TransitionResult::Applied)
}

/// `(id, state)` of every task instance of a run.
fn run_ti_states(tx: &Transaction, id: i64) -> Result<Vec<(i64, TaskState)>> {
    let mut rows = tx
        .prepare_cached("SELECT id, state FROM task_instance WHERE dag_run_id = ?1")
        .map_err(db_err)?;
    let tis = rows
        .query_map(params![id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err)?
        .map(|row| {
            let (ti_id, text) = row.map_err(db_err)?;
            let state = text
                .parse::<TaskState>()
                .map_err(|e| StoreError::Corrupt(format!("task instance {ti_id}: {e}")))?;
            Ok((ti_id, state))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(tis)
}

fn mark_tis(tx: &Transaction, mark: &MarkTaskInstances) -> Result<Vec<TaskInstance>> {
    let ids = mark
        .ti_ids
        .iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>();
    // Ids are integers formatted here, never user text.
    let id_list = ids.join(", ");
    let before = query_tis(
        tx,
        &format!(
            "SELECT {TI_COLUMNS} FROM task_instance WHERE id IN ({id_list}) AND state <> ?1 \
             ORDER BY id"
        ),
        params![mark.state.as_str()],
    )?;
    mark.check(&before)?;
    let now = micros(mark.now);
    for ti in &before {
        // A rescheduled sensor is within its try too: marking it ends that try.
        let live = matches!(
            ti.state,
            TaskState::Running | TaskState::Restarting | TaskState::UpForReschedule
        );
        if live {
            // The try that ran ends here: its history row, as a finish would write it.
            tx.execute(
                "INSERT OR REPLACE INTO task_try (ti_id, try_number, state, hostname, worker_id, \
                 start_date, end_date, infrastructure_failure) \
                 SELECT id, try_number, ?2, hostname, worker_id, COALESCE(start_date, ?3), ?3, 0 \
                 FROM task_instance WHERE id = ?1",
                params![ti.id, mark.state.as_str(), now],
            )
            .map_err(db_err)?;
        }
        // Without its claim the worker's next heartbeat reports the try lost and kills it,
        // and its finish report is refused.
        tx.execute(
            "UPDATE task_instance SET state = ?2, claim_id = NULL, lease_until = NULL, \
             next_retry_at = NULL, start_date = COALESCE(start_date, ?3), \
             end_date = CASE WHEN ?4 OR end_date IS NULL THEN ?3 ELSE end_date END \
             WHERE id = ?1",
            params![ti.id, mark.state.as_str(), now, live],
        )
        .map_err(db_err)?;
    }
    let changed: Vec<Value> = before.iter().map(|ti| Value::Integer(ti.id)).collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    query_tis(
        tx,
        &format!(
            "SELECT {TI_COLUMNS} FROM task_instance WHERE id IN ({}) ORDER BY id",
            vec!["?"; changed.len()].join(", ")
        ),
        params_from_iter(changed),
    )
}

const XCOM_COLUMNS: &str = "r.dag_id, r.run_id, x.task_id, x.map_index, x.key, x.value, \
    r.logical_date, x.timestamp";

fn xcom_from_row(row: &rusqlite::Row) -> rusqlite::Result<(XComEntry, String)> {
    let conv = |i, e| crate::dags::conversion(i, e);
    let value: String = row.get(5)?;
    Ok((
        XComEntry {
            dag_id: row.get(0)?,
            run_id: row.get(1)?,
            task_id: row.get(2)?,
            map_index: row.get(3)?,
            key: row.get(4)?,
            value: serde_json::Value::Null,
            logical_date: instant(row.get(6)?).map_err(|e| conv(6, e))?,
            timestamp: opt_instant(row.get(7)?).map_err(|e| conv(7, e))?,
        },
        value,
    ))
}

fn decode_xcom((mut entry, value): (XComEntry, String)) -> Result<XComEntry> {
    entry.value = serde_json::from_str(&value)
        .map_err(|e| StoreError::Corrupt(format!("xcom {}/{}: {e}", entry.task_id, entry.key)))?;
    Ok(entry)
}

fn query_xcoms(conn: &Connection, query: &XComQuery) -> Result<Page<XComEntry>> {
    let mut filters = vec!["1 = 1".to_string()];
    let mut args: Vec<Value> = Vec::new();
    let mut text = |column: &str, value: &Option<String>, args: &mut Vec<Value>| {
        if let Some(v) = value {
            args.push(Value::Text(v.clone()));
            filters.push(format!("{column} = ?{}", args.len()));
        }
    };
    text("r.dag_id", &query.dag_id, &mut args);
    text("r.run_id", &query.run_id, &mut args);
    text("x.task_id", &query.task_id, &mut args);
    text("x.key", &query.key, &mut args);
    if let Some(map_index) = query.map_index {
        args.push(Value::Integer(map_index));
        filters.push(format!("x.map_index = ?{}", args.len()));
    }
    let from = format!(
        "FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id WHERE {}",
        filters.join(" AND ")
    );
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) {from}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let (limit, offset) = window_args(query.window);
    let sql = format!(
        "SELECT {XCOM_COLUMNS} {from} \
         ORDER BY r.logical_date, x.dag_run_id, x.task_id, x.map_index, x.key \
         LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = conn.prepare(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), xcom_from_row)
        .map_err(db_err)?;
    let mut items = Vec::new();
    for row in rows {
        items.push(decode_xcom(row.map_err(db_err)?)?);
    }
    Ok(Page {
        items,
        total: total.max(0) as u64,
    })
}

/// `LIMIT`/`OFFSET` of a window as SQLite integers (an offset past `i64::MAX` is no row).
pub(crate) fn window_args(window: Window) -> (i64, i64) {
    (
        i64::from(window.limit),
        i64::try_from(window.offset).unwrap_or(i64::MAX),
    )
}

fn put_xcom(
    tx: &Transaction,
    key: XComKey,
    value: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<XComEntry> {
    let run: Option<(i64, i64)> = tx
        .query_row(
            "SELECT id, logical_date FROM dag_run WHERE dag_id = ?1 AND run_id = ?2",
            params![key.dag_id, key.run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err)?;
    let Some((run_id, logical_date)) = run else {
        return Err(StoreError::NotFound(format!(
            "dag run {:?} of DAG {:?}",
            key.run_id, key.dag_id
        )));
    };
    let ti: Option<i64> = tx
        .query_row(
            "SELECT id FROM task_instance WHERE dag_run_id = ?1 AND task_id = ?2 \
             AND map_index = ?3",
            params![run_id, key.task_id, key.map_index],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if ti.is_none() {
        return Err(StoreError::NotFound(format!(
            "task instance {:?} (map index {}) of run {:?}",
            key.task_id, key.map_index, key.run_id
        )));
    }
    tx.execute(
        "INSERT OR REPLACE INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run_id,
            key.task_id,
            key.map_index,
            key.key,
            value.to_string(),
            micros(now)
        ],
    )
    .map_err(db_err)?;
    Ok(XComEntry {
        dag_id: key.dag_id,
        run_id: key.run_id,
        task_id: key.task_id,
        map_index: key.map_index,
        key: key.key,
        value,
        logical_date: instant(logical_date)?,
        timestamp: Some(now),
    })
}

fn pool_usage(conn: &Connection) -> Result<HashMap<String, PoolUsage>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT pool, state, COUNT(*) FROM task_instance \
             WHERE state IN ('running', 'restarting', 'queued', 'scheduled') \
             GROUP BY pool, state",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })
        .map_err(db_err)?;
    let mut usage: HashMap<String, PoolUsage> = HashMap::new();
    for row in rows {
        let (pool, state, n) = row.map_err(db_err)?;
        let entry = usage.entry(pool).or_default();
        match state.as_str() {
            "queued" => entry.queued += n,
            "scheduled" => entry.scheduled += n,
            // running and restarting: both hold a slot and a process
            _ => entry.running += n,
        }
    }
    Ok(usage)
}

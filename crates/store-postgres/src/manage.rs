//! What users change by hand: notes, deletions, states set by hand, XCom entries, variable
//! records and pool usage ([`ManageStore`]). Changes the scheduler must see are announced
//! like the engine's own writes.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::*;

use crate::changes::Announce;
use crate::codec::{col, col_instant, col_opt_instant, col_u32, micros};
use crate::task_instances::{ti_from_row, TI_COLUMNS};
use crate::variables::{self, window_args};
use crate::{db_err, PostgresStore};

#[async_trait]
impl ManageStore for PostgresStore {
    async fn set_dag_run_note(&self, id: i64, note: Option<String>) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE dag_run SET note = $2 WHERE id = $1")
            .bind(id)
            .bind(note)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        found(n, || format!("dag run #{id}"))?;
        // Only readers show notes.
        self.commit_for_watchers(tx, Some(Announce::Runs(vec![id])))
            .await
    }
    async fn set_task_instance_note(&self, ti_id: i64, note: Option<String>) -> Result<()> {
        let mut tx = self.begin().await?;
        let run: Option<i64> = sqlx::query_scalar(
            "UPDATE task_instance SET note = $2 WHERE id = $1 RETURNING dag_run_id",
        )
        .bind(ti_id)
        .bind(note)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let run = run.ok_or_else(|| StoreError::NotFound(format!("task instance #{ti_id}")))?;
        self.commit_for_watchers(tx, Some(Announce::Runs(vec![run])))
            .await
    }
    async fn delete_dag_run(&self, id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        delete_run_rows(&mut tx, "id = $1", Bound::Id(id)).await?;
        let n = sqlx::query("DELETE FROM dag_run WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        found(n, || format!("dag run #{id}"))?;
        // The owning scheduler drops the run it keeps in memory when it finds it gone.
        self.commit(tx, Some(Announce::Runs(vec![id]))).await
    }
    async fn delete_dag(&self, dag_id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        // Locked, so that a concurrent sync or run creation waits for the deletion.
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM dag WHERE dag_id = $1 FOR UPDATE")
                .bind(dag_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("DAG {dag_id:?}")));
        }
        let running: Option<i32> = sqlx::query_scalar(RUNNING_TASK_OF_DAG)
            .bind(dag_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if running.is_some() {
            return Err(still_running(dag_id));
        }
        delete_run_rows(&mut tx, "dag_id = $1", Bound::Text(dag_id)).await?;
        for sql in [
            "DELETE FROM dag_run WHERE dag_id = $1",
            // Remembered, so that a DAG created again under the id numbers its versions past
            // these (a process may still hold them by id and number).
            "INSERT INTO deleted_dag_version (dag_id, last_version) \
             SELECT dag_id, MAX(version) FROM dag_version WHERE dag_id = $1 GROUP BY dag_id \
             ON CONFLICT (dag_id) DO UPDATE SET \
             last_version = GREATEST(deleted_dag_version.last_version, excluded.last_version)",
            "DELETE FROM dag_version WHERE dag_id = $1",
            "DELETE FROM dag_file WHERE dag_id = $1",
            "DELETE FROM dag WHERE dag_id = $1",
        ] {
            sqlx::query(sql)
                .bind(dag_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        self.commit(tx, Some(Announce::Everything)).await
    }
    async fn mark_task_instances(&self, mark: MarkTaskInstances) -> Result<Vec<TaskInstance>> {
        if mark.ti_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let marked = mark_tis(&mut tx, &mark).await?;
        let runs = TaskInstance::runs_of(&marked);
        let change = (!runs.is_empty()).then_some(Announce::Runs(runs));
        self.commit(tx, change).await?;
        Ok(marked)
    }
    async fn force_dag_run_state(
        &self,
        id: i64,
        state: DagRunState,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let tis = run_ti_states(&mut tx, id).await?;
        for mark in marks_for_run_state(&tis, state, now) {
            mark_tis(&mut tx, &mark).await?;
        }
        let n = sqlx::query(
            "UPDATE dag_run SET state = $2, \
             queued_at = CASE WHEN $2 = 'queued' THEN $3 ELSE queued_at END, \
             start_date = CASE WHEN $2 = 'queued' THEN NULL \
                               WHEN start_date IS NULL AND $2 = 'running' THEN $3 \
                               ELSE start_date END, \
             end_date = CASE WHEN $2 IN ('success', 'failed') THEN $3 ELSE NULL END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        found(n, || format!("dag run #{id}"))?;
        self.commit(tx, Some(Announce::Runs(vec![id]))).await
    }

    async fn query_xcoms(&self, query: XComQuery) -> Result<Page<XComEntry>> {
        query_xcoms(&mut *self.conn().await?, &query).await
    }
    async fn put_xcom(
        &self,
        key: XComKey,
        value: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<XComEntry> {
        let mut tx = self.begin().await?;
        let entry = put_xcom(&mut tx, key, value, now).await?;
        self.commit(tx, None).await?;
        self.changed([Change::Everything]);
        Ok(entry)
    }
    async fn delete_xcom(&self, key: XComKey) -> Result<bool> {
        let n = sqlx::query(
            "DELETE FROM xcom WHERE task_id = $3 AND map_index = $4 AND key = $5 \
             AND dag_run_id = (SELECT id FROM dag_run WHERE dag_id = $1 AND run_id = $2)",
        )
        .bind(&key.dag_id)
        .bind(&key.run_id)
        .bind(&key.task_id)
        .bind(key.map_index)
        .bind(&key.key)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?
        .rows_affected();
        if n > 0 {
            self.changed([Change::Everything]);
        }
        Ok(n > 0)
    }

    async fn get_variable_record(&self, key: &str) -> Result<Option<VariableRecord>> {
        variables::get_record(&mut *self.conn().await?, &self.secrets, key).await
    }
    async fn put_variable(&self, variable: VariableRecord) -> Result<()> {
        let (value, encrypted) = self.secrets.seal(&variable.value);
        variables::put(
            &mut *self.conn().await?,
            &variable.key,
            &value,
            encrypted,
            &variable.description,
        )
        .await?;
        self.changed([Change::Everything]);
        Ok(())
    }
    async fn query_variables(
        &self,
        key_pattern: Option<LikePattern>,
        descending: bool,
        window: Window,
    ) -> Result<Page<VariableRecord>> {
        variables::query(
            &mut *self.conn().await?,
            &self.secrets,
            key_pattern,
            descending,
            window,
        )
        .await
    }

    async fn pool_usage(&self) -> Result<HashMap<String, PoolUsage>> {
        let rows = sqlx::query(
            "SELECT pool, \
             COUNT(*) FILTER (WHERE state IN ('running', 'restarting')), \
             COUNT(*) FILTER (WHERE state = 'queued'), \
             COUNT(*) FILTER (WHERE state = 'scheduled') \
             FROM task_instance \
             WHERE state IN ('running', 'restarting', 'queued', 'scheduled') GROUP BY pool",
        )
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok((
                    col(row, 0)?,
                    PoolUsage {
                        running: col_u32(row, 1)?,
                        queued: col_u32(row, 2)?,
                        scheduled: col_u32(row, 3)?,
                    },
                ))
            })
            .collect()
    }
}

/// `Ok` when a statement changed a row, `NotFound(what)` otherwise.
pub(crate) fn found(changed: u64, what: impl FnOnce() -> String) -> Result<()> {
    if changed == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

/// The one parameter (`$1`) of a run filter.
#[derive(Clone, Copy)]
enum Bound<'a> {
    Id(i64),
    Text(&'a str),
}

/// Deletes what belongs to the runs matching `run_filter` (a condition on `dag_run` over
/// `$1`). The foreign keys cascade too; deleting explicitly does not depend on them.
async fn delete_run_rows(
    conn: &mut PgConnection,
    run_filter: &str,
    bound: Bound<'_>,
) -> Result<()> {
    let runs = format!("SELECT id FROM dag_run WHERE {run_filter}");
    let tis = format!("SELECT id FROM task_instance WHERE dag_run_id IN ({runs})");
    for sql in [
        format!("DELETE FROM task_log WHERE ti_id IN ({tis})"),
        format!("DELETE FROM task_try WHERE ti_id IN ({tis})"),
        format!("DELETE FROM xcom WHERE dag_run_id IN ({runs})"),
        format!("DELETE FROM task_instance WHERE dag_run_id IN ({runs})"),
    ] {
        let query = sqlx::query(&sql);
        let query = match bound {
            Bound::Id(id) => query.bind(id),
            Bound::Text(text) => query.bind(text),
        };
        query.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// See [`Store::time_out_dag_run`]; the caller commits.
pub(crate) async fn time_out_run(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<TransitionResult> {
    let changed = sqlx::query(
        "UPDATE dag_run SET state = 'failed', end_date = $2 WHERE id = $1 AND state = 'running'",
    )
    .bind(id)
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    if changed == 0 {
        return Ok(TransitionResult::Conflict);
    }
    let tis = run_ti_states(conn, id).await?;
    for mark in marks_for_timeout(&tis, now) {
        mark_tis(conn, &mark).await?;
    }
    Ok(TransitionResult::Applied)
}

/// `(id, state)` of every task instance of a run, locked in id order.
async fn run_ti_states(conn: &mut PgConnection, id: i64) -> Result<Vec<(i64, TaskState)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, state FROM task_instance WHERE dag_run_id = $1 ORDER BY id FOR UPDATE",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|(ti_id, text)| {
            let state = text
                .parse::<TaskState>()
                .map_err(|e| StoreError::Corrupt(format!("task instance {ti_id}: {e}")))?;
            Ok((ti_id, state))
        })
        .collect()
}

async fn mark_tis(conn: &mut PgConnection, mark: &MarkTaskInstances) -> Result<Vec<TaskInstance>> {
    // Locked in id order, as the engine's batches lock them.
    let rows = sqlx::query(&format!(
        "SELECT {TI_COLUMNS} FROM task_instance WHERE id = ANY($1) AND state <> $2 \
         ORDER BY id FOR UPDATE"
    ))
    .bind(&mark.ti_ids)
    .bind(mark.state.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let before = rows.iter().map(ti_from_row).collect::<Result<Vec<_>>>()?;
    mark.check(&before)?;
    if before.is_empty() {
        return Ok(Vec::new());
    }
    let now = micros(mark.now);
    let live: Vec<i64> = before
        .iter()
        // A rescheduled sensor is within its try too: marking it ends that try.
        .filter(|ti| {
            matches!(
                ti.state,
                TaskState::Running | TaskState::Restarting | TaskState::UpForReschedule
            )
        })
        .map(|ti| ti.id)
        .collect();
    if !live.is_empty() {
        // The try that ran ends here: its history row, as a finish would write it.
        sqlx::query(
            "INSERT INTO task_try (ti_id, try_number, state, hostname, worker_id, start_date, \
             end_date, infrastructure_failure) \
             SELECT id, try_number, $2, hostname, worker_id, COALESCE(start_date, $3), $3, FALSE \
             FROM task_instance WHERE id = ANY($1) \
             ON CONFLICT (ti_id, try_number) DO UPDATE SET state = excluded.state, \
             end_date = excluded.end_date",
        )
        .bind(&live)
        .bind(mark.state.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    let ids: Vec<i64> = before.iter().map(|ti| ti.id).collect();
    // Without its claim the worker's next heartbeat reports the try lost and kills it, and
    // its finish report is refused.
    let rows = sqlx::query(&format!(
        "UPDATE task_instance SET state = $2, claim_id = NULL, lease_until = NULL, \
         next_retry_at = NULL, start_date = COALESCE(start_date, $3), \
         end_date = CASE WHEN id = ANY($4) OR end_date IS NULL THEN $3 ELSE end_date END \
         WHERE id = ANY($1) RETURNING {TI_COLUMNS}"
    ))
    .bind(&ids)
    .bind(mark.state.as_str())
    .bind(now)
    .bind(&live)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut marked = rows.iter().map(ti_from_row).collect::<Result<Vec<_>>>()?;
    marked.sort_by_key(|ti| ti.id);
    Ok(marked)
}

const XCOM_COLUMNS: &str = "r.dag_id, r.run_id, x.task_id, x.map_index, x.key, x.value, \
    r.logical_date, x.timestamp";

fn xcom_from_row(row: &sqlx::postgres::PgRow) -> Result<XComEntry> {
    let task_id: String = col(row, 2)?;
    let key: String = col(row, 4)?;
    let value: String = col(row, 5)?;
    let value = serde_json::from_str(&value)
        .map_err(|e| StoreError::Corrupt(format!("xcom {task_id}/{key}: {e}")))?;
    Ok(XComEntry {
        dag_id: col(row, 0)?,
        run_id: col(row, 1)?,
        task_id,
        map_index: col(row, 3)?,
        key,
        value,
        logical_date: col_instant(row, 6)?,
        timestamp: col_opt_instant(row, 7)?,
    })
}

async fn query_xcoms(conn: &mut PgConnection, query: &XComQuery) -> Result<Page<XComEntry>> {
    // Every filter is bound; a NULL one matches everything.
    let from = "FROM xcom x JOIN dag_run r ON r.id = x.dag_run_id \
         WHERE ($1::text IS NULL OR r.dag_id = $1) AND ($2::text IS NULL OR r.run_id = $2) \
         AND ($3::text IS NULL OR x.task_id = $3) AND ($4::bigint IS NULL OR x.map_index = $4) \
         AND ($5::text IS NULL OR x.key = $5)";
    fn bind<'q>(
        sql: &'q str,
        query: &XComQuery,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sql)
            .bind(query.dag_id.clone())
            .bind(query.run_id.clone())
            .bind(query.task_id.clone())
            .bind(query.map_index)
            .bind(query.key.clone())
    }
    let count = format!("SELECT COUNT(*) {from}");
    let total: i64 = col(
        &bind(&count, query)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?,
        0,
    )?;
    let (limit, offset) = window_args(query.window);
    let select = format!(
        "SELECT {XCOM_COLUMNS} {from} \
         ORDER BY r.logical_date, x.dag_run_id, x.task_id, x.map_index, x.key \
         LIMIT $6 OFFSET $7"
    );
    let rows = bind(&select, query)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(Page {
        items: rows.iter().map(xcom_from_row).collect::<Result<_>>()?,
        total: total.max(0) as u64,
    })
}

async fn put_xcom(
    conn: &mut PgConnection,
    key: XComKey,
    value: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<XComEntry> {
    let run: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, logical_date FROM dag_run WHERE dag_id = $1 AND run_id = $2")
            .bind(&key.dag_id)
            .bind(&key.run_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    let Some((run_id, logical_date)) = run else {
        return Err(StoreError::NotFound(format!(
            "dag run {:?} of DAG {:?}",
            key.run_id, key.dag_id
        )));
    };
    let ti: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM task_instance WHERE dag_run_id = $1 AND task_id = $2 AND map_index = $3",
    )
    .bind(run_id)
    .bind(&key.task_id)
    .bind(key.map_index)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    if ti.is_none() {
        return Err(StoreError::NotFound(format!(
            "task instance {:?} (map index {}) of run {:?}",
            key.task_id, key.map_index, key.run_id
        )));
    }
    sqlx::query(
        "INSERT INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (dag_run_id, task_id, map_index, key) \
         DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp",
    )
    .bind(run_id)
    .bind(&key.task_id)
    .bind(key.map_index)
    .bind(&key.key)
    .bind(value.to_string())
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(XComEntry {
        dag_id: key.dag_id,
        run_id: key.run_id,
        task_id: key.task_id,
        map_index: key.map_index,
        key: key.key,
        value,
        logical_date: crate::codec::instant(logical_date)?,
        timestamp: Some(now),
    })
}

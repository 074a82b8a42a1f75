//! Backfills and their dates ([`BackfillStore`]). Taking a date is a compare-and-set on its
//! row, so with several schedulers each date's run is created once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::*;

use crate::changes::Announce;
use crate::codec::{col, col_instant, col_opt_instant, col_u32, json_map, micros, parse};
use crate::{db_err, runs, task_instances, PostgresStore};

const COLUMNS: &str = "id, dag_id, from_date, to_date, dag_run_conf, reprocess_behavior, \
    max_active_runs, run_backwards, is_paused, created_at, completed_at, updated_at";

fn backfill_from_row(row: &PgRow) -> Result<Backfill> {
    Ok(Backfill {
        id: col(row, 0)?,
        dag_id: col(row, 1)?,
        from_date: col_instant(row, 2)?,
        to_date: col_instant(row, 3)?,
        dag_run_conf: json_map(&col::<String>(row, 4)?)?,
        reprocess_behavior: parse(&col::<String>(row, 5)?)?,
        max_active_runs: col_u32(row, 6)?,
        run_backwards: col(row, 7)?,
        is_paused: col(row, 8)?,
        created_at: col_instant(row, 9)?,
        completed_at: col_opt_instant(row, 10)?,
        updated_at: col_instant(row, 11)?,
    })
}

async fn get(conn: &mut PgConnection, id: i64) -> Result<Backfill> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM backfill WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound(format!("backfill #{id}")))?;
    backfill_from_row(&row)
}

async fn query(
    conn: &mut PgConnection,
    filter: &str,
    dag_id: Option<&str>,
) -> Result<Vec<Backfill>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM backfill WHERE {filter} AND ($1::TEXT IS NULL OR dag_id = $1) \
         ORDER BY id"
    ))
    .bind(dag_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter().map(backfill_from_row).collect()
}

async fn create(conn: &mut PgConnection, b: &NewBackfill) -> Result<Backfill> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM dag WHERE dag_id = $1)")
        .bind(&b.dag_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if !exists {
        return Err(StoreError::NotFound(format!("DAG {:?}", b.dag_id)));
    }
    let conf = serde_json::to_string(&b.dag_run_conf)
        .map_err(|e| StoreError::Corrupt(format!("conf: {e}")))?;
    // The partial unique index decides between two creations racing for the same DAG.
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO backfill (dag_id, from_date, to_date, dag_run_conf, reprocess_behavior, \
         max_active_runs, run_backwards, is_paused, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $8) \
         ON CONFLICT (dag_id) WHERE completed_at IS NULL DO NOTHING RETURNING id",
    )
    .bind(&b.dag_id)
    .bind(micros(b.from_date))
    .bind(micros(b.to_date))
    .bind(conf)
    .bind(b.reprocess_behavior.as_str())
    .bind(i64::from(b.max_active_runs))
    .bind(b.run_backwards)
    .bind(micros(b.now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(id) = id else {
        return Err(StoreError::Conflict(format!(
            "There is already a running backfill for DAG {:?}",
            b.dag_id
        )));
    };
    for (ordinal, date) in b.dates.iter().enumerate() {
        sqlx::query(
            "INSERT INTO backfill_dag_run (backfill_id, logical_date, sort_ordinal, dag_run_id, \
             exception_reason) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(micros(date.logical_date))
        .bind(ordinal as i64 + 1)
        .bind(date.dag_run_id)
        .bind(&date.exception_reason)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    get(conn, id).await
}

async fn dag_runs(conn: &mut PgConnection, id: i64) -> Result<Vec<BackfillDagRun>> {
    get(conn, id).await?;
    let rows = sqlx::query(
        "SELECT b.backfill_id, b.logical_date, b.sort_ordinal, b.dag_run_id, \
         b.exception_reason, b.taken, r.state \
         FROM backfill_dag_run b LEFT JOIN dag_run r ON r.id = b.dag_run_id \
         WHERE b.backfill_id = $1 ORDER BY b.sort_ordinal",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(BackfillDagRun {
                backfill_id: col(row, 0)?,
                logical_date: col_instant(row, 1)?,
                sort_ordinal: col(row, 2)?,
                dag_run_id: col(row, 3)?,
                exception_reason: col(row, 4)?,
                taken: col(row, 5)?,
                run_state: col::<Option<String>>(row, 6)?
                    .map(|s| parse(&s))
                    .transpose()?,
            })
        })
        .collect()
}

async fn take(
    conn: &mut PgConnection,
    id: i64,
    ordinal: i64,
    what: &TakeBackfillDate,
) -> Result<Option<i64>> {
    // The compare-and-set: of schedulers racing for a date, one updates the row, the others
    // find it taken (their UPDATE waits for the winner's commit, then matches nothing).
    let existing: Option<Option<i64>> = sqlx::query_scalar(
        "UPDATE backfill_dag_run d SET taken = TRUE \
         WHERE d.backfill_id = $1 AND d.sort_ordinal = $2 AND NOT d.taken \
         AND d.exception_reason IS NULL AND EXISTS (SELECT 1 FROM backfill b \
         WHERE b.id = d.backfill_id AND b.completed_at IS NULL AND NOT b.is_paused) \
         RETURNING d.dag_run_id",
    )
    .bind(id)
    .bind(ordinal)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(existing) = existing else {
        return Ok(None);
    };
    let run_id = match (what, existing) {
        (TakeBackfillDate::Reprocess { now }, Some(run_id)) => {
            let task_ids: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT task_id FROM task_instance WHERE dag_run_id = $1",
            )
            .bind(run_id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            task_instances::clear(conn, run_id, &task_ids, *now).await?;
            sqlx::query("UPDATE dag_run SET run_type = 'backfill' WHERE id = $1")
                .bind(run_id)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            run_id
        }
        (TakeBackfillDate::Create(run), _) => {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM dag_run WHERE dag_id = $1 AND run_id = $2")
                    .bind(&run.dag_id)
                    .bind(&run.run_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db_err)?;
            match found {
                Some(run_id) => run_id,
                None => runs::create(conn, run).await?.id,
            }
        }
        (TakeBackfillDate::Reprocess { .. }, None) => {
            return Err(StoreError::Conflict(format!(
                "date {ordinal} of backfill #{id} has no run to reprocess"
            )))
        }
    };
    sqlx::query(
        "UPDATE backfill_dag_run SET dag_run_id = $3 WHERE backfill_id = $1 AND sort_ordinal = $2",
    )
    .bind(id)
    .bind(ordinal)
    .bind(run_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(Some(run_id))
}

#[async_trait]
impl BackfillStore for PostgresStore {
    async fn create_backfill(&self, backfill: NewBackfill) -> Result<Backfill> {
        let mut tx = self.begin().await?;
        let created = create(&mut tx, &backfill).await?;
        self.commit(tx, Some(Announce::Everything)).await?;
        Ok(created)
    }
    async fn get_backfill(&self, id: i64) -> Result<Backfill> {
        get(&mut *self.conn().await?, id).await
    }
    async fn list_backfills(&self, dag_id: Option<&str>) -> Result<Vec<Backfill>> {
        query(&mut *self.conn().await?, "TRUE", dag_id).await
    }
    async fn backfill_dag_runs(&self, id: i64) -> Result<Vec<BackfillDagRun>> {
        dag_runs(&mut *self.conn().await?, id).await
    }
    async fn set_backfill_paused(
        &self,
        id: i64,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Backfill> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE backfill SET is_paused = $2, updated_at = $3 \
             WHERE id = $1 AND completed_at IS NULL",
        )
        .bind(id)
        .bind(paused)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        let backfill = get(&mut tx, id).await?;
        if n == 0 {
            return Err(StoreError::Conflict(format!("backfill #{id} is completed")));
        }
        self.commit(tx, Some(Announce::Everything)).await?;
        Ok(backfill)
    }
    async fn cancel_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<Backfill> {
        let mut tx = self.begin().await?;
        let current = get(&mut tx, id).await?;
        if current.completed_at.is_some() {
            return Ok(current);
        }
        let failed: Vec<i64> = sqlx::query_scalar(
            "UPDATE dag_run SET state = 'failed', end_date = $2 \
             WHERE state = 'queued' AND id IN (SELECT dag_run_id FROM backfill_dag_run \
             WHERE backfill_id = $1 AND taken AND dag_run_id IS NOT NULL) RETURNING id",
        )
        .bind(id)
        .bind(micros(now))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE backfill SET is_paused = TRUE, completed_at = $2, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let backfill = get(&mut tx, id).await?;
        self.commit(tx, Some(Announce::Runs(failed))).await?;
        Ok(backfill)
    }
    async fn active_backfills(&self) -> Result<Vec<Backfill>> {
        query(
            &mut *self.conn().await?,
            "completed_at IS NULL AND NOT is_paused",
            None,
        )
        .await
    }
    async fn take_backfill_date(
        &self,
        id: i64,
        sort_ordinal: i64,
        take_date: TakeBackfillDate,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let taken = take(&mut tx, id, sort_ordinal, &take_date).await?;
        let change = taken.map(|run| Announce::Runs(vec![run]));
        self.commit(tx, change).await?;
        Ok(taken)
    }
    async fn complete_backfill(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE backfill SET completed_at = $2, updated_at = $2 \
             WHERE id = $1 AND completed_at IS NULL",
        )
        .bind(id)
        .bind(micros(now))
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n > 0)
    }
}

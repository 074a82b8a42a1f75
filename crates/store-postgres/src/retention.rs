//! Deleting old history in batches ([`RetentionStore`]) next to running schedulers and
//! workers: the statements are the shared ones of
//! [`updraft_store::retention::statements`]; a batch locks the runs (or rows) it takes with
//! `FOR UPDATE SKIP LOCKED`, so a run another transaction is changing waits for the next
//! clean, and the run's state is re-checked under the lock before anything of it goes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::retention::statements::{self as sql, RunPart};
use updraft_store::*;

use crate::changes::Announce;
use crate::codec::micros;
use crate::{db_err, PostgresStore};

/// Appended to the selection of a batch.
const LOCK_RUNS: &str = " FOR UPDATE OF r SKIP LOCKED";
const LOCK_ROWS: &str = " FOR UPDATE SKIP LOCKED";

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn count_cleanable(
        &self,
        table: CleanTable,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>> {
        let before = micros(before);
        let mut conn = self.conn().await?;
        let mut counted = Vec::new();
        let runs = sql::removable_runs(table);
        let mut statements: Vec<(&str, String)> = sql::run_parts(table)
            .iter()
            .map(|part| {
                let rows = part.rows.replace("{runs}", &runs);
                (part.counted, sql::count(part.source, &rows))
            })
            .collect();
        if let Some(st) = sql::standalone(table) {
            statements.push((st.counted, sql::count(st.source, st.old)));
        }
        for (name, statement) in statements {
            let n: i64 = sqlx::query_scalar(&statement)
                .bind(before)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
            if n > 0 {
                counted.push((name.to_string(), n as u64));
            }
        }
        Ok(counted)
    }

    async fn clean_batch(&self, batch: CleanBatch) -> Result<Cleaned> {
        let mut tx = self.begin().await?;
        let cleaned = clean(&mut tx, &batch).await?;
        // Only readers care: the runs were finished, so no scheduler keeps them.
        let change = (!cleaned.runs.is_empty()).then(|| Announce::Runs(cleaned.runs.clone()));
        self.commit_for_watchers(tx, change).await?;
        Ok(cleaned)
    }

    async fn archive_tables(&self) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        archive_tables(&mut conn).await
    }

    async fn drop_archive_table(&self, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        if !archive_tables(&mut tx).await?.iter().any(|n| n == name) {
            return Err(StoreError::NotFound(format!("archive table {name:?}")));
        }
        // Checked above: an archive table's name holds only safe characters.
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await
    }
}

async fn archive_tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
         ORDER BY tablename",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(names
        .into_iter()
        .filter(|n| retention::is_archive_table(n))
        .collect())
}

async fn clean(conn: &mut PgConnection, batch: &CleanBatch) -> Result<Cleaned> {
    let before = micros(batch.before);
    let mut cleaned = Cleaned::default();
    if let Some(st) = sql::standalone(batch.table) {
        let (rows, last) = match st.next_keys() {
            Some(next) => {
                let keys = ids(conn, &format!("{next}{LOCK_ROWS}"), before, batch).await?;
                (st.rows(&keys), keys.last().copied())
            }
            // The few rows of a table without a key go in the clean's first batch.
            None => (st.rows(&[]), (batch.after == 0).then_some(1)),
        };
        if last.is_none() {
            return Ok(cleaned);
        }
        let bound = st.key.is_none().then_some(before);
        let part = RunPart {
            counted: st.counted,
            source: st.source,
            rows: "",
        };
        remove(conn, batch, &part, &rows, bound, &mut cleaned).await?;
        // A table without a key is done after its one batch, even an empty one.
        cleaned.last = last.filter(|_| st.key.is_some() || !cleaned.rows.is_empty());
        return Ok(cleaned);
    }
    let next = format!("{}{LOCK_RUNS}", sql::next_runs(batch.table));
    let taken = ids(conn, &next, before, batch).await?;
    let Some(&last) = taken.last() else {
        return Ok(cleaned);
    };
    let runs = without_busy_runs(conn, taken).await?;
    // The keys only move on: the runs left out wait for the next clean.
    cleaned.last = Some(last);
    if runs.is_empty() {
        return Ok(cleaned);
    }
    let list = sql::id_list(&runs);
    if let Some((query, whole)) = sql::deleted_tries(batch.table) {
        let rows: Vec<(String, String, String, i64, i64)> =
            sqlx::query_as(&query.replace("{runs}", &list))
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?;
        cleaned.tries = retention::tries_of(rows, whole);
    }
    for part in sql::run_parts(batch.table) {
        let rows = part.rows.replace("{runs}", &list);
        remove(conn, batch, part, &rows, None, &mut cleaned).await?;
    }
    cleaned.runs = runs;
    Ok(cleaned)
}

/// `runs` (locked) without those some of whose task instances another transaction holds: a
/// clear locks a run's task instances before it reopens the run, so deleting them would wait
/// for the clear while the clear waits for the run. The task instances of the runs answered
/// are locked too, so a clear that comes later waits for this batch and finds them gone.
async fn without_busy_runs(conn: &mut PgConnection, runs: Vec<i64>) -> Result<Vec<i64>> {
    let list = sql::id_list(&runs);
    let all: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT dag_run_id FROM task_instance WHERE dag_run_id IN ({list})"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let locked: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT dag_run_id FROM task_instance WHERE dag_run_id IN ({list}) \
         FOR UPDATE SKIP LOCKED"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let count = |ids: &[i64], run: i64| ids.iter().filter(|&&id| id == run).count();
    Ok(runs
        .into_iter()
        .filter(|&run| count(&all, run) == count(&locked, run))
        .collect())
}

/// The keys of the next batch, locked.
async fn ids(
    conn: &mut PgConnection,
    statement: &str,
    before: i64,
    batch: &CleanBatch,
) -> Result<Vec<i64>> {
    sqlx::query_scalar(statement)
        .bind(before)
        .bind(batch.after)
        .bind(i64::from(batch.limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)
}

/// Archives (unless skipped) and deletes `rows` of `part.source`, counting them; `before`
/// binds `$1` when `rows` names it.
async fn remove(
    conn: &mut PgConnection,
    batch: &CleanBatch,
    part: &RunPart,
    rows: &str,
    before: Option<i64>,
    cleaned: &mut Cleaned,
) -> Result<()> {
    let counted: i64 = {
        let statement = sql::count(part.source, rows);
        let query = sqlx::query_scalar(&statement);
        let query = match before {
            Some(b) => query.bind(b),
            None => query,
        };
        query.fetch_one(&mut *conn).await.map_err(db_err)?
    };
    if counted == 0 {
        return Ok(());
    }
    if let Some(stamp) = &batch.archive {
        let archive = stamp.table(part.counted);
        execute(conn, &sql::create_archive(&archive, part.source), None).await?;
        let copy = sql::copy_to_archive(&archive, part.source, rows);
        execute(conn, &copy, before).await?;
        if !cleaned.archives.contains(&archive) {
            cleaned.archives.push(archive);
        }
    }
    let n = execute(conn, &sql::delete(part.source, rows), before).await?;
    if n > 0 {
        cleaned.rows.push((part.counted.to_string(), n));
    }
    Ok(())
}

async fn execute(conn: &mut PgConnection, statement: &str, before: Option<i64>) -> Result<u64> {
    let query = sqlx::query(statement);
    let query = match before {
        Some(b) => query.bind(b),
        None => query,
    };
    Ok(query
        .execute(&mut *conn)
        .await
        .map_err(db_err)?
        .rows_affected())
}

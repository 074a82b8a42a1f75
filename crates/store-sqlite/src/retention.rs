//! Deleting old history in batches ([`RetentionStore`]); the statements are the shared
//! ones of [`updraft_store::retention::statements`]. One writer at a time, so a batch needs
//! no locks beyond its transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Transaction};
use updraft_store::retention::statements::{self as sql, RunPart};
use updraft_store::*;

use crate::codec::micros;
use crate::{db_err, SqliteStore};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn count_cleanable(
        &self,
        table: CleanTable,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>> {
        self.read(move |c| count(c, table, micros(before))).await
    }

    async fn clean_batch(&self, batch: CleanBatch) -> Result<Cleaned> {
        let cleaned = self.write(move |tx| clean(tx, &batch)).await?;
        if !cleaned.runs.is_empty() {
            self.changed([Change::Runs(cleaned.runs.clone())]);
        }
        Ok(cleaned)
    }

    async fn archive_tables(&self) -> Result<Vec<String>> {
        self.read(archive_tables).await
    }

    async fn drop_archive_table(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |tx| drop_archive_table(tx, &name)).await
    }
}

fn count(c: &Connection, table: CleanTable, before: i64) -> Result<Vec<(String, u64)>> {
    let mut counted = Vec::new();
    let mut add = |name: &str, statement: String, before: i64| -> Result<()> {
        let n: i64 = c
            .query_row(&statement, params![before], |r| r.get(0))
            .map_err(db_err)?;
        if n > 0 {
            counted.push((name.to_string(), n as u64));
        }
        Ok(())
    };
    let runs = sql::removable_runs(table);
    for part in sql::run_parts(table) {
        let rows = part.rows.replace("{runs}", &runs);
        add(part.counted, sql::count(part.source, &rows), before)?;
    }
    if let Some(st) = sql::standalone(table) {
        add(st.counted, sql::count(st.source, st.old), before)?;
    }
    Ok(counted)
}

fn clean(tx: &Transaction, batch: &CleanBatch) -> Result<Cleaned> {
    let before = micros(batch.before);
    let mut cleaned = Cleaned::default();
    if let Some(st) = sql::standalone(batch.table) {
        let (rows, last) = match st.next_keys() {
            Some(next) => {
                let keys = ids(tx, &next, before, batch)?;
                (st.rows(&keys), keys.last().copied())
            }
            // The few rows of a table without a key go in the clean's first batch.
            None => (st.rows(&[]), (batch.after == 0).then_some(1)),
        };
        if last.is_none() {
            return Ok(cleaned);
        }
        let bound: &[&dyn rusqlite::ToSql] = if st.key.is_some() { &[] } else { &[&before] };
        let part = RunPart {
            counted: st.counted,
            source: st.source,
            rows: "",
        };
        remove(tx, batch, &part, &rows, bound, &mut cleaned)?;
        // A table without a key is done after its one batch, even an empty one.
        cleaned.last = last.filter(|_| st.key.is_some() || !cleaned.rows.is_empty());
        return Ok(cleaned);
    }
    let runs = ids(tx, &sql::next_runs(batch.table), before, batch)?;
    if runs.is_empty() {
        return Ok(cleaned);
    }
    let list = sql::id_list(&runs);
    if let Some((query, whole)) = sql::deleted_tries(batch.table) {
        cleaned.tries = tries(tx, &query.replace("{runs}", &list), whole)?;
    }
    for part in sql::run_parts(batch.table) {
        let rows = part.rows.replace("{runs}", &list);
        remove(tx, batch, part, &rows, &[], &mut cleaned)?;
    }
    cleaned.last = runs.last().copied();
    cleaned.runs = runs;
    Ok(cleaned)
}

/// The keys of the next batch.
fn ids(tx: &Transaction, statement: &str, before: i64, batch: &CleanBatch) -> Result<Vec<i64>> {
    let mut stmt = tx.prepare(statement).map_err(db_err)?;
    let rows = stmt
        .query_map(params![before, batch.after, batch.limit], |r| r.get(0))
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(db_err)
}

/// Archives (unless skipped) and deletes `rows` of `part.source`, counting them.
fn remove(
    tx: &Transaction,
    batch: &CleanBatch,
    part: &RunPart,
    rows: &str,
    bound: &[&dyn rusqlite::ToSql],
    cleaned: &mut Cleaned,
) -> Result<()> {
    let n: i64 = tx
        .query_row(&sql::count(part.source, rows), bound, |r| r.get(0))
        .map_err(db_err)?;
    if n == 0 {
        return Ok(());
    }
    if let Some(stamp) = &batch.archive {
        let archive = stamp.table(part.counted);
        tx.execute(&sql::create_archive(&archive, part.source), [])
            .map_err(db_err)?;
        tx.execute(&sql::copy_to_archive(&archive, part.source, rows), bound)
            .map_err(db_err)?;
        if !cleaned.archives.contains(&archive) {
            cleaned.archives.push(archive);
        }
    }
    let n = tx
        .execute(&sql::delete(part.source, rows), bound)
        .map_err(db_err)?;
    if n > 0 {
        cleaned.rows.push((part.counted.to_string(), n as u64));
    }
    Ok(())
}

fn tries(tx: &Transaction, query: &str, whole: bool) -> Result<Vec<DeletedTry>> {
    let mut stmt = tx.prepare(query).map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(retention::tries_of(rows, whole))
}

pub(crate) fn archive_tables(c: &Connection) -> Result<Vec<String>> {
    let mut stmt = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .map_err(db_err)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(names
        .into_iter()
        .filter(|n| retention::is_archive_table(n))
        .collect())
}

pub(crate) fn drop_archive_table(tx: &Transaction, name: &str) -> Result<()> {
    if !archive_tables(tx)?.iter().any(|n| n == name) {
        return Err(StoreError::NotFound(format!("archive table {name:?}")));
    }
    // Checked above: an archive table's name holds only safe characters.
    tx.execute(&format!("DROP TABLE {name}"), [])
        .map_err(db_err)?;
    Ok(())
}

//! Task instance rows: reading them, compare-and-set state changes and clearing (claims are
//! in `claims`, finished tries in `finish`, queueing in `queueing`).
//!
//! Batches are written with one statement per *round*: round k holds the k-th change of every
//! task instance in the batch, so a round touches each row at most once and the rounds keep
//! the order of the changes to one row. The result is the same as applying the changes one by
//! one, with a handful of statements per batch. Rows a batch changes are locked up front in id
//! order, so that concurrent batches wait for each other instead of deadlocking.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::{Expansion, Result, TaskInstance, Transition, TransitionResult};

use crate::changes::{announce_runs_sql, WATCH_CHANNEL};
use crate::codec::{col, col_opt_instant, col_u32, micros, opt_instant, opt_micros, parse};
use crate::db_err;

pub(crate) const TI_COLUMNS: &str =
    "id, dag_run_id, dag_id, run_id, task_id, map_index, try_number, state, \
    queue, pool, priority_weight, hostname, worker_id, claim_id, lease_until, queued_at, \
    start_date, end_date, next_retry_at, infra_failures, note";

/// How many columns [`TI_COLUMNS`] names.
pub(crate) const TI_COLUMN_COUNT: usize = 21;

/// States that occupy a slot of their DAG and pool.
pub(crate) const OCCUPYING: &str = "('queued', 'running', 'restarting')";

pub(crate) fn ti_from_row(row: &PgRow) -> Result<TaskInstance> {
    Ok(TaskInstance {
        id: col(row, 0)?,
        dag_run_id: col(row, 1)?,
        dag_id: col(row, 2)?,
        run_id: col(row, 3)?,
        task_id: col(row, 4)?,
        map_index: col(row, 5)?,
        try_number: col_u32(row, 6)?,
        state: parse(&col::<String>(row, 7)?)?,
        queue: col(row, 8)?,
        pool: col(row, 9)?,
        priority_weight: col(row, 10)?,
        hostname: col(row, 11)?,
        worker_id: col(row, 12)?,
        claim_id: col(row, 13)?,
        lease_until: col_opt_instant(row, 14)?,
        queued_at: col_opt_instant(row, 15)?,
        start_date: col_opt_instant(row, 16)?,
        end_date: col_opt_instant(row, 17)?,
        next_retry_at: col_opt_instant(row, 18)?,
        infra_failures: col_u32(row, 19)?,
        note: col(row, 20)?,
    })
}

pub(crate) fn tis_from_rows(rows: &[PgRow]) -> Result<Vec<TaskInstance>> {
    rows.iter().map(ti_from_row).collect()
}

pub(crate) async fn query_tis(
    conn: &mut PgConnection,
    where_clause: &str,
    bind: Option<i64>,
    bind_text: Option<&str>,
) -> Result<Vec<TaskInstance>> {
    let sql = format!("SELECT {TI_COLUMNS} FROM task_instance WHERE {where_clause} ORDER BY id");
    let mut query = sqlx::query(&sql);
    if let Some(v) = bind {
        query = query.bind(v);
    }
    if let Some(v) = bind_text {
        query = query.bind(v);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(db_err)?;
    tis_from_rows(&rows)
}

pub async fn of_run(conn: &mut PgConnection, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
    query_tis(conn, "dag_run_id = $1", Some(dag_run_id), None).await
}

/// Locks the task instance rows `ids` in id order (a single row needs no ordering: its
/// statement locks it).
pub(crate) async fn lock_rows(
    conn: &mut PgConnection,
    ids: impl IntoIterator<Item = i64>,
) -> Result<()> {
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.len() > 1 {
        sqlx::query("SELECT id FROM task_instance WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Splits `ids` (in batch order) into rounds of indices, each id at most once per round.
pub(crate) fn rounds(ids: impl Iterator<Item = i64>) -> Vec<Vec<usize>> {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, id) in ids.enumerate() {
        let k = seen.entry(id).or_insert(0);
        if rounds.len() <= *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push(index);
        *k += 1;
    }
    rounds
}

/// Applies the compare-and-sets of `batch` (already checked against the state machine); also
/// answers the runs of the transitions that applied.
pub async fn apply(
    conn: &mut PgConnection,
    batch: &[Transition],
) -> Result<(Vec<TransitionResult>, Vec<i64>)> {
    lock_rows(conn, batch.iter().map(|t| t.ti_id)).await?;
    let mut results = vec![TransitionResult::Conflict; batch.len()];
    let mut runs = BTreeSet::new();
    for round in rounds(batch.iter().map(|t| t.ti_id)) {
        let items: Vec<&Transition> = round.iter().map(|&i| &batch[i]).collect();
        let applied: Vec<(i64, i64)> = round_query(APPLY_ROUND, &items)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        runs.extend(applied.iter().map(|&(_, run)| run));
        let applied: HashSet<i64> = applied.into_iter().map(|(id, _)| id).collect();
        for &i in &round {
            if applied.contains(&batch[i].ti_id) {
                results[i] = TransitionResult::Applied;
            }
        }
    }
    Ok((results, runs.into_iter().collect()))
}

/// One round of transitions (each task instance at most once): a compare-and-set of each on
/// its state and try; returns the applied ids and their runs.
const APPLY_ROUND: &str = concat!(
    "UPDATE task_instance t SET ",
    include_str!("sql/apply_set.sql"),
    " FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
                 $6::bigint[], $7::bigint[]) \
          AS b(id, try_number, from_state, to_state, inc, next_retry_at, now) \
     WHERE t.id = b.id AND t.try_number = b.try_number AND t.state = b.from_state \
     RETURNING t.id, t.dag_run_id"
);

/// The condition [`APPLY_ONE_AT_ONCE`] adds to [`APPLY_ROUND`]'s for its one transition: an
/// equality on the key, which every plan serves from the primary key. Joined with the
/// `unnest` alone, whose generic plan expects ten rows, the planner scanned a table of up to
/// about a thousand task instances whole rather than look ten up.
const ONE_BY_KEY: &str = "WHERE t.id = ($1::bigint[])[1] AND t.id = b.id ";

/// Binds a [`TransitionColumns`] in their order (a macro: queries with and without a row type
/// are different types).
macro_rules! bind_columns {
    ($query:expr, $columns:expr) => {{
        let columns = $columns;
        $query
            .bind(columns.ids)
            .bind(columns.tries)
            .bind(columns.from)
            .bind(columns.to)
            .bind(columns.new_try)
            .bind(columns.next_retry_at)
            .bind(columns.now)
    }};
}

/// [`APPLY_ROUND`] (or a statement around it) with the round's parameters bound as `$1`–`$7`.
fn round_query<'q>(
    sql: &'q str,
    items: &[&Transition],
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, (i64, i64), sqlx::postgres::PgArguments> {
    bind_columns!(
        sqlx::query_as(sql),
        TransitionColumns::of(items.iter().copied())
    )
}

/// `plan` bound as the next seven parameters of `query`, as [`APPLY_ROUND`] takes them.
pub(crate) fn bind_transitions<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    plan: &[Transition],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    bind_columns!(query, TransitionColumns::of(plan.iter()))
}

/// Transitions as the arrays a plan's statements take, one per column.
struct TransitionColumns {
    ids: Vec<i64>,
    tries: Vec<i64>,
    from: Vec<&'static str>,
    to: Vec<&'static str>,
    new_try: Vec<i64>,
    next_retry_at: Vec<Option<i64>>,
    now: Vec<i64>,
}

impl TransitionColumns {
    fn of<'t>(transitions: impl Iterator<Item = &'t Transition> + Clone) -> Self {
        TransitionColumns {
            ids: transitions.clone().map(|t| t.ti_id).collect(),
            tries: transitions
                .clone()
                .map(|t| i64::from(t.try_number))
                .collect(),
            from: transitions.clone().map(|t| t.from.as_str()).collect(),
            to: transitions.clone().map(|t| t.to.as_str()).collect(),
            new_try: transitions.clone().map(|t| i64::from(t.new_try)).collect(),
            next_retry_at: transitions
                .clone()
                .map(|t| opt_micros(t.next_retry_at))
                .collect(),
            now: transitions.map(|t| micros(t.now)).collect(),
        }
    }
}

/// [`APPLY_ROUND`] as a statement of its own that commits without waiting for the disk and
/// announces the runs it changed to watchers (`$8` the channel, `$9` the origin). Built once:
/// it runs for most plans.
static APPLY_ONE_AT_ONCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH settings AS (SELECT set_config('synchronous_commit', 'off', true)), \
         applied AS ({}), \
         announced AS ({}) \
         SELECT applied.id, applied.dag_run_id \
         FROM applied CROSS JOIN announced CROSS JOIN settings",
        APPLY_ROUND.replacen("WHERE t.id = b.id ", ONE_BY_KEY, 1),
        announce_runs_sql("applied", 8, 9)
    )
});

/// A single transition applied in one statement, its own transaction, committed without
/// waiting for the disk (a scheduler's decision: see `begin_rederivable`) and announced to
/// watchers (as from store `origin`) if applied: one round trip where [`apply`] in a
/// transaction takes four. The result and the run if applied.
pub async fn apply_one_at_once(
    conn: &mut PgConnection,
    transition: &Transition,
    origin: &str,
) -> Result<(TransitionResult, Vec<i64>)> {
    let applied = round_query(&APPLY_ONE_AT_ONCE, &[transition])
        .bind(WATCH_CHANNEL)
        .bind(origin)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(match applied.first() {
        Some(&(_, run)) => (TransitionResult::Applied, vec![run]),
        None => (TransitionResult::Conflict, Vec::new()),
    })
}

/// Expands the mapped tasks whose placeholder's transition was applied (see
/// [`updraft_store::Expansion`]), inside the transaction of that transition.
pub async fn expand(
    conn: &mut PgConnection,
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
        sqlx::query("UPDATE task_instance SET map_index = 0 WHERE id = $1 AND map_index = -1")
            .bind(expansion.ti_id)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        if expansion.count < 2 {
            continue;
        }
        // From instance 0: a placeholder just expanded, or a task expanded again to more
        // instances than it had (the indexes it has are kept).
        sqlx::query(
            "INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, \
             try_number, state, queue, pool, priority_weight, start_date, end_date) \
             SELECT t.dag_run_id, t.dag_id, t.run_id, t.task_id, i, 0, t.state, \
             t.queue, t.pool, t.priority_weight, t.start_date, t.end_date \
             FROM task_instance t, generate_series(1::bigint, $2::bigint - 1) AS i \
             WHERE t.id = $1 AND t.map_index = 0 \
             ON CONFLICT (dag_run_id, task_id, map_index) DO NOTHING",
        )
        .bind(expansion.ti_id)
        .bind(i64::from(expansion.count))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

pub async fn earliest_retry(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_retry_at) FROM task_instance WHERE state IN ('up_for_retry', 'up_for_reschedule', 'deferred') \
         AND dag_run_id IN (SELECT id FROM dag_run WHERE state IN ('queued', 'running'))",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    opt_instant(v)
}

pub async fn clear(
    conn: &mut PgConnection,
    dag_run_id: i64,
    task_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "SELECT id FROM task_instance WHERE dag_run_id = $1 AND task_id = ANY($2) \
         ORDER BY id FOR UPDATE",
    )
    .bind(dag_run_id)
    .bind(task_ids)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let cleared_ids: Vec<String> = sqlx::query_scalar(
        // A running try (or one already cleared while running) keeps its claim and becomes
        // `restarting` until its worker reports: its process may still run.
        "UPDATE task_instance SET \
         state = CASE WHEN state IN ('running', 'restarting') THEN 'restarting' ELSE 'none' END, \
         next_retry_at = NULL, \
         start_date = CASE WHEN state IN ('running', 'restarting') THEN start_date ELSE NULL END, \
         end_date = CASE WHEN state IN ('running', 'restarting') THEN end_date ELSE NULL END, \
         claim_id = CASE WHEN state IN ('running', 'restarting') THEN claim_id ELSE NULL END \
         WHERE dag_run_id = $1 AND task_id = ANY($2) RETURNING task_id",
    )
    .bind(dag_run_id)
    .bind(task_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    // Counted per requested task id, as clearing them one by one would.
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    for task_id in &cleared_ids {
        *per_task.entry(task_id.as_str()).or_default() += 1;
    }
    let cleared: usize = task_ids
        .iter()
        .map(|t| per_task.get(t.as_str()).copied().unwrap_or(0))
        .sum();
    sqlx::query("DELETE FROM xcom WHERE dag_run_id = $1 AND task_id = ANY($2)")
        .bind(dag_run_id)
        .bind(task_ids)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if cleared > 0 {
        sqlx::query(
            "UPDATE dag_run SET state = 'queued', start_date = NULL, end_date = NULL, queued_at = $2 \
             WHERE id = $1 AND state IN ('success', 'failed')",
        )
        .bind(dag_run_id)
        .bind(micros(now))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(cleared)
}

/// Clears single instances of mapped tasks (`(task_id, map_index)`), as [`clear`] does whole
/// tasks.
pub async fn clear_mapped(
    conn: &mut PgConnection,
    dag_run_id: i64,
    instances: &[(String, i64)],
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut cleared = 0;
    for (task_id, map_index) in instances {
        let done = sqlx::query(
            // As in `clear`: a running try keeps its claim and becomes `restarting`.
            "UPDATE task_instance SET \
             state = CASE WHEN state IN ('running', 'restarting') THEN 'restarting' ELSE 'none' END, \
             next_retry_at = NULL, \
             start_date = CASE WHEN state IN ('running', 'restarting') THEN start_date ELSE NULL END, \
             end_date = CASE WHEN state IN ('running', 'restarting') THEN end_date ELSE NULL END, \
             claim_id = CASE WHEN state IN ('running', 'restarting') THEN claim_id ELSE NULL END \
             WHERE dag_run_id = $1 AND task_id = $2 AND map_index = $3",
        )
        .bind(dag_run_id)
        .bind(task_id)
        .bind(map_index)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        cleared += done.rows_affected() as usize;
        sqlx::query("DELETE FROM xcom WHERE dag_run_id = $1 AND task_id = $2 AND map_index = $3")
            .bind(dag_run_id)
            .bind(task_id)
            .bind(map_index)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    if cleared > 0 {
        sqlx::query(
            "UPDATE dag_run SET state = 'queued', end_date = NULL, queued_at = $2 \
             WHERE id = $1 AND state IN ('success', 'failed')",
        )
        .bind(dag_run_id)
        .bind(micros(now))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_count_matches_the_columns() {
        assert_eq!(TI_COLUMNS.split(',').count(), TI_COLUMN_COUNT);
    }

    #[test]
    fn a_single_transition_finds_its_row_by_key() {
        assert!(APPLY_ONE_AT_ONCE.contains(ONE_BY_KEY));
        assert_eq!(APPLY_ONE_AT_ONCE.matches("WHERE t.id =").count(), 1);
    }
}

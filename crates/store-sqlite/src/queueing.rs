//! Queueing within `max_active_tasks` and pool slots, counted inside the write transaction.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use updraft_store::{Occupancy, QueueItem, Result, TaskState, Transition, TransitionResult};

use crate::db_err;
use crate::task_instances::{apply, Touched};

// The condition is word for word that of the `task_instance_occupying` indexes.
const DAG_OCCUPANCY: &str = "SELECT COUNT(*) FROM task_instance \
    WHERE dag_id = ?1 AND state IN ('queued', 'running', 'restarting')";
const POOL_OCCUPANCY: &str = "SELECT COUNT(*) FROM task_instance \
    WHERE pool = ?1 AND state IN ('queued', 'running', 'restarting')";

const TASK_OCCUPANCY: &str = "SELECT COUNT(*) FROM task_instance \
    WHERE dag_id = ?1 AND task_id = ?2 AND state IN ('queued', 'running', 'restarting')";
const TASK_RUN_OCCUPANCY: &str = "SELECT COUNT(*) FROM task_instance \
    WHERE dag_run_id = ?1 AND task_id = ?2 AND state IN ('queued', 'running', 'restarting')";

/// Task instances holding a slot of their DAG and pool; the condition is word for word that of
/// the `task_instance_occupying` index.
const OCCUPANCY: &str = "SELECT dag_id, pool, COUNT(*) FROM task_instance \
    WHERE state IN ('queued', 'running', 'restarting') GROUP BY dag_id, pool";

pub fn occupancy(conn: &Connection) -> Result<Occupancy> {
    let mut occupancy = Occupancy::default();
    let mut stmt = conn.prepare_cached(OCCUPANCY).map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (dag_id, pool, n) = row.map_err(db_err)?;
        *occupancy.per_dag.entry(dag_id).or_default() += n;
        *occupancy.per_pool.entry(pool).or_default() += n;
        occupancy.total += n;
    }
    let mut stmt = conn
        .prepare_cached("SELECT name, slots FROM pool")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .map_err(db_err)?;
    for row in rows {
        let (name, slots) = row.map_err(db_err)?;
        occupancy.pool_slots.insert(name, slots);
    }
    Ok(occupancy)
}

/// Task instances holding a slot, in all (the scheduler's `parallelism` counts them).
pub(crate) fn occupying(conn: &Connection) -> Result<u32> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM task_instance WHERE state IN ('queued', 'running', 'restarting')",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(db_err)
}

/// Queues what fits; notes the runs and queues that got work in `touched`.
pub(crate) fn queue(
    tx: &Transaction,
    items: &[QueueItem],
    now: DateTime<Utc>,
    touched: &mut Touched,
) -> Result<Vec<TransitionResult>> {
    let mut per_dag: HashMap<&str, u32> = HashMap::new();
    let mut per_pool: HashMap<&str, (u32, Option<u32>)> = HashMap::new();
    // A task's instances over its DAG, and within a run: counted only for tasks with limits.
    let mut per_task: HashMap<(&str, &str), u32> = HashMap::new();
    let mut per_task_run: HashMap<(i64, &str), u32> = HashMap::new();
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        if !per_dag.contains_key(item.dag_id.as_str()) {
            let n = tx
                .prepare_cached(DAG_OCCUPANCY)
                .and_then(|mut s| s.query_row(params![item.dag_id], |r| r.get(0)))
                .map_err(db_err)?;
            per_dag.insert(&item.dag_id, n);
        }
        if !per_pool.contains_key(item.pool.as_str()) {
            let slots: Option<u32> = tx
                .prepare_cached("SELECT slots FROM pool WHERE name = ?1")
                .and_then(|mut s| s.query_row(params![item.pool], |r| r.get(0)).optional())
                .map_err(db_err)?;
            let n = tx
                .prepare_cached(POOL_OCCUPANCY)
                .and_then(|mut s| s.query_row(params![item.pool], |r| r.get(0)))
                .map_err(db_err)?;
            per_pool.insert(&item.pool, (n, slots));
        }
        let dag_count = per_dag.get(item.dag_id.as_str()).copied().unwrap_or(0);
        let (pool_count, slots) = per_pool
            .get(item.pool.as_str())
            .copied()
            .unwrap_or((0, None));
        if dag_count >= item.max_active_tasks || slots.is_some_and(|s| pool_count >= s) {
            results.push(TransitionResult::Conflict);
            continue;
        }
        if let Some(limits) = &item.task_limits {
            let task_key = (item.dag_id.as_str(), limits.task_id.as_str());
            let run_key = (limits.dag_run_id, limits.task_id.as_str());
            let in_dag = match per_task.entry(task_key) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => *e.insert(
                    tx.prepare_cached(TASK_OCCUPANCY)
                        .and_then(|mut s| {
                            s.query_row(params![item.dag_id, limits.task_id], |r| r.get(0))
                        })
                        .map_err(db_err)?,
                ),
            };
            let in_run = match per_task_run.entry(run_key) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => *e.insert(
                    tx.prepare_cached(TASK_RUN_OCCUPANCY)
                        .and_then(|mut s| {
                            s.query_row(params![limits.dag_run_id, limits.task_id], |r| r.get(0))
                        })
                        .map_err(db_err)?,
                ),
            };
            if limits.per_dag.is_some_and(|l| in_dag >= l)
                || limits.per_run.is_some_and(|l| in_run >= l)
            {
                results.push(TransitionResult::Conflict);
                continue;
            }
        }
        let result = apply(
            tx,
            &[Transition {
                ti_id: item.ti_id,
                try_number: item.try_number,
                from: if item.resumes {
                    TaskState::UpForReschedule
                } else {
                    TaskState::Scheduled
                },
                to: TaskState::Queued,
                now,
                new_try: !item.resumes,
                next_retry_at: None,
            }],
            touched,
        )?
        .pop()
        .unwrap_or(TransitionResult::Conflict);
        if result == TransitionResult::Applied {
            per_dag.insert(&item.dag_id, dag_count + 1);
            per_pool.insert(&item.pool, (pool_count + 1, slots));
            if let Some(limits) = &item.task_limits {
                *per_task
                    .entry((item.dag_id.as_str(), limits.task_id.as_str()))
                    .or_default() += 1;
                *per_task_run
                    .entry((limits.dag_run_id, limits.task_id.as_str()))
                    .or_default() += 1;
            }
        }
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{DAG_OCCUPANCY, OCCUPANCY, POOL_OCCUPANCY};
    use crate::runs::RUNNING_RUNS;
    use crate::schema::migrate;

    /// The plan of `sql` as SQLite reports it, one step per line.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let arguments: &[&str] = if sql.contains("?1") { &["x"] } else { &[] };
        let steps = stmt
            .query_map(rusqlite::params_from_iter(arguments), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        steps.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// Admission counts (and the count of a DAG's running runs) run on every scheduler pass;
    /// a count that scans every task instance or run ever created makes each pass slower as
    /// history grows.
    #[test]
    fn admission_counts_read_an_index_not_the_whole_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for (sql, index) in [
            (DAG_OCCUPANCY, "task_instance_occupying"),
            (POOL_OCCUPANCY, "task_instance_occupying"),
            (OCCUPANCY, "task_instance_occupying"),
            (RUNNING_RUNS, "dag_run_running"),
        ] {
            let plan = plan(&conn, sql);
            // The partial index (only unfinished rows, so even a scan of it is small), or a
            // search by state in another index; never a scan of the table.
            let by_state_search = plan.contains("SEARCH") && !plan.contains("SCAN");
            assert!(
                plan.contains(index) || by_state_search,
                "{sql}\nis planned without the index {index} or a search:\n{plan}"
            );
        }
    }
}

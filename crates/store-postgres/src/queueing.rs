//! Admission-controlled queueing: `scheduled` → `queued` within each DAG's
//! `max_active_tasks` and each pool's slots, counted under the rows' locks in the same
//! transaction, and the occupancy those limits are read from.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::{Occupancy, QueueItem, Result, TaskState, TransitionResult};

use crate::codec::{col, col_u32, micros};
use crate::db_err;
use crate::task_instances::OCCUPYING;

/// Occupying task instances per DAG and pool, and every pool's slots, in one round trip.
pub async fn occupancy(conn: &mut PgConnection) -> Result<Occupancy> {
    let mut occupancy = Occupancy::default();
    let rows = sqlx::query(&format!(
        "SELECT dag_id, pool, COUNT(*) FROM task_instance \
         WHERE state IN {OCCUPYING} GROUP BY dag_id, pool \
         UNION ALL SELECT NULL, name, slots FROM pool"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    for row in &rows {
        let dag_id: Option<String> = col(row, 0)?;
        let pool: String = col(row, 1)?;
        let n = col_u32(row, 2)?;
        let Some(dag_id) = dag_id else {
            occupancy.pool_slots.insert(pool, n);
            continue;
        };
        *occupancy.per_dag.entry(dag_id).or_default() += n;
        *occupancy.per_pool.entry(pool).or_default() += n;
        occupancy.total += n;
    }
    Ok(occupancy)
}

/// Occupying task instances per DAG among `dags` and per pool among `pools`.
async fn occupied(
    conn: &mut PgConnection,
    dags: &[&str],
    pools: &[&str],
) -> Result<(HashMap<String, u32>, HashMap<String, u32>)> {
    let rows = sqlx::query(&format!(
        "SELECT dag_id, pool, COUNT(*) FROM task_instance \
         WHERE state IN {OCCUPYING} AND (dag_id = ANY($1) OR pool = ANY($2)) \
         GROUP BY dag_id, pool"
    ))
    .bind(dags)
    .bind(pools)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let (mut per_dag, mut per_pool) = (HashMap::new(), HashMap::new());
    let (dags, pools): (HashSet<&str>, HashSet<&str>) = (
        dags.iter().copied().collect(),
        pools.iter().copied().collect(),
    );
    for row in &rows {
        let dag_id: String = col(row, 0)?;
        let pool: String = col(row, 1)?;
        let n = col_u32(row, 2)?;
        if dags.contains(&dag_id.as_str()) {
            *per_dag.entry(dag_id).or_default() += n;
        }
        if pools.contains(&pool.as_str()) {
            *per_pool.entry(pool).or_default() += n;
        }
    }
    Ok((per_dag, per_pool))
}

/// Occupying task instances of the tasks of `items` that have limits: per (DAG, task) and
/// per (run, task). Called under the `dag` rows' locks, so the counts hold.
async fn task_occupancy(
    conn: &mut PgConnection,
    items: &[QueueItem],
) -> Result<(HashMap<(String, String), u32>, HashMap<(i64, String), u32>)> {
    let limited: Vec<_> = items
        .iter()
        .filter_map(|i| i.task_limits.as_ref().map(|l| (i, l)))
        .collect();
    if limited.is_empty() {
        return Ok((HashMap::new(), HashMap::new()));
    }
    let dags: Vec<&str> = limited.iter().map(|(i, _)| i.dag_id.as_str()).collect();
    let tasks: Vec<&str> = limited.iter().map(|(_, l)| l.task_id.as_str()).collect();
    let rows = sqlx::query(&format!(
        "SELECT dag_id, task_id, dag_run_id, COUNT(*) FROM task_instance \
         WHERE state IN {OCCUPYING} AND dag_id = ANY($1) AND task_id = ANY($2) \
         GROUP BY dag_id, task_id, dag_run_id"
    ))
    .bind(&dags)
    .bind(&tasks)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let (mut per_task, mut per_task_run) = (HashMap::new(), HashMap::new());
    for row in &rows {
        let dag_id: String = col(row, 0)?;
        let task_id: String = col(row, 1)?;
        let run: i64 = col(row, 2)?;
        let n = col_u32(row, 3)?;
        *per_task.entry((dag_id, task_id.clone())).or_default() += n;
        *per_task_run.entry((run, task_id)).or_default() += n;
    }
    Ok((per_task, per_task_run))
}

/// Queues `items` in order, each only if its DAG and its pool have room, counted under locks
/// on the involved `pool` and `dag` rows (taken in a fixed order: pools, then DAGs, each by
/// name), so that concurrent queueing never exceeds a limit. Returns one result per item,
/// the queues that got work and the runs of the queued task instances.
pub async fn queue(
    conn: &mut PgConnection,
    items: &[QueueItem],
    now: DateTime<Utc>,
) -> Result<(Vec<TransitionResult>, Vec<String>, Vec<i64>)> {
    let pools: Vec<&str> = items
        .iter()
        .map(|i| i.pool.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let dags: Vec<&str> = items
        .iter()
        .map(|i| i.dag_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // `NO KEY UPDATE`: excludes other queueing transactions, but not the key-share locks of
    // new runs referencing the DAG.
    let rows = sqlx::query(
        "SELECT name, slots FROM pool WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE",
    )
    .bind(&pools)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut slots: HashMap<String, i64> = HashMap::new();
    for row in &rows {
        slots.insert(col(row, 0)?, col(row, 1)?);
    }
    sqlx::query("SELECT dag_id FROM dag WHERE dag_id = ANY($1) ORDER BY dag_id FOR NO KEY UPDATE")
        .bind(&dags)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let (mut per_dag, mut per_pool) = occupied(conn, &dags, &pools).await?;
    let (mut per_task, mut per_task_run) = task_occupancy(conn, items).await?;

    let ids: Vec<i64> = items
        .iter()
        .map(|i| i.ti_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = sqlx::query(
        "SELECT id, try_number, state FROM task_instance WHERE id = ANY($1) \
         ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    // (try, state) of each row, as the items admitted so far leave it.
    let mut current: HashMap<i64, (i64, String)> = HashMap::new();
    for row in &rows {
        current.insert(col(row, 0)?, (col(row, 1)?, col(row, 2)?));
    }

    let mut results = vec![TransitionResult::Conflict; items.len()];
    let mut admitted: Vec<i64> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some((try_number, state)) = current.get_mut(&item.ti_id) else {
            continue;
        };
        let from = if item.resumes {
            TaskState::UpForReschedule
        } else {
            TaskState::Scheduled
        };
        if *try_number != i64::from(item.try_number) || state != from.as_str() {
            continue;
        }
        let dag_count = per_dag.entry(item.dag_id.clone()).or_default();
        let pool_count = per_pool.entry(item.pool.clone()).or_default();
        let pool_full = slots
            .get(&item.pool)
            .is_some_and(|&slots| i64::from(*pool_count) >= slots);
        if *dag_count >= item.max_active_tasks || pool_full {
            continue;
        }
        if let Some(limits) = &item.task_limits {
            let task_key = (item.dag_id.clone(), limits.task_id.clone());
            let run_key = (limits.dag_run_id, limits.task_id.clone());
            let in_dag = per_task.get(&task_key).copied().unwrap_or(0);
            let in_run = per_task_run.get(&run_key).copied().unwrap_or(0);
            if limits.per_dag.is_some_and(|l| in_dag >= l)
                || limits.per_run.is_some_and(|l| in_run >= l)
            {
                continue;
            }
            per_task.insert(task_key, in_dag + 1);
            per_task_run.insert(run_key, in_run + 1);
        }
        *dag_count += 1;
        *pool_count += 1;
        *try_number += i64::from(!item.resumes);
        *state = TaskState::Queued.as_str().to_string();
        results[index] = TransitionResult::Applied;
        admitted.push(item.ti_id);
    }
    if admitted.is_empty() {
        return Ok((results, Vec::new(), Vec::new()));
    }
    // Exactly what `apply` does for scheduled → queued with a new try, and for a rescheduled
    // sensor's next poke (same try, its first poke's start kept).
    let rows = sqlx::query(
        "UPDATE task_instance SET state = 'queued', \
         try_number = try_number + CASE WHEN state = 'scheduled' THEN 1 ELSE 0 END, \
         next_retry_at = NULL, queued_at = $2, \
         start_date = CASE WHEN state = 'up_for_reschedule' THEN start_date ELSE NULL END, \
         end_date = NULL, claim_id = NULL, lease_until = NULL \
         WHERE id = ANY($1) AND state IN ('scheduled', 'up_for_reschedule') \
         RETURNING id, queue, dag_run_id",
    )
    .bind(&admitted)
    .bind(micros(now))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut queues = BTreeSet::new();
    let mut runs = BTreeSet::new();
    let mut written = HashSet::new();
    for row in &rows {
        written.insert(col::<i64>(row, 0)?);
        queues.insert(col::<String>(row, 1)?);
        runs.insert(col::<i64>(row, 2)?);
    }
    for (index, item) in items.iter().enumerate() {
        if results[index] == TransitionResult::Applied && !written.contains(&item.ti_id) {
            results[index] = TransitionResult::Conflict;
        }
    }
    Ok((
        results,
        queues.into_iter().collect(),
        runs.into_iter().collect(),
    ))
}

//! Admission-controlled queueing: `scheduled` → `queued` within each DAG's
//! `max_active_tasks`, each pool's slots and each task's own limits, counted under the rows'
//! locks in the same transaction, and the occupancy those limits are read from.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::{Occupancy, QueueItem, Result, StoreError, TaskLimits, TransitionResult};

use crate::changes::CHANNEL;
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

/// Queues `items` in order, each only if its DAG, its pool and its task have room, in one
/// round trip: `updraft_queue` (`sql/queue.sql`) locks the involved `pool` and `dag` rows,
/// counts under those locks and queues what fits, so that concurrent queueing never exceeds
/// a limit; it announces `payload` on [`CHANNEL`] when it queued anything. Returns one result
/// per item, and the queues and runs of the queued task instances.
pub async fn queue(
    conn: &mut PgConnection,
    items: &[QueueItem],
    now: DateTime<Utc>,
    payload: &str,
) -> Result<(Vec<TransitionResult>, Vec<String>, Vec<i64>)> {
    let column = |f: fn(&QueueItem) -> Option<i64>| items.iter().map(f).collect::<Vec<_>>();
    let limits = |f: fn(&TaskLimits) -> Option<u32>| {
        items
            .iter()
            .map(|i| i.task_limits.as_ref().and_then(f).map(i64::from))
            .collect::<Vec<_>>()
    };
    let rows = sqlx::query(
        "SELECT queued_item, queued_queue, queued_run \
         FROM updraft_queue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(column(|i| Some(i.ti_id)))
    .bind(column(|i| Some(i64::from(i.try_number))))
    .bind(items.iter().map(|i| i.resumes).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.dag_id.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|i| i.pool.as_str()).collect::<Vec<_>>())
    .bind(column(|i| Some(i64::from(i.max_active_tasks))))
    .bind(
        items
            .iter()
            .map(|i| i.task_limits.as_ref().map(|l| l.task_id.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(column(|i| i.task_limits.as_ref().map(|l| l.dag_run_id)))
    .bind(limits(|l| l.per_dag))
    .bind(limits(|l| l.per_run))
    .bind(micros(now))
    .bind(CHANNEL)
    .bind(payload)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut results = vec![TransitionResult::Conflict; items.len()];
    let mut queues = BTreeSet::new();
    let mut runs = BTreeSet::new();
    for row in &rows {
        let item = usize::try_from(col::<i32>(row, 0)?)
            .ok()
            .and_then(|position| results.get_mut(position.wrapping_sub(1)))
            .ok_or_else(|| StoreError::Corrupt("a queued item out of range".into()))?;
        *item = TransitionResult::Applied;
        queues.insert(col::<String>(row, 1)?);
        runs.insert(col::<i64>(row, 2)?);
    }
    Ok((
        results,
        queues.into_iter().collect(),
        runs.into_iter().collect(),
    ))
}

//! Admission-controlled queueing: `scheduled` → `queued` within each DAG's
//! `max_active_tasks`, each pool's slots and each task's own limits, counted under the rows'
//! locks in the same transaction, and the occupancy those limits are read from.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::{
    Occupancy, QueueItem, Result, StoreError, TaskLimits, Transition, TransitionResult,
};

use crate::changes::{CHANNEL, WATCH_CHANNEL};
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
    let query = sqlx::query(
        "SELECT queued_item, queued_queue, queued_run \
         FROM updraft_queue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    );
    let rows = bind_items(query, items, now, payload)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut queued = Queued::new(items.len());
    for row in &rows {
        queued.item(col(row, 0)?, col(row, 1)?, col(row, 2)?)?;
    }
    Ok(queued.into_parts())
}

/// A plan's transitions and the queueing of `items` in one round trip: `updraft_queue_planned`
/// (`sql/queue_planned.sql`) applies the transitions (each of another task instance) as
/// [`crate::task_instances::apply`] does, announcing their runs to watchers as from `origin`,
/// then queues as [`queue`] does, seeing what they scheduled, the first items that keep every
/// queued and running task instance within `parallelism`. Returns the transitions'
/// results, the items' results, and the queues and runs of the items queued and of the
/// transitions applied.
pub async fn queue_planned(
    conn: &mut PgConnection,
    plan: &[Transition],
    items: &[QueueItem],
    now: DateTime<Utc>,
    payload: &str,
    origin: &str,
    parallelism: u32,
) -> Result<QueuedPlan> {
    let query = sqlx::query(
        "SELECT kind, item, item_queue, item_run FROM updraft_queue_planned(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
         $20, $21, $22, $23)",
    );
    let query = crate::task_instances::bind_transitions(query, plan)
        .bind(WATCH_CHANNEL)
        .bind(origin)
        .bind(i64::from(parallelism));
    let rows = bind_items(query, items, now, payload)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut applied = vec![TransitionResult::Conflict; plan.len()];
    let mut planned_runs = BTreeSet::new();
    let mut queued = Queued::new(items.len());
    for row in &rows {
        let position: i32 = col(row, 1)?;
        if col::<String>(row, 0)? == "q" {
            queued.item(position, col(row, 2)?, col(row, 3)?)?;
            continue;
        }
        *at_position(&mut applied, position)? = TransitionResult::Applied;
        planned_runs.insert(col::<i64>(row, 3)?);
    }
    let (results, queues, runs) = queued.into_parts();
    Ok(QueuedPlan {
        applied,
        planned_runs: planned_runs.into_iter().collect(),
        queued: results,
        queues,
        queued_runs: runs,
    })
}

/// What [`queue_planned`] did.
pub struct QueuedPlan {
    pub applied: Vec<TransitionResult>,
    /// The runs of the transitions applied.
    pub planned_runs: Vec<i64>,
    pub queued: Vec<TransitionResult>,
    /// The queues and runs of the items queued.
    pub queues: Vec<String>,
    pub queued_runs: Vec<i64>,
}

/// `items` as the thirteen arguments `updraft_queue` takes after those bound before them.
fn bind_items<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    items: &'q [QueueItem],
    now: DateTime<Utc>,
    payload: &'q str,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let column = |f: fn(&QueueItem) -> Option<i64>| items.iter().map(f).collect::<Vec<_>>();
    let limits = |f: fn(&TaskLimits) -> Option<u32>| {
        items
            .iter()
            .map(|i| i.task_limits.as_ref().and_then(f).map(i64::from))
            .collect::<Vec<_>>()
    };
    query
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
}

/// The result of a position (from 1) of a batch.
fn at_position(results: &mut [TransitionResult], position: i32) -> Result<&mut TransitionResult> {
    usize::try_from(position)
        .ok()
        .and_then(|position| results.get_mut(position.wrapping_sub(1)))
        .ok_or_else(|| StoreError::Corrupt(format!("a position out of range: {position}")))
}

/// The items `updraft_queue` answered as queued, with their queues and runs.
struct Queued {
    results: Vec<TransitionResult>,
    queues: BTreeSet<String>,
    runs: BTreeSet<i64>,
}

impl Queued {
    fn new(items: usize) -> Self {
        Queued {
            results: vec![TransitionResult::Conflict; items],
            queues: BTreeSet::new(),
            runs: BTreeSet::new(),
        }
    }

    fn item(&mut self, position: i32, queue: String, run: i64) -> Result<()> {
        *at_position(&mut self.results, position)? = TransitionResult::Applied;
        self.queues.insert(queue);
        self.runs.insert(run);
        Ok(())
    }

    fn into_parts(self) -> (Vec<TransitionResult>, Vec<String>, Vec<i64>) {
        (
            self.results,
            self.queues.into_iter().collect(),
            self.runs.into_iter().collect(),
        )
    }
}

impl crate::PostgresStore {
    /// What queueing `items` announces, inside its statement, as soon as anything is queued:
    /// the queues and runs of every item (those of an item another scheduler took first
    /// only wake a claim that finds nothing).
    pub(crate) fn queued_announcement(&self, items: &[QueueItem]) -> Result<String> {
        let queues: BTreeSet<String> = items.iter().map(|i| i.queue.clone()).collect();
        let runs: BTreeSet<i64> = items.iter().map(|i| i.dag_run_id).collect();
        crate::changes::announcement(
            &self.inner.origin,
            &crate::changes::Announce::WorkQueued(queues.into_iter().collect()),
            &runs.into_iter().collect::<Vec<_>>(),
        )
    }
}

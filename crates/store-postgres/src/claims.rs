//! Claims of queued task instances by workers, and their leases.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::{ClaimRequest, ClaimedTask, Result, TaskInstance};

use crate::changes::{announce_runs_sql, WATCH_CHANNEL};
use crate::codec::micros;
use crate::db_err;
use crate::runs::{run_from_row_at, RUN_COLUMNS};
use crate::task_instances::{query_tis, ti_from_row, TI_COLUMNS, TI_COLUMN_COUNT};

/// Claims up to `limit` queued task instances in one statement, which also announces the
/// claim to the watchers of the other processes (as from store `origin`). Rows other claimers
/// hold are skipped (`SKIP LOCKED`), so concurrent claims never wait for each other nor share
/// a task.
pub async fn claim(
    conn: &mut PgConnection,
    request: &ClaimRequest,
    origin: &str,
) -> Result<Vec<ClaimedTask>> {
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let mut filters = String::new();
    if request.queues.is_some() {
        filters.push_str(" AND queue = ANY($7)");
    }
    match request.dag_run_id {
        Some(_) => filters.push_str(" AND dag_run_id = $6"),
        None => filters.push_str(
            " AND dag_run_id NOT IN (SELECT id FROM dag_run WHERE runner IS NOT NULL \
             AND state IN ('queued', 'running')) AND $6::bigint IS NULL",
        ),
    }
    if request.queues.is_none() {
        filters.push_str(" AND $7::text[] IS NULL");
    }
    // The claimed task instances with their runs, announced to watchers (the wire form of
    // `changes::Announce::Runs`), all in one statement: one round trip, its own transaction.
    let run_columns: Vec<String> = RUN_COLUMNS
        .split(',')
        .map(|c| format!("r.{}", c.trim()))
        .collect();
    let sql = format!(
        "WITH picked AS ( \
             SELECT id AS picked_id FROM task_instance WHERE state = 'queued'{filters} \
             ORDER BY priority_weight DESC, id LIMIT $5 FOR UPDATE SKIP LOCKED), \
         claimed AS ( \
             UPDATE task_instance SET state = 'running', claim_id = gen_random_uuid()::text, \
                 worker_id = $1, hostname = $2, lease_until = $3, \
                 start_date = COALESCE(start_date, $4), end_date = NULL \
             FROM picked WHERE id = picked.picked_id \
             RETURNING {TI_COLUMNS}), \
         announced AS ({}) \
         SELECT claimed.*, {} FROM claimed JOIN dag_run r ON r.id = claimed.dag_run_id \
         CROSS JOIN announced",
        announce_runs_sql("claimed", 8, 9),
        run_columns.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(&request.worker_id)
        .bind(&request.hostname)
        .bind(micros(request.lease_until))
        .bind(micros(request.now))
        .bind(limit)
        .bind(request.dag_run_id)
        .bind(&request.queues)
        .bind(WATCH_CHANNEL)
        .bind(origin)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            let ti = ti_from_row(row)?;
            let dag_run = run_from_row_at(row, TI_COLUMN_COUNT)?;
            let claim_id = ti.claim_id.clone().unwrap_or_default();
            Ok(ClaimedTask {
                ti,
                claim_id,
                dag_run,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by(|a, b| {
        b.ti.priority_weight
            .cmp(&a.ti.priority_weight)
            .then(a.ti.id.cmp(&b.ti.id))
    });
    Ok(claimed)
}

pub async fn heartbeat(
    conn: &mut PgConnection,
    claim_ids: &[String],
    lease_until: DateTime<Utc>,
) -> Result<Vec<String>> {
    let renewed: Vec<String> = sqlx::query_scalar(
        // Rows locked in id order, as batches lock them.
        "UPDATE task_instance t SET lease_until = $2 \
         FROM (SELECT id FROM task_instance WHERE claim_id = ANY($1) AND state = 'running' \
               ORDER BY id FOR UPDATE) AS held \
         WHERE t.id = held.id RETURNING t.claim_id",
    )
    .bind(claim_ids)
    .bind(micros(lease_until))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let renewed: HashSet<String> = renewed.into_iter().collect();
    Ok(claim_ids
        .iter()
        .filter(|id| !renewed.contains(*id))
        .cloned()
        .collect())
}

pub async fn expired_claims(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        "state IN ('running', 'restarting') AND lease_until < $1",
        Some(micros(now)),
        None,
    )
    .await
}

pub async fn claims_of_worker(
    conn: &mut PgConnection,
    worker_id: &str,
) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        "state IN ('running', 'restarting') AND worker_id = $1",
        None,
        Some(worker_id),
    )
    .await
}

/// Every running task instance, for the crash check of local workers.
pub async fn running(conn: &mut PgConnection) -> Result<Vec<TaskInstance>> {
    query_tis(conn, "state IN ('running', 'restarting')", None, None).await
}

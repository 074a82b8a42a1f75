//! Which scheduler evaluates which unfinished run: an owner and a lease per run.

use sqlx::PgConnection;
use updraft_store::{DagRun, OwnRuns, Result};

use crate::codec::micros;
use crate::db_err;
use crate::runs::{runs_from_rows, RUN_COLUMNS};

/// Renews the scheduler's lease on its unfinished runs, adopts free ones up to `max_owned`
/// (rows another transaction is adopting are skipped, never shared), and returns what it owns.
pub async fn own(conn: &mut PgConnection, request: &OwnRuns) -> Result<Vec<DagRun>> {
    let lease = micros(request.lease_until);
    let renewed = sqlx::query(
        "UPDATE dag_run SET scheduler_lease_until = $2 \
         WHERE scheduler_id = $1 AND state IN ('queued', 'running')",
    )
    .bind(&request.scheduler_id)
    .bind(lease)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?
    .rows_affected();
    let owned = usize::try_from(renewed).unwrap_or(usize::MAX);
    if owned < request.max_owned {
        let wanted = i64::try_from(request.max_owned - owned).unwrap_or(i64::MAX);
        let adopted = sqlx::query(
            "WITH free AS ( \
                 SELECT id FROM dag_run \
                 WHERE state IN ('queued', 'running') AND runner IS NULL \
                   AND (scheduler_id IS NULL OR scheduler_lease_until < $3) \
                 ORDER BY logical_date, id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE dag_run r SET scheduler_id = $1, scheduler_lease_until = $2 \
             FROM free WHERE r.id = free.id",
        )
        .bind(&request.scheduler_id)
        .bind(lease)
        .bind(micros(request.now))
        .bind(wanted)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?
        .rows_affected();
        if adopted > 0 {
            tracing::debug!(
                scheduler = %request.scheduler_id,
                adopted,
                "adopted dag runs"
            );
        }
    }
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM dag_run \
         WHERE scheduler_id = $1 AND state IN ('queued', 'running') \
         ORDER BY logical_date, id"
    ))
    .bind(&request.scheduler_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    runs_from_rows(&rows)
}

pub async fn release(conn: &mut PgConnection, scheduler_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE dag_run SET scheduler_id = NULL, scheduler_lease_until = NULL \
         WHERE scheduler_id = $1",
    )
    .bind(scheduler_id)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

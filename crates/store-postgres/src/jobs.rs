//! Heartbeats of long-running processes: schedulers, workers, API servers.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use updraft_store::{JobHeartbeat, JobKind, JobRecord, Result, StoreError};

use crate::codec::{col, col_instant, micros};
use crate::db_err;

pub async fn heartbeat(conn: &mut PgConnection, beat: &JobHeartbeat) -> Result<()> {
    sqlx::query(
        "INSERT INTO job (id, kind, hostname, queues, state, started_at, latest_heartbeat) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, hostname = excluded.hostname, \
         queues = excluded.queues, state = excluded.state, \
         latest_heartbeat = excluded.latest_heartbeat",
    )
    .bind(&beat.id)
    .bind(beat.kind.as_str())
    .bind(&beat.hostname)
    .bind(&beat.queues)
    .bind(&beat.state)
    .bind(micros(beat.now))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn list(
    conn: &mut PgConnection,
    kind: Option<JobKind>,
    alive_since: DateTime<Utc>,
) -> Result<Vec<JobRecord>> {
    let rows = sqlx::query(
        "SELECT id, kind, hostname, queues, state, started_at, latest_heartbeat, number FROM job \
         WHERE latest_heartbeat >= $1 AND ($2::text IS NULL OR kind = $2) ORDER BY kind, id",
    )
    .bind(micros(alive_since))
    .bind(kind.map(JobKind::as_str))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let kind: String = col(row, 1)?;
            Ok(JobRecord {
                id: col(row, 0)?,
                kind: JobKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown job kind {kind:?}")))?,
                hostname: col(row, 2)?,
                queues: col(row, 3)?,
                state: col(row, 4)?,
                started_at: col_instant(row, 5)?,
                latest_heartbeat: col_instant(row, 6)?,
                number: col(row, 7)?,
            })
        })
        .collect()
}

pub async fn end(conn: &mut PgConnection, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM job WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

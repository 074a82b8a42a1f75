//! Heartbeats of long-running processes: schedulers, workers, API servers.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row, Transaction};
use updraft_store::{JobHeartbeat, JobKind, JobRecord, Result, StoreError};

use crate::codec::{instant, micros};
use crate::dags::conversion;
use crate::db_err;

pub fn heartbeat(tx: &Transaction, beat: &JobHeartbeat) -> Result<()> {
    let queues = serde_json::to_string(&beat.queues)
        .map_err(|e| StoreError::Corrupt(format!("queues: {e}")))?;
    tx.execute(
        "INSERT INTO job (id, kind, hostname, queues, state, started_at, latest_heartbeat) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, hostname = excluded.hostname, \
           queues = excluded.queues, state = excluded.state, \
           latest_heartbeat = excluded.latest_heartbeat",
        params![
            beat.id,
            beat.kind.as_str(),
            beat.hostname,
            queues,
            beat.state,
            micros(beat.now)
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

fn job_from_row(row: &Row) -> rusqlite::Result<JobRecord> {
    let kind: String = row.get(1)?;
    let queues: String = row.get(3)?;
    Ok(JobRecord {
        id: row.get(0)?,
        kind: JobKind::parse(&kind)
            .ok_or_else(|| conversion(1, StoreError::Corrupt(format!("job kind {kind:?}"))))?,
        hostname: row.get(2)?,
        queues: serde_json::from_str(&queues)
            .map_err(|e| conversion(3, StoreError::Corrupt(format!("job queues: {e}"))))?,
        state: row.get(4)?,
        started_at: instant(row.get(5)?).map_err(|e| conversion(5, e))?,
        latest_heartbeat: instant(row.get(6)?).map_err(|e| conversion(6, e))?,
        number: row.get(7)?,
    })
}

pub fn list(
    conn: &Connection,
    kind: Option<JobKind>,
    alive_since: DateTime<Utc>,
) -> Result<Vec<JobRecord>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, kind, hostname, queues, state, started_at, latest_heartbeat, rowid FROM job \
             WHERE latest_heartbeat >= ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY kind, id",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![micros(alive_since), kind.map(JobKind::as_str)],
            job_from_row,
        )
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn end(tx: &Transaction, id: &str) -> Result<()> {
    tx.execute("DELETE FROM job WHERE id = ?1", params![id])
        .map_err(db_err)?;
    Ok(())
}

//! Which scheduler evaluates which unfinished run: an owner and a lease per run.

use rusqlite::{params, Transaction};
use updraft_store::{DagRun, OwnRuns, Result};

use crate::codec::micros;
use crate::db_err;
use crate::runs::{query_runs, RUN_COLUMNS};

const UNFINISHED: &str = "state IN ('queued', 'running')";

pub fn own(tx: &Transaction, request: &OwnRuns) -> Result<Vec<DagRun>> {
    let (me, now, lease) = (
        &request.scheduler_id,
        micros(request.now),
        micros(request.lease_until),
    );
    let owned = tx
        .execute(
            &format!(
                "UPDATE dag_run SET scheduler_lease_until = ?2 \
                 WHERE scheduler_id = ?1 AND {UNFINISHED}"
            ),
            params![me, lease],
        )
        .map_err(db_err)?;
    let room = request.max_owned.saturating_sub(owned);
    if room > 0 {
        tx.execute(
            &format!(
                "UPDATE dag_run SET scheduler_id = ?1, scheduler_lease_until = ?2 \
                 WHERE id IN (SELECT id FROM dag_run WHERE {UNFINISHED} AND runner IS NULL \
                   AND (scheduler_id IS NULL OR scheduler_lease_until < ?3) \
                   ORDER BY logical_date, id LIMIT ?4)"
            ),
            params![me, lease, now, room as i64],
        )
        .map_err(db_err)?;
    }
    query_runs(
        tx,
        &format!(
            "SELECT {RUN_COLUMNS} FROM dag_run WHERE scheduler_id = ?1 AND {UNFINISHED} \
             ORDER BY logical_date, id"
        ),
        params![me],
    )
}

pub fn release(tx: &Transaction, scheduler_id: &str) -> Result<()> {
    tx.execute(
        "UPDATE dag_run SET scheduler_id = NULL, scheduler_lease_until = NULL \
         WHERE scheduler_id = ?1",
        params![scheduler_id],
    )
    .map_err(db_err)?;
    Ok(())
}

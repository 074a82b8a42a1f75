//! Finished tries reported by workers: the state, the history row, the XCom and the log tail
//! in one transaction, fenced by the claim.

use std::collections::BTreeSet;

use rusqlite::{params, OptionalExtension, Transaction};
use updraft_store::{log_tail_stored, FinishReport, Result, TaskState, TransitionResult};

use crate::codec::{micros, opt_micros};
use crate::db_err;

/// Records `reports`; also answers the runs whose task instances changed.
pub fn finish(
    tx: &Transaction,
    reports: &[FinishReport],
) -> Result<(Vec<TransitionResult>, Vec<i64>)> {
    // While the claims still hold: a fenced try's tail is refused.
    for chunk in reports.iter().filter_map(FinishReport::log_chunk) {
        log_tail_stored(chunk.ti_id, crate::logs::append(tx, &chunk))?;
    }
    let mut update = tx
        .prepare_cached(
            "UPDATE task_instance SET state = ?4, end_date = ?5, next_retry_at = ?6, \
             infra_failures = infra_failures + ?7, lease_until = NULL \
             WHERE id = ?1 AND try_number = ?2 AND claim_id = ?3 AND state = 'running' \
             RETURNING dag_run_id",
        )
        .map_err(db_err)?;
    let mut restarted = tx
        .prepare_cached(
            "UPDATE task_instance SET state = 'none', claim_id = NULL, lease_until = NULL, \
             start_date = NULL, end_date = NULL \
             WHERE id = ?1 AND try_number = ?2 AND claim_id = ?3 AND state = 'restarting' \
             RETURNING dag_run_id",
        )
        .map_err(db_err)?;
    let mut history = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO task_try (ti_id, try_number, state, hostname, worker_id, \
             start_date, end_date, infrastructure_failure) \
             SELECT id, try_number, state, hostname, worker_id, start_date, end_date, ?2 \
             FROM task_instance WHERE id = ?1",
        )
        .map_err(db_err)?;
    let mut xcom = tx
        .prepare_cached(
            "INSERT OR REPLACE INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
             SELECT dag_run_id, task_id, map_index, 'return_value', ?2, ?3 FROM task_instance \
             WHERE id = ?1",
        )
        .map_err(db_err)?;
    let mut results = Vec::with_capacity(reports.len());
    let mut runs = BTreeSet::new();
    for r in reports {
        let run: Option<i64> = update
            .query_row(
                params![
                    r.ti_id,
                    r.try_number,
                    r.claim_id,
                    r.state.as_str(),
                    micros(r.end_date),
                    opt_micros(r.next_retry_at),
                    r.infrastructure_failure as i64
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(db_err)?;
        if let Some(run) = run {
            runs.insert(run);
            // A rescheduled sensor's try goes on: it is history once it ends.
            if r.state != TaskState::UpForReschedule {
                history
                    .execute(params![r.ti_id, r.infrastructure_failure])
                    .map_err(db_err)?;
            }
            if let Some(value) = &r.xcom {
                xcom.execute(params![r.ti_id, value.to_string(), micros(r.end_date)])
                    .map_err(db_err)?;
            }
            if !r.effects.is_empty() {
                apply_effects(tx, r)?;
            }
            if r.state == TaskState::Success {
                crate::assets::emit_outlet_events(tx, r.ti_id, micros(r.end_date))?;
            }
            results.push(TransitionResult::Applied);
        } else {
            let run: Option<i64> = restarted
                .query_row(params![r.ti_id, r.try_number, r.claim_id], |row| row.get(0))
                .optional()
                .map_err(db_err)?;
            runs.extend(run);
            results.push(TransitionResult::Conflict);
        }
    }
    Ok((results, runs.into_iter().collect()))
}

/// A finished try's pushed XComs and the tasks of its run it skipped (those not started).
fn apply_effects(tx: &Transaction, r: &FinishReport) -> Result<()> {
    let at = micros(r.end_date);
    for pushed in &r.effects.xcoms {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
             SELECT dag_run_id, task_id, map_index, ?2, ?3, ?4 FROM task_instance WHERE id = ?1",
        )
        .map_err(db_err)?
        .execute(params![r.ti_id, pushed.key, pushed.value.to_string(), at])
        .map_err(db_err)?;
    }
    for task_id in &r.effects.skip {
        tx.prepare_cached(
            "UPDATE task_instance SET state = 'skipped', start_date = ?3, end_date = ?3, \
             next_retry_at = NULL \
             WHERE dag_run_id = (SELECT dag_run_id FROM task_instance WHERE id = ?1) \
               AND task_id = ?2 AND state IN ('none', 'scheduled')",
        )
        .map_err(db_err)?
        .execute(params![r.ti_id, task_id, at])
        .map_err(db_err)?;
    }
    crate::notifications::insert(tx, &r.effects.notifications)?;
    Ok(())
}

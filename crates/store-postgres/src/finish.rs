//! Finished tries reported by workers: the state, the history row, the XCom and the log tail
//! in one transaction, fenced by the claim.

use std::collections::{BTreeSet, HashMap};

use sqlx::PgConnection;
use updraft_store::{
    log_tail_stored, FinishReport, FinishedTry, Result, StoreError, TaskState, TransitionResult,
};

use crate::changes::{CHANNEL, MAX_PAYLOAD};
use crate::codec::{col, micros, opt_micros};
use crate::db_err;
use crate::task_instances::{lock_rows, rounds};

/// What a finish changed.
pub struct Finished {
    /// One per report.
    pub results: Vec<TransitionResult>,
    /// Every run whose task instances changed.
    pub runs: Vec<i64>,
    /// The tries applied.
    pub tries: Vec<FinishedTry>,
    /// Runs changed beyond their tries' own states: tasks a try skipped, a cleared try reset.
    pub reread: Vec<i64>,
}

/// The reports in one round trip (`updraft_finish`, `sql/finish.sql`), with the announcement,
/// committed without waiting for the disk (the caller makes it durable before it answers);
/// the runs changed. `None`, having written nothing, when a report needs the general path
/// of [`finish`]: an XCom or other effects to store (seen here), or, as the
/// function finds under the rows' locks (it then changes no row, which no applied finish
/// does), a try no longer running under its claim, a report named twice, a success with
/// outlets, a log tail that does not continue the stored log.
pub async fn finish_at_once(
    conn: &mut PgConnection,
    reports: &[FinishReport],
    origin: &str,
) -> Result<Option<Vec<i64>>> {
    if reports
        .iter()
        .any(|r| r.xcom.is_some() || !r.effects.is_empty())
    {
        return Ok(None);
    }
    let tail_offsets = reports
        .iter()
        .map(|report| {
            report
                .log_tail
                .as_ref()
                .map(|tail| {
                    i64::try_from(tail.offset)
                        .map_err(|_| StoreError::Corrupt(format!("log offset {}", tail.offset)))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    // As the announcement's serde form has them.
    let next_retry_texts = reports
        .iter()
        .map(|report| {
            report
                .next_retry_at
                .map(|at| {
                    serde_json::to_value(at)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .ok_or_else(|| StoreError::Corrupt(format!("retry instant {at}")))
                })
                .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    // Its own transaction, committed without waiting for the disk: the caller flushes it.
    let runs: Vec<i64> = sqlx::query_scalar(
        "WITH settings AS (SELECT set_config('synchronous_commit', 'off', true)) \
         SELECT finished.run FROM settings CROSS JOIN \
         updraft_finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) AS finished(run)",
    )
    .bind(reports.iter().map(|r| r.ti_id).collect::<Vec<_>>())
    .bind(
        reports
            .iter()
            .map(|r| i64::from(r.try_number))
            .collect::<Vec<_>>(),
    )
    .bind(
        reports
            .iter()
            .map(|r| r.claim_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(reports.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
    .bind(
        reports
            .iter()
            .map(|r| micros(r.end_date))
            .collect::<Vec<_>>(),
    )
    .bind(
        reports
            .iter()
            .map(|r| opt_micros(r.next_retry_at))
            .collect::<Vec<_>>(),
    )
    .bind(next_retry_texts)
    .bind(
        reports
            .iter()
            .map(|r| r.infrastructure_failure)
            .collect::<Vec<_>>(),
    )
    .bind(tail_offsets)
    .bind(
        reports
            .iter()
            .map(|r| r.log_tail.as_ref().map_or(&[][..], |t| t.data.as_bytes()))
            .collect::<Vec<_>>(),
    )
    .bind(CHANNEL)
    .bind(origin)
    .bind(MAX_PAYLOAD as i32)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok((!runs.is_empty()).then_some(runs))
}

/// Records finished tries (already checked against the state machine).
pub async fn finish(conn: &mut PgConnection, reports: &[FinishReport]) -> Result<Finished> {
    lock_rows(conn, reports.iter().map(|r| r.ti_id)).await?;
    // Under the rows' locks, and while the claims still hold: a fenced try's tail is refused.
    let tails: Vec<_> = reports.iter().filter_map(FinishReport::log_chunk).collect();
    for (chunk, stored) in tails
        .iter()
        .zip(crate::logs::append_tails(conn, &tails).await?)
    {
        log_tail_stored(chunk.ti_id, stored)?;
    }
    let mut results = vec![TransitionResult::Conflict; reports.len()];
    let mut changed_runs = BTreeSet::new();
    let mut tries = Vec::new();
    let mut reread = BTreeSet::new();
    for round in rounds(reports.iter().map(|r| r.ti_id)) {
        let items: Vec<&FinishReport> = round.iter().map(|&i| &reports[i]).collect();
        let rows = sqlx::query(
            "UPDATE task_instance t SET state = b.state, end_date = b.end_date, \
             next_retry_at = b.next_retry_at, infra_failures = t.infra_failures + b.infra, \
             lease_until = NULL \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
                         $6::bigint[], $7::bigint[]) \
                  AS b(id, try_number, claim_id, state, end_date, next_retry_at, infra) \
             WHERE t.id = b.id AND t.try_number = b.try_number AND t.claim_id = b.claim_id \
               AND t.state = 'running' \
             RETURNING t.id, t.dag_run_id",
        )
        .bind(items.iter().map(|r| r.ti_id).collect::<Vec<_>>())
        .bind(
            items
                .iter()
                .map(|r| i64::from(r.try_number))
                .collect::<Vec<_>>(),
        )
        .bind(
            items
                .iter()
                .map(|r| r.claim_id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(items.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|r| micros(r.end_date)).collect::<Vec<_>>())
        .bind(
            items
                .iter()
                .map(|r| opt_micros(r.next_retry_at))
                .collect::<Vec<_>>(),
        )
        .bind(
            items
                .iter()
                .map(|r| i64::from(r.infrastructure_failure))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        // Applied task instance → its run.
        let mut applied = HashMap::new();
        for row in &rows {
            let run = col::<i64>(row, 1)?;
            applied.insert(col::<i64>(row, 0)?, run);
            changed_runs.insert(run);
        }
        let (done, missed): (Vec<&FinishReport>, Vec<&FinishReport>) =
            items.iter().partition(|r| applied.contains_key(&r.ti_id));
        for report in &done {
            if let Some(&run) = applied.get(&report.ti_id) {
                tries.push(FinishedTry::from_report(run, report));
                if !report.effects.skip.is_empty() {
                    reread.insert(run);
                }
            }
        }
        let ended: Vec<&FinishReport> = done
            .iter()
            .copied()
            .filter(|r| r.state != TaskState::UpForReschedule)
            .collect();
        if !done.is_empty() {
            let succeeded: Vec<&FinishReport> = done
                .iter()
                .copied()
                .filter(|r| r.state == TaskState::Success)
                .collect();
            // The tries' history rows and their outlets' asset events in one round trip.
            let emitted: i64 = sqlx::query_scalar(&format!(
                "WITH tried AS ( \
                     INSERT INTO task_try (ti_id, try_number, state, hostname, worker_id, \
                     start_date, end_date, infrastructure_failure) \
                     SELECT t.id, t.try_number, t.state, t.hostname, t.worker_id, \
                            t.start_date, t.end_date, b.infra \
                     FROM task_instance t \
                     JOIN UNNEST($1::bigint[], $2::bool[]) AS b(id, infra) ON t.id = b.id \
                     ON CONFLICT (ti_id, try_number) DO UPDATE SET state = excluded.state, \
                     hostname = excluded.hostname, worker_id = excluded.worker_id, \
                     start_date = excluded.start_date, end_date = excluded.end_date, \
                     infrastructure_failure = excluded.infrastructure_failure), \
                 emitted AS ({}) \
                 SELECT count(*) FROM emitted",
                crate::assets::outlet_events_sql(3, 4)
            ))
            // A rescheduled sensor's try goes on: it is history once it ends.
            .bind(ended.iter().map(|r| r.ti_id).collect::<Vec<_>>())
            .bind(
                ended
                    .iter()
                    .map(|r| r.infrastructure_failure)
                    .collect::<Vec<_>>(),
            )
            .bind(succeeded.iter().map(|r| r.ti_id).collect::<Vec<_>>())
            .bind(
                succeeded
                    .iter()
                    .map(|r| micros(r.end_date))
                    .collect::<Vec<_>>(),
            )
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
            let with_xcom: Vec<&FinishReport> =
                done.iter().copied().filter(|r| r.xcom.is_some()).collect();
            if !with_xcom.is_empty() {
                let ids: Vec<i64> = with_xcom.iter().map(|r| r.ti_id).collect();
                let values: Vec<String> = with_xcom
                    .iter()
                    .filter_map(|r| r.xcom.as_ref().map(|v| v.to_string()))
                    .collect();
                let written: Vec<i64> = with_xcom.iter().map(|r| micros(r.end_date)).collect();
                sqlx::query(
                    "INSERT INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
                     SELECT t.dag_run_id, t.task_id, t.map_index, 'return_value', b.value, b.at \
                     FROM task_instance t \
                     JOIN UNNEST($1::bigint[], $2::text[], $3::bigint[]) AS b(id, value, at) \
                          ON t.id = b.id \
                     ON CONFLICT (dag_run_id, task_id, map_index, key) \
                     DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp",
                )
                .bind(ids)
                .bind(values)
                .bind(written)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
            for report in done.iter().filter(|r| !r.effects.is_empty()) {
                apply_effects(conn, report).await?;
            }
            if emitted > 0 {
                let (ids, ats): (Vec<i64>, Vec<i64>) = succeeded
                    .iter()
                    .map(|r| (r.ti_id, micros(r.end_date)))
                    .unzip();
                crate::assets::queue_consumers(conn, &ids, &ats).await?;
            }
            for &i in &round {
                if applied.contains_key(&reports[i].ti_id) {
                    results[i] = TransitionResult::Applied;
                }
            }
        }
        if !missed.is_empty() {
            // A cleared try (restarting) is over once its worker reports: back to none.
            let reset: Vec<i64> = sqlx::query_scalar(
                "UPDATE task_instance t SET state = 'none', claim_id = NULL, lease_until = NULL, \
                 start_date = NULL, end_date = NULL \
                 FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]) \
                      AS b(id, try_number, claim_id) \
                 WHERE t.id = b.id AND t.try_number = b.try_number AND t.claim_id = b.claim_id \
                   AND t.state = 'restarting' \
                 RETURNING t.dag_run_id",
            )
            .bind(missed.iter().map(|r| r.ti_id).collect::<Vec<_>>())
            .bind(
                missed
                    .iter()
                    .map(|r| i64::from(r.try_number))
                    .collect::<Vec<_>>(),
            )
            .bind(
                missed
                    .iter()
                    .map(|r| r.claim_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            changed_runs.extend(reset.iter().copied());
            reread.extend(reset);
        }
    }
    Ok(Finished {
        results,
        runs: changed_runs.into_iter().collect(),
        tries,
        reread: reread.into_iter().collect(),
    })
}

/// A finished try's pushed XComs and the tasks of its run it skipped (those not started).
async fn apply_effects(conn: &mut PgConnection, r: &FinishReport) -> Result<()> {
    let at = micros(r.end_date);
    for pushed in &r.effects.xcoms {
        sqlx::query(
            "INSERT INTO xcom (dag_run_id, task_id, map_index, key, value, timestamp) \
             SELECT dag_run_id, task_id, map_index, $2, $3, $4 FROM task_instance WHERE id = $1 \
             ON CONFLICT (dag_run_id, task_id, map_index, key) \
             DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp",
        )
        .bind(r.ti_id)
        .bind(&pushed.key)
        .bind(pushed.value.to_string())
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    if !r.effects.skip.is_empty() {
        sqlx::query(
            "UPDATE task_instance SET state = 'skipped', start_date = $3, end_date = $3, \
             next_retry_at = NULL \
             WHERE dag_run_id = (SELECT dag_run_id FROM task_instance WHERE id = $1) \
               AND task_id = ANY($2) AND state IN ('none', 'scheduled')",
        )
        .bind(r.ti_id)
        .bind(&r.effects.skip)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    crate::notifications::insert(conn, &r.effects.notifications).await?;
    Ok(())
}

//! Task instance rows: compare-and-set state changes, claims and leases, finished tries.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use updraft_store::{
    Change, ClaimRequest, ClaimedTask, FinishReport, Occupancy, Result, TaskInstance, TaskState,
    Transition, TransitionResult,
};

use crate::codec::{micros, opt_instant, opt_micros, parse};
use crate::dags::conversion;
use crate::db_err;
use crate::runs::get_by_id;

pub(crate) const TI_COLUMNS: &str =
    "id, dag_run_id, dag_id, run_id, task_id, map_index, try_number, state, \
    queue, pool, priority_weight, hostname, worker_id, claim_id, lease_until, queued_at, \
    start_date, end_date, next_retry_at, infra_failures, note";

pub(crate) fn ti_from_row(row: &Row) -> rusqlite::Result<TaskInstance> {
    let at = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        opt_instant(row.get(i)?).map_err(|e| conversion(i, e))
    };
    Ok(TaskInstance {
        id: row.get(0)?,
        dag_run_id: row.get(1)?,
        dag_id: row.get(2)?,
        run_id: row.get(3)?,
        task_id: row.get(4)?,
        map_index: row.get(5)?,
        try_number: row.get(6)?,
        state: parse(&row.get::<_, String>(7)?).map_err(|e| conversion(7, e))?,
        queue: row.get(8)?,
        pool: row.get(9)?,
        priority_weight: row.get(10)?,
        hostname: row.get(11)?,
        worker_id: row.get(12)?,
        claim_id: row.get(13)?,
        lease_until: at(14)?,
        queued_at: at(15)?,
        start_date: at(16)?,
        end_date: at(17)?,
        next_retry_at: at(18)?,
        infra_failures: row.get(19)?,
        note: row.get(20)?,
    })
}

pub(crate) fn query_tis<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    p: P,
) -> Result<Vec<TaskInstance>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(p, ti_from_row).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

pub fn of_run(conn: &Connection, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        &format!("SELECT {TI_COLUMNS} FROM task_instance WHERE dag_run_id = ?1 ORDER BY id"),
        params![dag_run_id],
    )
}

/// What a write changed, for the store's watchers.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub runs: BTreeSet<i64>,
    pub queues: BTreeSet<String>,
}

impl Touched {
    pub fn changes(self) -> Vec<Change> {
        let mut changes = Vec::with_capacity(2);
        if !self.runs.is_empty() {
            changes.push(Change::Runs(self.runs.into_iter().collect()));
        }
        if !self.queues.is_empty() {
            changes.push(Change::WorkQueued(self.queues.into_iter().collect()));
        }
        changes
    }
}

/// Applies `batch`, noting the runs (and queues) of the transitions that applied in `touched`.
pub(crate) fn apply(
    tx: &Transaction,
    batch: &[Transition],
    touched: &mut Touched,
) -> Result<Vec<TransitionResult>> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE task_instance SET state = ?4, try_number = try_number + ?5, \
             next_retry_at = ?6, \
             queued_at = CASE WHEN ?4 = 'queued' THEN ?7 ELSE queued_at END, \
             start_date = CASE WHEN ?4 IN ('skipped', 'upstream_failed') THEN ?7 \
                               WHEN ?4 = 'success' AND start_date IS NULL THEN ?7 \
                               WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL \
                               ELSE start_date END, \
             end_date = CASE WHEN ?4 IN ('success', 'failed', 'skipped', 'upstream_failed', \
                             'removed', 'up_for_retry') THEN ?7 \
                             WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL \
                             ELSE end_date END, \
             claim_id = CASE WHEN ?4 IN ('none', 'scheduled', 'queued') THEN NULL ELSE claim_id END, \
             lease_until = CASE WHEN ?4 = 'running' THEN lease_until ELSE NULL END \
             WHERE id = ?1 AND try_number = ?2 AND state = ?3 \
             RETURNING dag_run_id, queue",
        )
        .map_err(db_err)?;
    let mut results = Vec::with_capacity(batch.len());
    for t in batch {
        t.from.check_transition(t.to)?;
        let mut rows = stmt
            .query(params![
                t.ti_id,
                t.try_number,
                t.from.as_str(),
                t.to.as_str(),
                t.new_try as i64,
                opt_micros(t.next_retry_at),
                micros(t.now)
            ])
            .map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(row) => {
                touched.runs.insert(row.get(0).map_err(db_err)?);
                if t.to == TaskState::Queued {
                    touched.queues.insert(row.get(1).map_err(db_err)?);
                }
                results.push(TransitionResult::Applied);
            }
            None => results.push(TransitionResult::Conflict),
        }
    }
    Ok(results)
}

/// Task instances holding a slot of their DAG and pool; the condition is word for word that of
/// the `task_instance_occupying` index.
pub(crate) const OCCUPANCY: &str = "SELECT dag_id, pool, COUNT(*) FROM task_instance \
    WHERE state IN ('queued', 'running', 'restarting') GROUP BY dag_id, pool";

pub fn occupancy(conn: &Connection) -> Result<Occupancy> {
    let mut occupancy = Occupancy::default();
    let mut stmt = conn.prepare_cached(OCCUPANCY).map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (dag_id, pool, n) = row.map_err(db_err)?;
        *occupancy.per_dag.entry(dag_id).or_default() += n;
        *occupancy.per_pool.entry(pool).or_default() += n;
        occupancy.total += n;
    }
    let mut stmt = conn
        .prepare_cached("SELECT name, slots FROM pool")
        .map_err(db_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
        .map_err(db_err)?;
    for row in rows {
        let (name, slots) = row.map_err(db_err)?;
        occupancy.pool_slots.insert(name, slots);
    }
    Ok(occupancy)
}

pub fn earliest_retry(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT MIN(next_retry_at) FROM task_instance WHERE state = 'up_for_retry' \
             AND dag_run_id IN (SELECT id FROM dag_run WHERE state IN ('queued', 'running'))",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    opt_instant(v)
}

pub fn clear(
    tx: &Transaction,
    dag_run_id: i64,
    task_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize> {
    let mut cleared = 0;
    for task_id in task_ids {
        cleared += tx
            .execute(
                // A running try (or one already cleared while running) keeps its claim and
                // becomes `restarting` until its worker reports: its process may still run.
                "UPDATE task_instance SET \
                 state = CASE WHEN state IN ('running', 'restarting') THEN 'restarting' \
                              ELSE 'none' END, \
                 next_retry_at = NULL, \
                 start_date = CASE WHEN state IN ('running', 'restarting') THEN start_date \
                                   ELSE NULL END, \
                 end_date = CASE WHEN state IN ('running', 'restarting') THEN end_date \
                                 ELSE NULL END, \
                 claim_id = CASE WHEN state IN ('running', 'restarting') THEN claim_id \
                                 ELSE NULL END \
                 WHERE dag_run_id = ?1 AND task_id = ?2",
                params![dag_run_id, task_id],
            )
            .map_err(db_err)?;
        tx.execute(
            "DELETE FROM xcom WHERE dag_run_id = ?1 AND task_id = ?2",
            params![dag_run_id, task_id],
        )
        .map_err(db_err)?;
    }
    if cleared > 0 {
        tx.execute(
            "UPDATE dag_run SET state = 'queued', end_date = NULL, queued_at = ?2 \
             WHERE id = ?1 AND state IN ('success', 'failed')",
            params![dag_run_id, micros(now)],
        )
        .map_err(db_err)?;
    }
    Ok(cleared)
}

pub fn claim(tx: &Transaction, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
    if request.limit == 0 {
        return Ok(Vec::new());
    }
    let mut filters = String::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(queues) = &request.queues {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        filters.push_str(&format!(
            " AND queue IN ({})",
            vec!["?"; queues.len()].join(", ")
        ));
        args.extend(queues.iter().map(|q| q.clone().into()));
    }
    match request.dag_run_id {
        Some(run) => {
            filters.push_str(" AND dag_run_id = ?");
            args.push(run.into());
        }
        None => filters.push_str(
            " AND dag_run_id NOT IN (SELECT id FROM dag_run WHERE runner IS NOT NULL \
             AND state IN ('queued', 'running'))",
        ),
    }
    let sql = format!(
        "SELECT {TI_COLUMNS} FROM task_instance WHERE state = 'queued'{filters} \
         ORDER BY priority_weight DESC, id LIMIT {}",
        request.limit
    );
    let candidates = query_tis(tx, &sql, params_from_iter(args))?;
    let mut stmt = tx
        .prepare_cached(
            "UPDATE task_instance SET state = 'running', claim_id = ?3, worker_id = ?4, \
             hostname = ?5, lease_until = ?6, start_date = ?7, end_date = NULL \
             WHERE id = ?1 AND try_number = ?2 AND state = 'queued'",
        )
        .map_err(db_err)?;
    let mut runs = HashMap::new();
    let mut claimed = Vec::with_capacity(candidates.len());
    for mut ti in candidates {
        let claim_id = format!("{}.{}.{}", ti.id, ti.try_number, request.worker_id);
        let changed = stmt
            .execute(params![
                ti.id,
                ti.try_number,
                claim_id,
                request.worker_id,
                request.hostname,
                micros(request.lease_until),
                micros(request.now)
            ])
            .map_err(db_err)?;
        if changed != 1 {
            continue;
        }
        let dag_run = match runs.get(&ti.dag_run_id) {
            Some(run) => Clone::clone(run),
            None => {
                let run = get_by_id(tx, ti.dag_run_id)?;
                runs.insert(ti.dag_run_id, run.clone());
                run
            }
        };
        ti.state = TaskState::Running;
        ti.claim_id = Some(claim_id.clone());
        ti.worker_id = Some(request.worker_id.clone());
        ti.hostname = Some(request.hostname.clone());
        ti.lease_until = Some(request.lease_until);
        ti.start_date = Some(request.now);
        ti.end_date = None;
        claimed.push(ClaimedTask {
            ti,
            claim_id,
            dag_run,
        });
    }
    Ok(claimed)
}

pub fn heartbeat(
    tx: &Transaction,
    claim_ids: &[String],
    lease_until: DateTime<Utc>,
) -> Result<Vec<String>> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE task_instance SET lease_until = ?2 WHERE claim_id = ?1 AND state = 'running'",
        )
        .map_err(db_err)?;
    let mut lost = Vec::new();
    for claim_id in claim_ids {
        let changed = stmt
            .execute(params![claim_id, micros(lease_until)])
            .map_err(db_err)?;
        if changed == 0 {
            lost.push(claim_id.clone());
        }
    }
    Ok(lost)
}

/// Records `reports`; also answers the runs whose task instances changed.
pub fn finish(
    tx: &Transaction,
    reports: &[FinishReport],
) -> Result<(Vec<TransitionResult>, Vec<i64>)> {
    // While the claims still hold: a fenced try's tail is refused.
    for chunk in reports.iter().filter_map(FinishReport::log_chunk) {
        match crate::logs::append(tx, &chunk) {
            // A tail that cannot be placed (see `logs::append`) must not keep the state from
            // being recorded; a database error fails the transaction as any would.
            Err(updraft_store::StoreError::Corrupt(message)) => {
                tracing::warn!(ti_id = chunk.ti_id, %message, "log tail not stored");
            }
            other => {
                other?;
            }
        }
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
        TaskState::Running.check_transition(r.state)?;
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
            history
                .execute(params![r.ti_id, r.infrastructure_failure])
                .map_err(db_err)?;
            if let Some(value) = &r.xcom {
                xcom.execute(params![r.ti_id, value.to_string(), micros(r.end_date)])
                    .map_err(db_err)?;
            }
            if !r.effects.is_empty() {
                apply_effects(tx, r)?;
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
    Ok(())
}

pub fn expired_claims(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        &format!(
            "SELECT {TI_COLUMNS} FROM task_instance WHERE state IN ('running', 'restarting') \
             AND lease_until < ?1"
        ),
        params![micros(now)],
    )
}

pub fn claims_of_worker(conn: &Connection, worker_id: &str) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        &format!(
            "SELECT {TI_COLUMNS} FROM task_instance WHERE state IN ('running', 'restarting') \
             AND worker_id = ?1"
        ),
        params![worker_id],
    )
}

/// Every running task instance, for the crash check of local workers.
pub fn running(conn: &Connection) -> Result<Vec<TaskInstance>> {
    query_tis(
        conn,
        &format!("SELECT {TI_COLUMNS} FROM task_instance WHERE state IN ('running', 'restarting')"),
        [],
    )
}

//! Task instance rows: compare-and-set state changes, claims and leases, finished tries
//! (queueing is in `queueing`).
//!
//! Batches are written with one statement per *round*: round k holds the k-th change of every
//! task instance in the batch, so a round touches each row at most once and the rounds keep
//! the order of the changes to one row. The result is the same as applying the changes one by
//! one, with a handful of statements per batch. Rows a batch changes are locked up front in id
//! order, so that concurrent batches wait for each other instead of deadlocking.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use updraft_store::{
    ClaimRequest, ClaimedTask, FinishReport, Result, TaskInstance, Transition, TransitionResult,
};

use crate::codec::{col, col_opt_instant, col_u32, micros, opt_instant, opt_micros, parse, to_u32};
use crate::db_err;

pub(crate) const TI_COLUMNS: &str =
    "id, dag_run_id, dag_id, run_id, task_id, map_index, try_number, state, \
    queue, pool, priority_weight, hostname, worker_id, claim_id, lease_until, queued_at, \
    start_date, end_date, next_retry_at, infra_failures, note";

/// States that occupy a slot of their DAG and pool.
pub(crate) const OCCUPYING: &str = "('queued', 'running', 'restarting')";

pub(crate) fn ti_from_row(row: &PgRow) -> Result<TaskInstance> {
    Ok(TaskInstance {
        id: col(row, 0)?,
        dag_run_id: col(row, 1)?,
        dag_id: col(row, 2)?,
        run_id: col(row, 3)?,
        task_id: col(row, 4)?,
        map_index: col(row, 5)?,
        try_number: col_u32(row, 6)?,
        state: parse(&col::<String>(row, 7)?)?,
        queue: col(row, 8)?,
        pool: col(row, 9)?,
        priority_weight: col(row, 10)?,
        hostname: col(row, 11)?,
        worker_id: col(row, 12)?,
        claim_id: col(row, 13)?,
        lease_until: col_opt_instant(row, 14)?,
        queued_at: col_opt_instant(row, 15)?,
        start_date: col_opt_instant(row, 16)?,
        end_date: col_opt_instant(row, 17)?,
        next_retry_at: col_opt_instant(row, 18)?,
        infra_failures: col_u32(row, 19)?,
        note: col(row, 20)?,
    })
}

fn tis_from_rows(rows: &[PgRow]) -> Result<Vec<TaskInstance>> {
    rows.iter().map(ti_from_row).collect()
}

async fn query_tis(
    conn: &mut PgConnection,
    where_clause: &str,
    bind: Option<i64>,
    bind_text: Option<&str>,
) -> Result<Vec<TaskInstance>> {
    let sql = format!("SELECT {TI_COLUMNS} FROM task_instance WHERE {where_clause} ORDER BY id");
    let mut query = sqlx::query(&sql);
    if let Some(v) = bind {
        query = query.bind(v);
    }
    if let Some(v) = bind_text {
        query = query.bind(v);
    }
    let rows = query.fetch_all(&mut *conn).await.map_err(db_err)?;
    tis_from_rows(&rows)
}

pub async fn of_run(conn: &mut PgConnection, dag_run_id: i64) -> Result<Vec<TaskInstance>> {
    query_tis(conn, "dag_run_id = $1", Some(dag_run_id), None).await
}

/// Locks the task instance rows `ids` in id order (a single row needs no ordering: its
/// statement locks it).
async fn lock_rows(conn: &mut PgConnection, ids: impl IntoIterator<Item = i64>) -> Result<()> {
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.len() > 1 {
        sqlx::query("SELECT id FROM task_instance WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Splits `ids` (in batch order) into rounds of indices, each id at most once per round.
fn rounds(ids: impl Iterator<Item = i64>) -> Vec<Vec<usize>> {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (index, id) in ids.enumerate() {
        let k = seen.entry(id).or_insert(0);
        if rounds.len() <= *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push(index);
        *k += 1;
    }
    rounds
}

/// Applies the compare-and-sets of `batch` (already checked against the state machine).
/// Applies `batch`; also answers the runs of the transitions that applied.
pub async fn apply(
    conn: &mut PgConnection,
    batch: &[Transition],
) -> Result<(Vec<TransitionResult>, Vec<i64>)> {
    lock_rows(conn, batch.iter().map(|t| t.ti_id)).await?;
    let mut results = vec![TransitionResult::Conflict; batch.len()];
    let mut runs = BTreeSet::new();
    for round in rounds(batch.iter().map(|t| t.ti_id)) {
        let items: Vec<&Transition> = round.iter().map(|&i| &batch[i]).collect();
        let applied: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE task_instance t SET state = b.to_state, try_number = t.try_number + b.inc, \
             next_retry_at = b.next_retry_at, \
             queued_at = CASE WHEN b.to_state = 'queued' THEN b.now ELSE t.queued_at END, \
             start_date = CASE WHEN b.to_state IN ('skipped', 'upstream_failed') THEN b.now \
                               WHEN b.to_state = 'success' AND t.start_date IS NULL THEN b.now \
                               WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL \
                               ELSE t.start_date END, \
             end_date = CASE WHEN b.to_state IN ('success', 'failed', 'skipped', \
                             'upstream_failed', 'removed', 'up_for_retry') THEN b.now \
                             WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL \
                             ELSE t.end_date END, \
             claim_id = CASE WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL \
                             ELSE t.claim_id END, \
             lease_until = CASE WHEN b.to_state = 'running' THEN t.lease_until ELSE NULL END \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], \
                         $6::bigint[], $7::bigint[]) \
                  AS b(id, try_number, from_state, to_state, inc, next_retry_at, now) \
             WHERE t.id = b.id AND t.try_number = b.try_number AND t.state = b.from_state \
             RETURNING t.id, t.dag_run_id",
        )
        .bind(items.iter().map(|t| t.ti_id).collect::<Vec<_>>())
        .bind(
            items
                .iter()
                .map(|t| i64::from(t.try_number))
                .collect::<Vec<_>>(),
        )
        .bind(items.iter().map(|t| t.from.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|t| t.to.as_str()).collect::<Vec<_>>())
        .bind(
            items
                .iter()
                .map(|t| i64::from(t.new_try))
                .collect::<Vec<_>>(),
        )
        .bind(
            items
                .iter()
                .map(|t| opt_micros(t.next_retry_at))
                .collect::<Vec<_>>(),
        )
        .bind(items.iter().map(|t| micros(t.now)).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        runs.extend(applied.iter().map(|&(_, run)| run));
        let applied: HashSet<i64> = applied.into_iter().map(|(id, _)| id).collect();
        for &i in &round {
            if applied.contains(&batch[i].ti_id) {
                results[i] = TransitionResult::Applied;
            }
        }
    }
    Ok((results, runs.into_iter().collect()))
}

pub async fn earliest_retry(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(next_retry_at) FROM task_instance WHERE state = 'up_for_retry' \
         AND dag_run_id IN (SELECT id FROM dag_run WHERE state IN ('queued', 'running'))",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    opt_instant(v)
}

pub async fn clear(
    conn: &mut PgConnection,
    dag_run_id: i64,
    task_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize> {
    if task_ids.is_empty() {
        return Ok(0);
    }
    sqlx::query(
        "SELECT id FROM task_instance WHERE dag_run_id = $1 AND task_id = ANY($2) \
         ORDER BY id FOR UPDATE",
    )
    .bind(dag_run_id)
    .bind(task_ids)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let cleared_ids: Vec<String> = sqlx::query_scalar(
        // A running try (or one already cleared while running) keeps its claim and becomes
        // `restarting` until its worker reports: its process may still run.
        "UPDATE task_instance SET \
         state = CASE WHEN state IN ('running', 'restarting') THEN 'restarting' ELSE 'none' END, \
         next_retry_at = NULL, \
         start_date = CASE WHEN state IN ('running', 'restarting') THEN start_date ELSE NULL END, \
         end_date = CASE WHEN state IN ('running', 'restarting') THEN end_date ELSE NULL END, \
         claim_id = CASE WHEN state IN ('running', 'restarting') THEN claim_id ELSE NULL END \
         WHERE dag_run_id = $1 AND task_id = ANY($2) RETURNING task_id",
    )
    .bind(dag_run_id)
    .bind(task_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    // Counted per requested task id, as clearing them one by one would.
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    for task_id in &cleared_ids {
        *per_task.entry(task_id.as_str()).or_default() += 1;
    }
    let cleared: usize = task_ids
        .iter()
        .map(|t| per_task.get(t.as_str()).copied().unwrap_or(0))
        .sum();
    sqlx::query("DELETE FROM xcom WHERE dag_run_id = $1 AND task_id = ANY($2)")
        .bind(dag_run_id)
        .bind(task_ids)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    if cleared > 0 {
        sqlx::query(
            "UPDATE dag_run SET state = 'queued', end_date = NULL, queued_at = $2 \
             WHERE id = $1 AND state IN ('success', 'failed')",
        )
        .bind(dag_run_id)
        .bind(micros(now))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(cleared)
}

/// Claims up to `limit` queued task instances in one statement. Rows other claimers hold are
/// skipped (`SKIP LOCKED`), so concurrent claims never wait for each other nor share a task.
pub async fn claim(conn: &mut PgConnection, request: &ClaimRequest) -> Result<Vec<ClaimedTask>> {
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
    let sql = format!(
        "WITH picked AS ( \
             SELECT id AS picked_id FROM task_instance WHERE state = 'queued'{filters} \
             ORDER BY priority_weight DESC, id LIMIT $5 FOR UPDATE SKIP LOCKED) \
         UPDATE task_instance SET state = 'running', claim_id = gen_random_uuid()::text, \
             worker_id = $1, hostname = $2, lease_until = $3, start_date = $4, end_date = NULL \
         FROM picked WHERE id = picked.picked_id \
         RETURNING {TI_COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(&request.worker_id)
        .bind(&request.hostname)
        .bind(micros(request.lease_until))
        .bind(micros(request.now))
        .bind(limit)
        .bind(request.dag_run_id)
        .bind(&request.queues)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut tis = tis_from_rows(&rows)?;
    tis.sort_by(|a, b| {
        b.priority_weight
            .cmp(&a.priority_weight)
            .then(a.id.cmp(&b.id))
    });
    let run_ids: Vec<i64> = tis
        .iter()
        .map(|ti| ti.dag_run_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let runs: HashMap<i64, updraft_store::DagRun> = crate::runs::get_many(conn, &run_ids)
        .await?
        .into_iter()
        .map(|run| (run.id, run))
        .collect();
    tis.into_iter()
        .map(|ti| {
            let dag_run = runs.get(&ti.dag_run_id).cloned().ok_or_else(|| {
                updraft_store::StoreError::Corrupt(format!(
                    "task instance {} belongs to no run",
                    ti.id
                ))
            })?;
            let claim_id = ti.claim_id.clone().unwrap_or_default();
            Ok(ClaimedTask {
                ti,
                claim_id,
                dag_run,
            })
        })
        .collect()
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

/// Records finished tries (already checked against the state machine). Returns one result per
/// report and the runs whose task instances changed.
pub async fn finish(
    conn: &mut PgConnection,
    reports: &[FinishReport],
) -> Result<(Vec<TransitionResult>, Vec<i64>)> {
    lock_rows(conn, reports.iter().map(|r| r.ti_id)).await?;
    // Under the rows' locks, and while the claims still hold: a fenced try's tail is refused.
    for chunk in reports.iter().filter_map(FinishReport::log_chunk) {
        match crate::jobs::append_log(conn, &chunk).await {
            // A tail that cannot be placed (see `append_log`) must not keep the state
            // from being recorded; a database error fails the transaction as any would.
            Err(updraft_store::StoreError::Corrupt(message)) => {
                tracing::warn!(ti_id = chunk.ti_id, %message, "log tail not stored");
            }
            other => {
                other?;
            }
        }
    }
    let mut results = vec![TransitionResult::Conflict; reports.len()];
    let mut changed_runs = BTreeSet::new();
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
        let mut applied = HashSet::new();
        for row in &rows {
            applied.insert(col::<i64>(row, 0)?);
            changed_runs.insert(col::<i64>(row, 1)?);
        }
        let (done, missed): (Vec<&FinishReport>, Vec<&FinishReport>) =
            items.iter().partition(|r| applied.contains(&r.ti_id));
        if !done.is_empty() {
            sqlx::query(
                "INSERT INTO task_try (ti_id, try_number, state, hostname, worker_id, \
                 start_date, end_date, infrastructure_failure) \
                 SELECT t.id, t.try_number, t.state, t.hostname, t.worker_id, t.start_date, \
                        t.end_date, b.infra \
                 FROM task_instance t JOIN UNNEST($1::bigint[], $2::bool[]) AS b(id, infra) \
                      ON t.id = b.id \
                 ON CONFLICT (ti_id, try_number) DO UPDATE SET state = excluded.state, \
                 hostname = excluded.hostname, worker_id = excluded.worker_id, \
                 start_date = excluded.start_date, end_date = excluded.end_date, \
                 infrastructure_failure = excluded.infrastructure_failure",
            )
            .bind(done.iter().map(|r| r.ti_id).collect::<Vec<_>>())
            .bind(
                done.iter()
                    .map(|r| r.infrastructure_failure)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
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
            for &i in &round {
                if applied.contains(&reports[i].ti_id) {
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
            changed_runs.extend(reset);
        }
    }
    Ok((results, changed_runs.into_iter().collect()))
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
    Ok(())
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

/// The try number and claim of a task instance, locked until the transaction ends.
pub(crate) async fn lock_claim(
    conn: &mut PgConnection,
    ti_id: i64,
) -> Result<Option<(u32, Option<String>)>> {
    let row =
        sqlx::query("SELECT try_number, claim_id FROM task_instance WHERE id = $1 FOR UPDATE")
            .bind(ti_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    match row {
        Some(row) => Ok(Some((to_u32(col(&row, 0)?)?, col(&row, 1)?))),
        None => Ok(None),
    }
}

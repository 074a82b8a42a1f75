//! Claims of queued task instances by workers, and their leases.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, Transaction};
use updraft_store::{ClaimRequest, ClaimedTask, Result, TaskInstance, TaskState};

use crate::codec::micros;
use crate::db_err;
use crate::runs::get_by_id;
use crate::task_instances::{query_tis, TI_COLUMNS};

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
             hostname = ?5, lease_until = ?6, start_date = COALESCE(start_date, ?7), end_date = NULL \
             WHERE id = ?1 AND try_number = ?2 AND state = 'queued'",
        )
        .map_err(db_err)?;
    let mut runs = HashMap::new();
    let mut claimed = Vec::with_capacity(candidates.len());
    for mut ti in candidates {
        // The claim's instant tells apart the claims of one try (a sensor's pokes).
        let claim_id = format!(
            "{}.{}.{}.{}",
            ti.id,
            ti.try_number,
            micros(request.now),
            request.worker_id
        );
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
        // A rescheduled sensor's try started at its first poke.
        ti.start_date = Some(ti.start_date.unwrap_or(request.now));
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

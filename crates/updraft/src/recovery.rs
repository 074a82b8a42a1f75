//! Process identity and crash recovery for local workers: a worker id names the host, the pid
//! and the pid's start time, so a later process can tell for certain that the worker is dead
//! (a reused pid has another start time) and resolve its tasks at once instead of waiting for
//! the lease to run out.

use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;
use tracing::warn;
use updraft_model::{retry, TaskState};
use updraft_scheduler::DagCache;
use updraft_store::{FinishReport, Store};

pub fn hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `hostname:pid:start-time` of this process.
pub fn worker_id() -> String {
    let pid = std::process::id();
    format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0))
}

/// The start time of a live `pid` in clock ticks since boot (field 22 of `/proc/PID/stat`);
/// `None` for a process that is gone or a zombie (dead, not yet reaped by its parent).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    let mut fields = stat.get(stat.rfind(')')? + 2..)?.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether the local worker `worker_id` is certainly dead: it ran on this host and its
/// process is gone (or the pid now belongs to another process).
fn is_dead_local_worker(worker_id: &str, host: &str) -> bool {
    let mut parts = worker_id.rsplitn(3, ':');
    let (Some(started), Some(pid), Some(worker_host)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if worker_host != host {
        return false;
    }
    let (Ok(pid), Ok(started)) = (pid.parse::<u32>(), started.parse::<u64>()) else {
        return false;
    };
    start_time(pid) != Some(started)
}

/// Kills what is left of the tasks of dead local workers and fails those tries as
/// infrastructure failures (retried at once, without using up the task's retries, up to
/// `MAX_INFRASTRUCTURE_RETRIES`). Returns how many tries were resolved.
pub async fn recover_dead_local_workers(store: &Arc<dyn Store>, dags: &DagCache) -> Result<usize> {
    let host = hostname();
    let now = Utc::now();
    let orphans: Vec<_> = store
        .running_task_instances()
        .await?
        .into_iter()
        .filter(|ti| {
            ti.worker_id
                .as_deref()
                .is_some_and(|w| is_dead_local_worker(w, &host))
        })
        .collect();
    if orphans.is_empty() {
        return Ok(0);
    }
    let claim_ids: Vec<String> = orphans
        .iter()
        .filter_map(|ti| ti.claim_id.clone())
        .collect();
    let killed = updraft_worker::kill_orphans(&claim_ids);
    let mut reports = Vec::new();
    for ti in &orphans {
        let Some(claim_id) = ti.claim_id.clone() else {
            continue;
        };
        let run = store.get_dag_run_by_id(ti.dag_run_id).await?;
        let graph = dags.get(&run.dag_id, run.dag_version).await.ok();
        let (state, next_retry_at) = match graph.as_ref().and_then(|g| g.dag.task(&ti.task_id)) {
            Some(task) => {
                retry::after_infrastructure_failure(task, ti.try_number, ti.infra_failures, now)
            }
            None => (TaskState::Failed, None),
        };
        warn!(dag_id = %ti.dag_id, run_id = %ti.run_id, task_id = %ti.task_id, try_number = ti.try_number, new_state = %state, "task of a dead worker resolved");
        reports.push(FinishReport {
            ti_id: ti.id,
            try_number: ti.try_number,
            claim_id,
            state,
            end_date: now,
            next_retry_at,
            xcom: None,
            infrastructure_failure: true,
        });
    }
    let n = reports.len();
    store.finish(reports).await?;
    if killed > 0 {
        warn!(killed, "killed leftover task processes of a dead worker");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_stale_id_is_dead() {
        let host = hostname();
        assert!(!is_dead_local_worker(&worker_id(), &host));
        let stale = format!("{host}:{}:1", std::process::id());
        assert!(is_dead_local_worker(&stale, &host));
        assert!(
            !is_dead_local_worker("otherhost:1:1", &host),
            "other hosts are left to the lease"
        );
        assert!(!is_dead_local_worker("garbage", &host));
    }
}

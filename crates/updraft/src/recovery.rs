//! Process identity and crash recovery for local workers: a worker id names the host, the pid
//! and the pid's start time, so a later process can tell for certain that the worker is dead
//! (a reused pid has another start time) and resolve its tasks at once instead of waiting for
//! the lease to run out.

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tracing::{info, warn};
use updraft_scheduler::Scheduler;
use updraft_store::{JobKind, Store};

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
pub async fn recover_dead_local_workers(
    store: &Arc<dyn Store>,
    scheduler: &Scheduler,
) -> Result<usize> {
    let host = hostname();
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
    if killed > 0 {
        warn!(killed, "killed leftover task processes of a dead worker");
    }
    // A Docker task's container outlives its `docker run` process: the daemon runs it.
    let containers =
        tokio::task::spawn_blocking(move || updraft_worker::kill_orphan_containers(&claim_ids))
            .await
            .unwrap_or(0);
    if containers > 0 {
        warn!(containers, "killed leftover containers of a dead worker");
    }
    Ok(scheduler
        .fail_lost_tries(&orphans, "its worker died", Utc::now())
        .await?)
}

/// Hands the runs of dead `dags test` processes and dead schedulers on this host over to the
/// live schedulers, and resolves the tries of dead local workers. Run at startup and periodically by `standalone`.
/// Returns whether anything changed.
pub async fn adopt_orphans(store: &Arc<dyn Store>, scheduler: &Scheduler) -> Result<bool> {
    let host = hostname();
    let mut changed = false;
    for run in store.unfinished_dag_runs().await? {
        if let Some(runner) = run
            .runner
            .as_deref()
            .filter(|r| is_dead_local_worker(r, &host))
        {
            warn!(dag_id = %run.dag_id, run_id = %run.run_id, %runner, "adopting the run of a dead process");
            store.release_dag_run(run.id).await?;
            changed = true;
        }
    }
    for job in store.list_jobs(None, DateTime::<Utc>::UNIX_EPOCH).await? {
        if is_dead_local_worker(&job.id, &host) {
            if matches!(job.kind, JobKind::Scheduler | JobKind::Standalone) {
                // Its runs would otherwise wait for its lease to run out.
                info!(scheduler = %job.id, "handing over the runs of a dead scheduler");
                store.release_owned_dag_runs(&job.id).await?;
                changed = true;
            }
            store.end_job(&job.id).await?;
        }
    }
    let recovered = recover_dead_local_workers(store, scheduler).await?;
    Ok(changed || recovered > 0)
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

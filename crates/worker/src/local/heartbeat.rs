//! The heartbeat tasks: renewing the leases of this worker's claims (killing a task whose claim
//! was lost), and recording the worker's own liveness for `worker list` and health checks.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::watch;
use tracing::warn;
use updraft_store::{JobHeartbeat, JobKind};

use super::LocalWorker;

impl LocalWorker {
    /// Renews the leases of running tasks; a task whose claim was lost (cleared, or failed by
    /// a scheduler after a lease expiry) is killed.
    pub(super) async fn heartbeat_loop(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.config.heartbeat_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if *shutdown.borrow() {
                return;
            }
            let mut claims: Vec<String> = match self.running.lock() {
                Ok(r) => r.keys().cloned().collect(),
                Err(_) => continue,
            };
            if let Ok(unreported) = self.unreported.lock() {
                claims.extend(unreported.iter().cloned());
            }
            if claims.is_empty() {
                continue;
            }
            let lease = chrono::Duration::from_std(self.config.lease)
                .unwrap_or(chrono::Duration::seconds(30));
            match self.execution.heartbeat(&claims, Utc::now() + lease).await {
                Ok(lost) => {
                    if let Ok(running) = self.running.lock() {
                        for claim in lost {
                            if let Some(cancel) = running.get(&claim) {
                                warn!(%claim, "claim lost; killing the task");
                                let _ = cancel.send(true);
                            }
                        }
                    }
                }
                Err(e) => warn!(error = %e, "heartbeat failed"),
            }
        }
    }

    /// Records this worker's heartbeat every heartbeat interval: `running`, then `draining`
    /// once shutdown began, and `stopped` when it is over.
    pub(super) async fn announce_loop(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        mut stopped: watch::Receiver<bool>,
    ) {
        loop {
            let state = if *stopped.borrow() {
                "stopped"
            } else if *shutdown.borrow() {
                "draining"
            } else {
                "running"
            };
            let beat = JobHeartbeat {
                id: self.config.worker_id.clone(),
                kind: JobKind::Worker,
                hostname: self.config.hostname.clone(),
                queues: self.config.queues.clone().unwrap_or_default(),
                state: state.to_string(),
                now: Utc::now(),
            };
            if let Err(e) = self.execution.worker_heartbeat(beat).await {
                warn!(error = %e, "worker heartbeat failed");
            }
            if state == "stopped" {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.heartbeat_interval) => {}
                _ = shutdown.changed(), if !*shutdown.borrow() => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

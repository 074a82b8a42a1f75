//! Automatic retention (`database.retention`): `standalone` and schedulers delete the
//! history older than it every `database.retention_interval`, as `db clean --skip-archive
//! --yes` would. In a cluster the oldest live scheduler does it (the earliest start among the
//! `job` records), so the others do not repeat its work; when two believe they are it for a
//! moment (one just started or died), their batches skip each other's locked runs and the
//! second finds nothing left, so double work is harmless.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use updraft_store::{clean_history, CleanRequest, CleanTable, JobKind, Store};

use crate::app::App;
use crate::config::duration;

/// Runs (or rows) per transaction: short transactions next to the scheduler's.
const BATCH_SIZE: u32 = 200;

/// A scheduling process whose heartbeat is older than this no longer counts.
const ALIVE_WITHIN: chrono::Duration = chrono::Duration::seconds(60);

struct Retention {
    store: Arc<dyn Store>,
    keep: Duration,
    every: Duration,
    log_folder: PathBuf,
    /// This process's `job` id.
    process_id: String,
}

/// Starts the retention loop when `database.retention` is set; it ends on `shutdown`.
pub fn start(
    app: &App,
    process_id: String,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>> {
    let c = &app.config.database;
    if c.retention.trim().is_empty() {
        return Ok(None);
    }
    let retention = Retention {
        store: app.store.clone(),
        keep: duration("database.retention", &c.retention)?,
        every: duration("database.retention_interval", &c.retention_interval)?
            .max(Duration::from_secs(1)),
        log_folder: app.config.logging.base_log_folder.clone(),
        process_id,
    };
    info!(retention = %c.retention, every = %c.retention_interval, "automatic retention is on");
    Ok(Some(tokio::spawn(retention.run(shutdown))))
}

impl Retention {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = shutdown.changed() => return,
            }
            if let Err(e) = self.once().await {
                warn!(error = %format!("{e:#}"), "automatic retention failed; trying again later");
            }
        }
    }

    async fn once(&self) -> Result<()> {
        if !self.is_elected().await? {
            debug!("another scheduler applies the retention");
            return Ok(());
        }
        let keep = chrono::Duration::from_std(self.keep)?;
        let request = CleanRequest {
            before: Utc::now() - keep,
            tables: CleanTable::ALL.to_vec(),
            dry_run: false,
            archive: None,
            batch_size: BATCH_SIZE,
            log_folder: Some(self.log_folder.clone()),
        };
        let summary = clean_history(&*self.store, &request).await?;
        if summary.total() > 0 {
            info!(
                before = %request.before,
                rows = summary.total(),
                log_files = summary.log_files,
                "retention deleted old history"
            );
        }
        Ok(())
    }

    /// Whether this process is the oldest live scheduler (or `standalone`).
    async fn is_elected(&self) -> Result<bool> {
        let jobs = self
            .store
            .list_jobs(None, Utc::now() - ALIVE_WITHIN)
            .await?;
        let oldest = jobs
            .iter()
            .filter(|j| matches!(j.kind, JobKind::Scheduler | JobKind::Standalone))
            .min_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(oldest.is_some_and(|j| j.id == self.process_id))
    }
}

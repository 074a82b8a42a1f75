//! The DAG processor: scans the DAG folder and publishes what it found to the store.

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use tracing::info;
use updraft_dagfile::DagFolder;
use updraft_store::{DagSync, DagUpsert, ImportErrorRecord, Store, SyncReport};

pub struct DagProcessor {
    folder: DagFolder,
    store: Arc<dyn Store>,
    paused_at_creation: bool,
}

impl DagProcessor {
    pub fn new(
        folder: std::path::PathBuf,
        store: Arc<dyn Store>,
        paused_at_creation: bool,
    ) -> Self {
        DagProcessor {
            folder: DagFolder::new(folder),
            store,
            paused_at_creation,
        }
    }

    /// Scans the folder (re-reading only changed files) and makes the store match it.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let scan = self.folder.scan().context("cannot scan the DAG folder")?;
        let sync = DagSync {
            dags: scan
                .dags
                .into_iter()
                .map(|d| DagUpsert {
                    dag: d.dag,
                    fileloc: d.fileloc.display().to_string(),
                    content_hash: d.content_hash,
                    source: d.source,
                })
                .collect(),
            import_errors: scan
                .import_errors
                .into_iter()
                .map(|e| ImportErrorRecord {
                    filename: e.filename.display().to_string(),
                    error: e.error,
                })
                .collect(),
            now: Utc::now(),
            paused_at_creation: self.paused_at_creation,
            folder: Some(self.folder.root().display().to_string()),
        };
        let errors = sync.import_errors.len();
        let report = self.store.sync_dags(sync).await?;
        if !report.added.is_empty() || !report.updated.is_empty() || !report.deactivated.is_empty()
        {
            info!(added = ?report.added, updated = ?report.updated, removed = ?report.deactivated, import_errors = errors, "DAG folder synced");
        }
        Ok(report)
    }
}

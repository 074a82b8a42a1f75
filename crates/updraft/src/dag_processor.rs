//! The DAG processor: scans the DAG folder and publishes what it found to the store.
//!
//! What it loaded from each file is recorded in the store with the DAGs, so a new process (a
//! CLI command, a restarted scheduler) parses only the files that changed since.

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use tracing::{debug, info};
use updraft_dagfile::{DagFolder, FileOutcome, FileRecord, PythonParser};
use updraft_store::{
    DagFileOutcome, DagFileRecord, DagSync, DagUpsert, ImportErrorRecord, Store, SyncReport,
};

pub struct DagProcessor {
    /// `None` only while a scan has it (on a blocking thread: Python files take a while).
    folder: Option<DagFolder>,
    root: std::path::PathBuf,
    python: Option<Arc<dyn PythonParser>>,
    store: Arc<dyn Store>,
    paused_at_creation: bool,
}

impl DagProcessor {
    pub fn new(
        folder: std::path::PathBuf,
        store: Arc<dyn Store>,
        paused_at_creation: bool,
        python: Option<Arc<dyn PythonParser>>,
    ) -> Self {
        DagProcessor {
            folder: Some(new_folder(&folder, &python)),
            root: folder,
            python,
            store,
            paused_at_creation,
        }
    }

    /// Scans the folder (re-reading only changed files) and makes the store match it.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let root = self.root.display().to_string();
        let records = self
            .store
            .dag_files(&root)
            .await?
            .into_iter()
            .map(from_store)
            .collect();
        let mut folder = match self.folder.take() {
            Some(folder) => folder,
            // A scan that panicked took the folder with it: start from an empty cache.
            None => new_folder(&self.root, &self.python),
        };
        let (folder, scan) = tokio::task::spawn_blocking(move || {
            let scan = folder.scan_with_records(records);
            (folder, scan)
        })
        .await
        .context("the DAG folder scan panicked")?;
        self.folder = Some(folder);
        let scan = scan.context("cannot scan the DAG folder")?;
        let stats = scan.stats;
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
            folder: Some(root),
            files: Some(scan.files.into_iter().map(to_store).collect()),
        };
        let errors = sync.import_errors.len();
        if let Some(metrics) = updraft_metrics::get() {
            metrics.dag_processing(stats.elapsed, sync.dags.len(), errors);
        }
        let report = self.store.sync_dags(sync).await?;
        debug!(
            files = stats.files,
            unchanged = stats.unchanged,
            read = stats.read,
            parsed = stats.parsed,
            scan_ms = stats.elapsed.as_millis() as u64,
            "DAG folder scanned"
        );
        if !report.added.is_empty() || !report.updated.is_empty() || !report.deactivated.is_empty()
        {
            info!(added = ?report.added, updated = ?report.updated, removed = ?report.deactivated, import_errors = errors, "DAG folder synced");
        }
        Ok(report)
    }
}

fn new_folder(root: &std::path::Path, python: &Option<Arc<dyn PythonParser>>) -> DagFolder {
    match python {
        Some(parser) => DagFolder::with_python(root.to_path_buf(), parser.clone()),
        None => DagFolder::new(root.to_path_buf()),
    }
}

fn from_store(record: DagFileRecord) -> FileRecord {
    FileRecord {
        path: record.fileloc.into(),
        mtime: record.mtime,
        size: record.size,
        content_hash: record.content_hash,
        recorded_at: record.recorded_at,
        parser_version: record.parser_version,
        outcome: match record.outcome {
            DagFileOutcome::Dag(dag_id) => FileOutcome::Dag(dag_id),
            DagFileOutcome::ImportError(error) => FileOutcome::ImportError(error),
        },
    }
}

fn to_store(record: FileRecord) -> DagFileRecord {
    DagFileRecord {
        fileloc: record.path.display().to_string(),
        mtime: record.mtime,
        size: record.size,
        content_hash: record.content_hash,
        recorded_at: record.recorded_at,
        parser_version: record.parser_version,
        outcome: match record.outcome {
            FileOutcome::Dag(dag_id) => DagFileOutcome::Dag(dag_id),
            FileOutcome::ImportError(error) => DagFileOutcome::ImportError(error),
        },
    }
}

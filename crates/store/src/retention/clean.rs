//! A whole clean: table by table, batch by batch, with the log files of deleted tries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{
    statements, ArchiveStamp, CleanBatch, CleanTable, Cleaned, DeletedTry, COUNTED_TABLES,
};
use crate::{log_path, Result, Store};

/// What to clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanRequest {
    /// Rows older than this go.
    pub before: DateTime<Utc>,
    /// In the order given; [`CleanTable::ALL`] for everything.
    pub tables: Vec<CleanTable>,
    /// Count only.
    pub dry_run: bool,
    /// Copy deleted rows into archive tables with this stamp; `None`: `--skip-archive`.
    pub archive: Option<ArchiveStamp>,
    /// Runs (or rows, outside runs) per transaction.
    pub batch_size: u32,
    /// Where the log files of this machine's workers are (`logging.base_log_folder`).
    pub log_folder: Option<PathBuf>,
}

/// What a clean deleted (or, dry, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanSummary {
    /// Rows per table, in the order of [`COUNTED_TABLES`], every table included.
    pub rows: Vec<(String, u64)>,
    pub batches: u64,
    /// Log files removed.
    pub log_files: u64,
    /// Archive tables written into.
    pub archives: Vec<String>,
}

impl CleanSummary {
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, rows: &[(String, u64)]) {
        for (table, n) in rows {
            if let Some(entry) = self.rows.iter_mut().find(|(t, _)| t == table) {
                entry.1 += n;
            }
        }
    }
}

/// Transient failures (a deadlock with a concurrent clear, a busy database) a batch is
/// tried again after.
const ATTEMPTS: u32 = 5;

/// Cleans `request.tables`, one batch (one transaction) at a time, and removes the log files
/// of the tries it deleted. A failed batch changes nothing; what earlier batches deleted
/// stays deleted.
pub async fn clean_history(store: &dyn Store, request: &CleanRequest) -> Result<CleanSummary> {
    let mut summary = CleanSummary {
        rows: COUNTED_TABLES.iter().map(|t| (t.to_string(), 0)).collect(),
        ..CleanSummary::default()
    };
    // A dry run counts each row once: the parts of runs an earlier table (`dag_run` before
    // `xcom`) takes are not left for a later one.
    let mut covered: Vec<String> = Vec::new();
    for &table in &request.tables {
        let before = cutoff(table, request.before);
        if request.dry_run {
            let counted = store.count_cleanable(table, before).await?;
            let fresh: Vec<(String, u64)> = counted
                .into_iter()
                .filter(|(name, _)| !covered.contains(name))
                .collect();
            summary.add(&fresh);
            if table.is_run_part() {
                covered.extend(
                    statements::run_parts(table)
                        .iter()
                        .map(|p| p.counted.into()),
                );
            }
            continue;
        }
        let mut after = 0;
        loop {
            let batch = CleanBatch {
                table,
                before,
                after,
                limit: request.batch_size.max(1),
                archive: request.archive.clone(),
            };
            let cleaned = batch_with_retries(store, batch).await?;
            let Some(last) = cleaned.last else { break };
            after = last;
            summary.batches += 1;
            summary.add(&cleaned.rows);
            for archive in cleaned.archives {
                if !summary.archives.contains(&archive) {
                    summary.archives.push(archive);
                }
            }
            if let Some(folder) = &request.log_folder {
                summary.log_files += remove_log_files(folder, &cleaned.tries).await;
            }
        }
    }
    info!(
        before = %request.before,
        rows = summary.total(),
        batches = summary.batches,
        log_files = summary.log_files,
        dry_run = request.dry_run,
        "history cleaned"
    );
    Ok(summary)
}

/// Records of processes that beat within this are of live processes (or of one that just
/// died): they stay whatever the cutoff, so a cutoff in the future does not make live
/// schedulers and workers vanish from `jobs check` and the health endpoint.
const LIVE_JOB: chrono::Duration = chrono::Duration::minutes(5);

fn cutoff(table: CleanTable, before: DateTime<Utc>) -> DateTime<Utc> {
    match table {
        CleanTable::Job => before.min(Utc::now() - LIVE_JOB),
        _ => before,
    }
}

async fn batch_with_retries(store: &dyn Store, batch: CleanBatch) -> Result<Cleaned> {
    let mut attempt = 1;
    loop {
        match store.clean_batch(batch.clone()).await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                warn!(table = batch.table.name(), error = %e, attempt, "clean batch failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Removes the log files of `tries` under `folder` and the folders they leave empty;
/// answers how many files it removed. A file that is not there (written on another machine,
/// or already gone) is no error.
async fn remove_log_files(folder: &Path, tries: &[DeletedTry]) -> u64 {
    let mut removed = 0;
    for t in tries {
        let path = log_path(
            folder,
            &t.dag_id,
            &t.run_id,
            &t.task_id,
            t.map_index,
            t.try_number,
        );
        match tokio::fs::remove_file(&path).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot remove a log file");
                continue;
            }
        }
        // Up to the DAG's folder; one that still holds something stays.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == folder || tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    removed
}

//! What publishing a DAG folder scan ([`crate::Store::sync_dags`]) writes, decided from what
//! the database holds and what the scan found. The decision is the same for every backend;
//! each backend reads the inputs and carries the plan out in its own SQL.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::path::Path;

use crate::{
    DagFileOutcome, DagFileRecord, DagSync, DagUpsert, ImportErrorRecord, Result, StoreError,
    SyncReport,
};

/// A DAG as the database holds it before the sync: its row and its current version's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDag {
    pub dag_id: String,
    pub is_active: bool,
    pub version: i64,
    pub content_hash: String,
    pub fileloc: String,
}

/// One write of a DAG the scan found.
#[derive(Debug, Clone, Copy)]
pub enum DagWrite<'a> {
    /// The same definition as published: the DAG becomes active again and/or moves to the
    /// file it was found in (`is_active`, `fileloc`, `needs_next_dagrun`).
    Reactivate(&'a DagUpsert),
    /// A changed definition: `version` is added and becomes the DAG's current one.
    NewVersion { upsert: &'a DagUpsert, version: i64 },
    /// A DAG the database does not know: created (paused as `DagSync::paused_at_creation`
    /// says) with `version`: 1, or one past the last version of a DAG of that id deleted
    /// before, so that a DAG id and a version name one definition for ever (every process
    /// caches versions by the two).
    Create { upsert: &'a DagUpsert, version: i64 },
}

/// Everything a sync writes.
#[derive(Debug)]
pub struct SyncPlan<'a> {
    /// In the scan's order.
    pub writes: Vec<DagWrite<'a>>,
    /// DAGs no longer found under the scanned folder: made inactive, `next_dagrun` cleared.
    /// Sorted.
    pub deactivate: Vec<String>,
    /// The existing DAG rows the plan writes, sorted: a backend that locks rows locks them
    /// in this order (the order queueing locks `dag` rows in), so a sync and a queueing
    /// transaction never wait for each other in a cycle.
    pub rows_written: Vec<String>,
    /// The import errors that replace the stored ones, one per file (the last of a file
    /// wins), sorted by file; `None` when they are what is stored.
    pub import_errors: Option<Vec<ImportErrorRecord>>,
    pub report: SyncReport,
}

impl SyncPlan<'_> {
    /// The definitions the plan writes as new versions, with their version numbers: the
    /// store shares them with this process's readers ([`crate::SharedDags::keep`]).
    pub fn versions_written(&self) -> VersionsWritten {
        self.writes
            .iter()
            .filter_map(|write| match *write {
                DagWrite::Reactivate(_) => None,
                DagWrite::NewVersion { upsert, version } => Some((upsert.dag.clone(), version)),
                DagWrite::Create { upsert, version } => Some((upsert.dag.clone(), version)),
            })
            .collect()
    }
}

/// New versions and their numbers, as a sync wrote them.
pub type VersionsWritten = Vec<(std::sync::Arc<updraft_model::Dag>, i64)>;

impl SyncPlan<'_> {
    /// Whether the sync changes anything watchers see (DAGs or import errors).
    pub fn changes_anything(&self) -> bool {
        self.import_errors.is_some() || self.report != SyncReport::default()
    }
}

/// The DAGs `sync` brings that the database does not know (`existing`): the only ones whose
/// deleted versions [`plan_sync`] needs, so that a scan that creates nothing reads none.
pub fn unknown_dag_ids<'a>(sync: &'a DagSync, existing: &[PublishedDag]) -> Vec<&'a str> {
    let known: std::collections::HashSet<&str> =
        existing.iter().map(|d| d.dag_id.as_str()).collect();
    sync.dags
        .iter()
        .map(|upsert| upsert.dag.dag_id.as_str())
        .filter(|dag_id| !known.contains(dag_id))
        .collect()
}

/// Decides what makes the database (`existing` DAGs, `stored_errors` sorted by file, the last
/// version of each DAG `deleted` before, at least of those [`unknown_dag_ids`] names) match
/// `sync`.
pub fn plan_sync<'a>(
    sync: &'a DagSync,
    existing: &[PublishedDag],
    stored_errors: &[ImportErrorRecord],
    deleted: &HashMap<String, i64>,
) -> SyncPlan<'a> {
    let by_id: HashMap<&str, &PublishedDag> =
        existing.iter().map(|d| (d.dag_id.as_str(), d)).collect();
    let mut report = SyncReport::default();
    let mut writes = Vec::with_capacity(sync.dags.len());
    for upsert in &sync.dags {
        let dag_id = &upsert.dag.dag_id;
        match by_id.get(dag_id.as_str()) {
            Some(published) if published.content_hash == upsert.content_hash => {
                if !published.is_active || published.fileloc != upsert.fileloc {
                    writes.push(DagWrite::Reactivate(upsert));
                    report.updated.push(dag_id.clone());
                }
            }
            Some(published) => {
                writes.push(DagWrite::NewVersion {
                    upsert,
                    version: published.version + 1,
                });
                report.updated.push(dag_id.clone());
            }
            None => {
                let version = deleted.get(dag_id).map_or(1, |last| last + 1);
                writes.push(DagWrite::Create { upsert, version });
                report.added.push(dag_id.clone());
            }
        }
    }
    // The DAGs of unchanged files stay as they are.
    let seen: HashSet<&str> = sync
        .dags
        .iter()
        .map(|u| u.dag.dag_id.as_str())
        .chain(kept_dags(sync))
        .collect();
    let mut deactivate: Vec<String> = existing
        .iter()
        .filter(|d| {
            d.is_active
                && !seen.contains(d.dag_id.as_str())
                && under(sync.folder.as_deref(), &d.fileloc)
        })
        .map(|d| d.dag_id.clone())
        .collect();
    deactivate.sort();
    report.deactivated = deactivate.clone();
    let mut rows_written: Vec<String> = writes
        .iter()
        .filter_map(|w| match w {
            DagWrite::Reactivate(upsert) | DagWrite::NewVersion { upsert, .. } => {
                Some(upsert.dag.dag_id.clone())
            }
            DagWrite::Create { .. } => None,
        })
        .chain(deactivate.iter().cloned())
        .collect();
    rows_written.sort_unstable();
    rows_written.dedup();
    report.added.sort();
    report.updated.sort();
    SyncPlan {
        writes,
        deactivate,
        rows_written,
        import_errors: replaced_import_errors(&sync.import_errors, stored_errors),
        report,
    }
}

/// The import errors to store instead of `stored` (sorted by file), or `None` if `scanned`
/// are the same.
fn replaced_import_errors(
    scanned: &[ImportErrorRecord],
    stored: &[ImportErrorRecord],
) -> Option<Vec<ImportErrorRecord>> {
    let mut wanted = scanned.to_vec();
    wanted.sort_by(|a, b| a.filename.cmp(&b.filename));
    if wanted == stored {
        return None;
    }
    // One error per file, the last one scanned, as a primary key on the file keeps it.
    let mut latest: HashMap<&str, &ImportErrorRecord> = HashMap::new();
    for e in scanned {
        latest.insert(&e.filename, e);
    }
    let mut errors: Vec<ImportErrorRecord> = latest.into_values().cloned().collect();
    errors.sort_by(|a, b| a.filename.cmp(&b.filename));
    Some(errors)
}

/// The dag_ids of the files recorded with a DAG: their DAGs are kept active.
fn kept_dags(sync: &DagSync) -> impl Iterator<Item = &str> {
    sync.files
        .iter()
        .flatten()
        .filter_map(|f| match &f.outcome {
            DagFileOutcome::Dag(dag_id) => Some(dag_id.as_str()),
            DagFileOutcome::ImportError(_) => None,
        })
}

/// Whether `fileloc` lies under `folder` (`None`: any folder).
pub fn under(folder: Option<&str>, fileloc: &str) -> bool {
    folder.is_none_or(|folder| Path::new(fileloc).starts_with(folder))
}

impl DagUpsert {
    /// The definition as stored in `dag_version`.
    pub fn definition_json(&self) -> Result<String> {
        serde_json::to_string(&self.dag)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize DAG: {e}")))
    }

    /// The DAG's tags as stored in `dag.tags`.
    pub fn tags_json(&self) -> String {
        serde_json::to_string(&self.dag.tags).unwrap_or_else(|_| "[]".into())
    }

    /// Whether the DAG runs on a schedule (`dag.has_schedule`).
    pub fn has_schedule(&self) -> bool {
        self.dag.schedule != updraft_model::Schedule::None
    }
}

/// The file records to write and to delete so that the records under a folder become
/// `files` (see [`DagSync::files`]).
#[derive(Debug, PartialEq, Eq)]
pub struct FileRecordPlan<'a> {
    /// New or changed records, in `files`' order.
    pub upsert: Vec<&'a DagFileRecord>,
    /// Records of files no longer found, sorted.
    pub delete: Vec<String>,
}

/// Plans the writes of file records, from the records stored under the folder (`None`: a
/// record that cannot be decoded, rewritten or deleted like a changed one).
pub fn plan_file_records(
    mut stored: HashMap<String, Option<DagFileRecord>>,
    files: &[DagFileRecord],
) -> FileRecordPlan<'_> {
    let upsert = files
        .iter()
        .filter(|file| stored.remove(&file.fileloc).flatten().as_ref() != Some(*file))
        .collect();
    let mut delete: Vec<String> = stored.into_keys().collect();
    delete.sort();
    FileRecordPlan { upsert, delete }
}

/// A stored file record that cannot be decoded (only a manual edit could make one) is a stale
/// cache entry: left out, so its file is parsed again and the record rewritten.
pub fn readable_file_record<E: Display>(
    fileloc: &str,
    decoded: std::result::Result<DagFileRecord, E>,
) -> Option<DagFileRecord> {
    decoded
        .inspect_err(
            |error| tracing::warn!(fileloc, %error, "ignoring an unreadable dag_file record"),
        )
        .ok()
}

#[cfg(test)]
mod tests;

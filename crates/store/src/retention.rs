//! Deleting old history (`updraft db clean`, `database.retention`), as Airflow's `db clean`:
//! which tables, which of their rows are old enough, and the batches that delete them.
//!
//! The rows of a run (task instances, their tries and log chunks, XComs) are as old as the
//! run: only finished runs that started before the cutoff and whose task instances are all
//! finished are touched, and the latest run of each DAG of each non-manual run type is kept,
//! so scheduling carries on from it. Each batch is one short transaction that deletes a few
//! runs and everything of them together, so no other process ever sees half a run.

mod clean;
pub mod statements;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Result;

pub use clean::{clean_history, CleanRequest, CleanSummary};

/// A table `db clean` cleans, by the name Airflow users know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CleanTable {
    /// Finished runs, with everything of them.
    DagRun,
    /// The task instances of finished runs, with their tries, log chunks and XComs.
    TaskInstance,
    /// The tries of finished runs' task instances (our `task_try`) and their log chunks.
    TaskInstanceHistory,
    /// The XComs of finished runs.
    Xcom,
    /// The audit log (our `event_log`).
    Log,
    /// Heartbeat records of processes (`job`).
    Job,
    /// Asset events.
    AssetEvent,
    /// Notifications delivered or given up (never pending ones).
    Notification,
}

impl CleanTable {
    /// Every table, in the order a clean goes through them (a run before its parts, so that
    /// cleaning everything deletes whole runs).
    pub const ALL: [CleanTable; 8] = [
        CleanTable::DagRun,
        CleanTable::TaskInstance,
        CleanTable::TaskInstanceHistory,
        CleanTable::Xcom,
        CleanTable::Log,
        CleanTable::Job,
        CleanTable::AssetEvent,
        CleanTable::Notification,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CleanTable::DagRun => "dag_run",
            CleanTable::TaskInstance => "task_instance",
            CleanTable::TaskInstanceHistory => "task_instance_history",
            CleanTable::Xcom => "xcom",
            CleanTable::Log => "log",
            CleanTable::Job => "job",
            CleanTable::AssetEvent => "asset_event",
            CleanTable::Notification => "notification",
        }
    }

    /// The table named `name`; Airflow 2's `dataset_event` is `asset_event`.
    pub fn from_name(name: &str) -> Option<CleanTable> {
        let name = if name == "dataset_event" {
            "asset_event"
        } else {
            name
        };
        CleanTable::ALL.into_iter().find(|t| t.name() == name)
    }

    /// What decides a row's age, as `db clean --dry-run` shows it.
    pub fn recency_column(self) -> &'static str {
        match self {
            CleanTable::DagRun
            | CleanTable::TaskInstance
            | CleanTable::TaskInstanceHistory
            | CleanTable::Xcom => "dag_run.start_date",
            CleanTable::Log => "dttm",
            CleanTable::Job => "latest_heartbeat",
            CleanTable::AssetEvent => "timestamp",
            CleanTable::Notification => "created_at",
        }
    }

    /// The names its rows are counted under ([`COUNTED_TABLES`]): a run's parts for the
    /// tables of runs, its own name otherwise.
    pub fn counted(self) -> Vec<&'static str> {
        match statements::standalone(self) {
            Some(st) => vec![st.counted],
            None => statements::run_parts(self)
                .iter()
                .map(|part| part.counted)
                .collect(),
        }
    }

    /// Whether rows belong to runs (and so go only with finished, old runs).
    pub fn is_run_part(self) -> bool {
        matches!(
            self,
            CleanTable::DagRun
                | CleanTable::TaskInstance
                | CleanTable::TaskInstanceHistory
                | CleanTable::Xcom
        )
    }
}

/// The names under which deleted rows are counted and archived: the tables of
/// [`CleanTable`], and `task_log`, the log chunks remote workers shipped.
pub const COUNTED_TABLES: [&str; 9] = [
    "dag_run",
    "task_instance",
    "task_instance_history",
    "task_log",
    "xcom",
    "log",
    "job",
    "asset_event",
    "notification",
];

/// When a clean started, as the suffix of its archive tables
/// (`_updraft_deleted__<table>__<YYYYMMDDHHMMSS>`, as Airflow's `_airflow_deleted__…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveStamp(String);

impl ArchiveStamp {
    pub fn new(now: DateTime<Utc>) -> ArchiveStamp {
        ArchiveStamp(now.format("%Y%m%d%H%M%S").to_string())
    }

    /// The archive table of `table` (one of [`COUNTED_TABLES`]). Only digits and fixed
    /// names go into it, so it is safe to write into SQL.
    pub fn table(&self, table: &str) -> String {
        format!("{ARCHIVE_PREFIX}{table}__{}", self.0)
    }
}

/// What every archive table's name starts with.
pub const ARCHIVE_PREFIX: &str = "_updraft_deleted__";

/// Whether `name` is an archive table `db clean` made: the prefix, then only lowercase
/// letters, digits and `_` (so it is safe to write into SQL).
pub fn is_archive_table(name: &str) -> bool {
    name.strip_prefix(ARCHIVE_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The table whose rows an archive table holds (`dag_run` of
/// `_updraft_deleted__dag_run__20260101000000`).
pub fn archived_table(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(ARCHIVE_PREFIX)?;
    rest.rsplit_once("__").map(|(table, _)| table)
}

/// One batch of a clean: up to `limit` runs (or rows, for tables outside runs) of `table`
/// older than `before`, whose key is above `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanBatch {
    pub table: CleanTable,
    pub before: DateTime<Utc>,
    /// The largest key a previous batch of this clean took; `0` for the first batch. Keys
    /// only grow, so a clean goes through a table once even if new rows become old meanwhile.
    pub after: i64,
    pub limit: u32,
    /// Copy what is deleted into archive tables first (in the same transaction).
    pub archive: Option<ArchiveStamp>,
}

/// What one batch deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Rows deleted per table of [`COUNTED_TABLES`] (tables without deletions left out).
    pub rows: Vec<(String, u64)>,
    /// The largest key the batch took; `None` when there was nothing left to take.
    pub last: Option<i64>,
    /// The runs whose rows were deleted (or that were deleted).
    pub runs: Vec<i64>,
    /// The tries whose records are gone, so their log files go too.
    pub tries: Vec<DeletedTry>,
    /// Archive tables the batch wrote into.
    pub archives: Vec<String>,
}

/// A try whose history is gone: where its log file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedTry {
    pub dag_id: String,
    pub run_id: String,
    pub task_id: String,
    pub map_index: i64,
    pub try_number: u32,
}

/// Deleting old history, one short transaction per batch.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// The rows cleaning `table` before `before` would delete now, per table of
    /// [`COUNTED_TABLES`] (a run's task instances count under `task_instance`, and so on),
    /// tables without rows left out. Changes nothing (`db clean --dry-run`).
    async fn count_cleanable(
        &self,
        table: CleanTable,
        before: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>>;
    /// Deletes one batch in one transaction. A run is taken only if it is finished, started
    /// before `before`, all its task instances are finished, and it is not the latest run of
    /// its DAG and run type (manual runs excepted); it is re-checked under lock, so a run a
    /// user clears at the same moment is either cleared or deleted, never half of each.
    async fn clean_batch(&self, batch: CleanBatch) -> Result<Cleaned>;
    /// The archive tables cleans made ([`is_archive_table`]), sorted by name.
    async fn archive_tables(&self) -> Result<Vec<String>>;
    /// Drops one archive table (`db drop-archived`); a name that is not an archive table is
    /// refused as [`StoreError::NotFound`](crate::StoreError::NotFound).
    async fn drop_archive_table(&self, name: &str) -> Result<()>;
}

/// The tries of `(dag_id, run_id, task_id, map_index, try_number)` rows: with `whole`, every
/// try up to `try_number` (a task instance that goes with all its tries), else that one.
pub fn tries_of(rows: Vec<(String, String, String, i64, i64)>, whole: bool) -> Vec<DeletedTry> {
    let mut tries = Vec::new();
    for (dag_id, run_id, task_id, map_index, try_number) in rows {
        let last = u32::try_from(try_number).unwrap_or(0);
        let first = if whole { 1 } else { last };
        for try_number in first.max(1)..=last {
            tries.push(DeletedTry {
                dag_id: dag_id.clone(),
                run_id: run_id.clone(),
                task_id: task_id.clone(),
                map_index,
                try_number,
            });
        }
    }
    tries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_table_names() {
        let stamp = ArchiveStamp::new(
            DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        );
        let name = stamp.table("task_instance_history");
        assert_eq!(
            name,
            "_updraft_deleted__task_instance_history__20260102030405"
        );
        assert!(is_archive_table(&name));
        assert_eq!(archived_table(&name), Some("task_instance_history"));
        for not in [
            "dag_run",
            "_updraft_deleted__",
            "_updraft_deleted__x\"; DROP TABLE dag",
            "_updraft_deleted__Dag",
        ] {
            assert!(!is_archive_table(not), "{not}");
        }
    }
}

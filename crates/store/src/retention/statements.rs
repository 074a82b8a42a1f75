//! The statements of a clean, the same on both backends (instants are integer microseconds
//! on both, parameters `$1` the cutoff, `$2` the key to start after, `$3` the batch size, in
//! that order of appearance, as SQLite numbers named parameters), as
//! [`RUNNING_TASK_OF_DAG`](crate::RUNNING_TASK_OF_DAG) is: a backend adds only its locking.

use super::CleanTable;

/// A finished run `r` older than `$1` that may go: all its task instances finished, and not
/// the latest run of its DAG and run type (Airflow keeps the latest non-manual run of each
/// DAG so that scheduling carries on from it; keeping one per type keeps the newest
/// scheduled run, which catch-up starts from, even when a backfill ran later).
const REMOVABLE_RUN: &str = "r.state IN ('success', 'failed') \
    AND COALESCE(r.start_date, r.queued_at) < $1 \
    AND NOT EXISTS (SELECT 1 FROM task_instance u WHERE u.dag_run_id = r.id \
        AND u.state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed')) \
    AND (r.run_type = 'manual' OR r.logical_date < (SELECT MAX(l.logical_date) \
        FROM dag_run l WHERE l.dag_id = r.dag_id AND l.run_type = r.run_type))";

/// What of a run a table takes: a run is picked only while it still has some.
fn still_has(table: CleanTable) -> &'static str {
    match table {
        CleanTable::TaskInstance => {
            " AND EXISTS (SELECT 1 FROM task_instance t WHERE t.dag_run_id = r.id)"
        }
        CleanTable::TaskInstanceHistory => {
            " AND (EXISTS (SELECT 1 FROM task_try y JOIN task_instance t ON t.id = y.ti_id \
                WHERE t.dag_run_id = r.id) \
              OR EXISTS (SELECT 1 FROM task_log g JOIN task_instance t ON t.id = g.ti_id \
                WHERE t.dag_run_id = r.id))"
        }
        CleanTable::Xcom => " AND EXISTS (SELECT 1 FROM xcom x WHERE x.dag_run_id = r.id)",
        _ => "",
    }
}

/// The ids of every run `table` would take now (uses `$1` only).
pub fn removable_runs(table: CleanTable) -> String {
    format!(
        "SELECT r.id FROM dag_run r WHERE {REMOVABLE_RUN}{}",
        still_has(table)
    )
}

/// The next batch of runs: `$2` the id to start after, `$3` how many. A backend that runs
/// transactions side by side locks them (PostgreSQL appends `FOR UPDATE OF r SKIP LOCKED`).
pub fn next_runs(table: CleanTable) -> String {
    format!(
        "SELECT r.id FROM dag_run r WHERE {REMOVABLE_RUN}{} AND r.id > $2 ORDER BY r.id LIMIT $3",
        still_has(table)
    )
}

/// Rows of one table that go with some runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPart {
    /// The name the rows are counted and archived under ([`super::COUNTED_TABLES`]).
    pub counted: &'static str,
    /// The table they are in.
    pub source: &'static str,
    /// Which rows, with `{runs}` where a list (or a query) of run ids goes.
    pub rows: &'static str,
}

const TIS_OF_RUNS: &str = "ti_id IN (SELECT id FROM task_instance WHERE dag_run_id IN ({runs}))";

const RUN_PARTS: [RunPart; 5] = [
    RunPart {
        counted: "task_log",
        source: "task_log",
        rows: TIS_OF_RUNS,
    },
    RunPart {
        counted: "task_instance_history",
        source: "task_try",
        rows: TIS_OF_RUNS,
    },
    RunPart {
        counted: "xcom",
        source: "xcom",
        rows: "dag_run_id IN ({runs})",
    },
    RunPart {
        counted: "task_instance",
        source: "task_instance",
        rows: "dag_run_id IN ({runs})",
    },
    RunPart {
        counted: "dag_run",
        source: "dag_run",
        rows: "id IN ({runs})",
    },
];

/// The rows cleaning `table` deletes for some runs, children before parents.
pub fn run_parts(table: CleanTable) -> &'static [RunPart] {
    match table {
        CleanTable::DagRun => &RUN_PARTS,
        CleanTable::TaskInstance => &RUN_PARTS[..4],
        CleanTable::TaskInstanceHistory => &RUN_PARTS[..2],
        CleanTable::Xcom => &RUN_PARTS[2..3],
        _ => &[],
    }
}

/// The tries whose log files go when `table` is cleaned for `{runs}`: `(dag_id, run_id,
/// task_id, map_index, try_number)` and whether that is the last of the task instance's
/// tries (all before it go too) rather than one try.
pub fn deleted_tries(table: CleanTable) -> Option<(&'static str, bool)> {
    match table {
        CleanTable::DagRun | CleanTable::TaskInstance => Some((
            "SELECT dag_id, run_id, task_id, map_index, try_number FROM task_instance \
             WHERE dag_run_id IN ({runs})",
            true,
        )),
        CleanTable::TaskInstanceHistory => Some((
            "SELECT t.dag_id, t.run_id, t.task_id, t.map_index, y.try_number \
             FROM task_try y JOIN task_instance t ON t.id = y.ti_id \
             WHERE t.dag_run_id IN ({runs})",
            false,
        )),
        _ => None,
    }
}

/// A table outside runs: rows older than `$1` go, by an integer `key` when it has one (in
/// batches), else all at once (the few rows of `job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standalone {
    pub counted: &'static str,
    pub source: &'static str,
    pub key: Option<&'static str>,
    pub old: &'static str,
}

pub fn standalone(table: CleanTable) -> Option<Standalone> {
    let (counted, source, key, old) = match table {
        CleanTable::Log => ("log", "event_log", Some("id"), "dttm < $1"),
        CleanTable::Job => ("job", "job", None, "latest_heartbeat < $1"),
        CleanTable::AssetEvent => ("asset_event", "asset_event", Some("id"), "timestamp < $1"),
        CleanTable::Notification => (
            "notification",
            "notification",
            Some("id"),
            "state IN ('delivered', 'failed') AND created_at < $1",
        ),
        _ => return None,
    };
    Some(Standalone {
        counted,
        source,
        key,
        old,
    })
}

impl Standalone {
    /// The next batch of keys (`$2` to start after, `$3` how many); `None` without a key.
    pub fn next_keys(&self) -> Option<String> {
        let key = self.key?;
        Some(format!(
            "SELECT {key} FROM {} WHERE {} AND {key} > $2 ORDER BY {key} LIMIT $3",
            self.source, self.old
        ))
    }

    /// Which rows a batch deletes: those of `keys`, or every old row without a key.
    pub fn rows(&self, keys: &[i64]) -> String {
        match self.key {
            Some(key) => format!("{key} IN ({})", id_list(keys)),
            None => self.old.to_string(),
        }
    }
}

/// `rows` of `source` counted (a dry run).
pub fn count(source: &str, rows: &str) -> String {
    format!("SELECT COUNT(*) FROM {source} WHERE {rows}")
}

/// Creates `archive` empty, with the columns of `source`, unless it exists.
pub fn create_archive(archive: &str, source: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS {archive} AS SELECT * FROM {source} WHERE 1 = 0")
}

pub fn copy_to_archive(archive: &str, source: &str, rows: &str) -> String {
    format!("INSERT INTO {archive} SELECT * FROM {source} WHERE {rows}")
}

pub fn delete(source: &str, rows: &str) -> String {
    format!("DELETE FROM {source} WHERE {rows}")
}

/// Ids for an `IN (…)`: integers the database gave, so they are safe to write into SQL.
pub fn id_list(ids: &[i64]) -> String {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    list.join(", ")
}

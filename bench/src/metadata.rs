//! Reading timestamps back from the metadata database (SQLite or PostgreSQL), behind a trait
//! the workloads use.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::updraft::Home;

/// The metadata database the workloads run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    /// The default: `$UPDRAFT_HOME/updraft.db`, one `updraft standalone`.
    Sqlite,
    /// A fresh database per repetition on `--postgres-url`, and a cluster of `--schedulers`
    /// schedulers, one API server and one remote worker.
    Postgres,
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite => f.write_str("SQLite"),
            Database::Postgres => f.write_str("PostgreSQL"),
        }
    }
}

impl Database {
    /// A read-only view of the metadata of `home`.
    pub fn open(self, home: &Home) -> Result<Box<dyn Metadata>> {
        match self {
            Database::Sqlite => Ok(Box::new(SqliteMetadata::open(home)?)),
            Database::Postgres => Ok(Box::new(PostgresMetadata::open(home)?)),
        }
    }
}

/// A DAG run, instants in microseconds since the Unix epoch.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: i64,
    pub state: String,
    pub queued_at: i64,
    pub end_date: Option<i64>,
}

/// A task instance of a run.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub task_id: String,
    pub state: String,
    pub start_date: Option<i64>,
    pub end_date: Option<i64>,
}

/// A scheduled run (W10): when its tick was, when it and its first task started.
#[derive(Debug, Clone)]
pub struct ScheduledRun {
    pub dag_id: String,
    pub state: String,
    /// The tick: the end of its data interval.
    pub data_interval_end: i64,
    pub start_date: Option<i64>,
    /// The earliest start of its task instances.
    pub first_task_start: Option<i64>,
    pub tasks_success: i64,
}

/// Scheduled runs whose tick is in a range, with their first task's start; the same SQL on
/// both databases (`?1`/`?2` are rewritten for PostgreSQL).
const SCHEDULED_RUNS: &str = "SELECT r.dag_id, r.state, r.data_interval_end, r.start_date, \
     (SELECT min(t.start_date) FROM task_instance t WHERE t.dag_run_id = r.id), \
     (SELECT count(*) FROM task_instance t WHERE t.dag_run_id = r.id AND t.state = 'success') \
     FROM dag_run r WHERE r.run_type = 'scheduled' \
     AND r.data_interval_end >= ?1 AND r.data_interval_end <= ?2 \
     ORDER BY r.data_interval_end, r.dag_id";

/// What the workloads read from the metadata.
pub trait Metadata {
    /// DAGs whose file is present (what `dags list` shows).
    fn active_dag_count(&self) -> Result<usize>;
    fn run(&self, dag_id: &str, run_id: &str) -> Result<RunRecord>;
    fn task_instances(&self, run: &RunRecord) -> Result<Vec<TaskRecord>>;
    /// The run's XCom `return_value`s as `(task id, JSON text)`, in task id order.
    fn return_values(&self, run: &RunRecord) -> Result<Vec<(String, String)>>;
    /// How many of these runs are not finished yet.
    fn unfinished_runs(&self, dag_id: &str) -> Result<usize>;
    /// Scheduled runs of every DAG whose tick (data interval end) is in `[from, to]`, in tick
    /// and DAG order.
    fn scheduled_runs(&self, from: i64, to: i64) -> Result<Vec<ScheduledRun>>;
}

/// The SQLite file, opened read-only next to the running standalone (WAL readers do not block
/// the writer).
pub struct SqliteMetadata {
    conn: Connection,
}

impl SqliteMetadata {
    fn open(home: &Home) -> Result<SqliteMetadata> {
        let path = home.sqlite_path();
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("cannot open {} read-only", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(SqliteMetadata { conn })
    }
}

impl Metadata for SqliteMetadata {
    fn active_dag_count(&self) -> Result<usize> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM dag WHERE is_active = 1", [], |r| {
                r.get(0)
            })
            .context("cannot count DAGs")?;
        Ok(count as usize)
    }

    fn run(&self, dag_id: &str, run_id: &str) -> Result<RunRecord> {
        let run = self
            .conn
            .query_row(
                "SELECT id, state, queued_at, end_date FROM dag_run WHERE dag_id = ?1 AND run_id = ?2",
                [dag_id, run_id],
                |r| {
                    Ok(RunRecord {
                        id: r.get(0)?,
                        state: r.get(1)?,
                        queued_at: r.get(2)?,
                        end_date: r.get(3)?,
                    })
                },
            )
            .optional()
            .context("cannot read dag_run")?;
        match run {
            Some(run) => Ok(run),
            None => bail!("no run {run_id} of {dag_id} in the metadata"),
        }
    }

    fn task_instances(&self, run: &RunRecord) -> Result<Vec<TaskRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT task_id, state, start_date, end_date FROM task_instance \
             WHERE dag_run_id = ?1 ORDER BY task_id",
        )?;
        let rows = stmt.query_map([run.id], |r| {
            Ok(TaskRecord {
                task_id: r.get(0)?,
                state: r.get(1)?,
                start_date: r.get(2)?,
                end_date: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read task_instance")
    }

    fn return_values(&self, run: &RunRecord) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT task_id, value FROM xcom \
             WHERE dag_run_id = ?1 AND key = 'return_value' ORDER BY task_id",
        )?;
        let rows = stmt.query_map([run.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read xcom")
    }

    fn unfinished_runs(&self, dag_id: &str) -> Result<usize> {
        let count: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM dag_run WHERE dag_id = ?1 AND state IN ('queued', 'running')",
                [dag_id],
                |r| r.get(0),
            )
            .context("cannot count unfinished runs")?;
        Ok(count as usize)
    }

    fn scheduled_runs(&self, from: i64, to: i64) -> Result<Vec<ScheduledRun>> {
        let mut stmt = self.conn.prepare_cached(SCHEDULED_RUNS)?;
        let rows = stmt.query_map([from, to], |r| {
            Ok(ScheduledRun {
                dag_id: r.get(0)?,
                state: r.get(1)?,
                data_interval_end: r.get(2)?,
                start_date: r.get(3)?,
                first_task_start: r.get(4)?,
                tasks_success: r.get(5)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .context("cannot read the scheduled runs")
    }
}

/// The fresh PostgreSQL database of a repetition, through one synchronous connection. The
/// schema is the same as SQLite's: instants are BIGINT microseconds, flags are BOOLEAN.
pub struct PostgresMetadata {
    client: RefCell<postgres::Client>,
}

impl PostgresMetadata {
    pub fn open(home: &Home) -> Result<PostgresMetadata> {
        let url = home
            .postgres_url()
            .context("this home has no PostgreSQL database")?;
        Ok(PostgresMetadata {
            client: RefCell::new(crate::postgres::connect(url)?),
        })
    }

    fn count(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<usize> {
        let row = self.client.borrow_mut().query_one(sql, params)?;
        let count: i64 = row.try_get(0)?;
        Ok(count as usize)
    }

    /// Processes of `kind` (`scheduler`, `worker`, `api-server`) that beat in the `job` table
    /// and have not stopped. The database is fresh, so every row is of this cluster.
    pub fn live_jobs(&self, kind: &str) -> Result<usize> {
        self.count(
            "SELECT count(*) FROM job WHERE kind = $1 AND state <> 'stopped'",
            &[&kind],
        )
        .with_context(|| format!("cannot count {kind} jobs"))
    }
}

impl Metadata for PostgresMetadata {
    fn active_dag_count(&self) -> Result<usize> {
        // Before the first process has migrated the fresh database there is no table yet.
        let exists = self
            .count(
                "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'dag'",
                &[],
            )
            .context("cannot look for the dag table")?;
        if exists == 0 {
            return Ok(0);
        }
        self.count("SELECT count(*) FROM dag WHERE is_active", &[])
            .context("cannot count DAGs")
    }

    fn run(&self, dag_id: &str, run_id: &str) -> Result<RunRecord> {
        let row = self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT id, state, queued_at, end_date FROM dag_run WHERE dag_id = $1 AND run_id = $2",
                &[&dag_id, &run_id],
            )
            .context("cannot read dag_run")?;
        match row {
            Some(r) => Ok(RunRecord {
                id: r.try_get(0)?,
                state: r.try_get(1)?,
                queued_at: r.try_get(2)?,
                end_date: r.try_get(3)?,
            }),
            None => bail!("no run {run_id} of {dag_id} in the metadata"),
        }
    }

    fn task_instances(&self, run: &RunRecord) -> Result<Vec<TaskRecord>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT task_id, state, start_date, end_date FROM task_instance \
                 WHERE dag_run_id = $1 ORDER BY task_id",
                &[&run.id],
            )
            .context("cannot read task_instance")?;
        rows.iter()
            .map(|r| {
                Ok(TaskRecord {
                    task_id: r.try_get(0)?,
                    state: r.try_get(1)?,
                    start_date: r.try_get(2)?,
                    end_date: r.try_get(3)?,
                })
            })
            .collect()
    }

    fn return_values(&self, run: &RunRecord) -> Result<Vec<(String, String)>> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT task_id, value FROM xcom \
                 WHERE dag_run_id = $1 AND key = 'return_value' ORDER BY task_id",
                &[&run.id],
            )
            .context("cannot read xcom")?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn unfinished_runs(&self, dag_id: &str) -> Result<usize> {
        self.count(
            "SELECT count(*) FROM dag_run WHERE dag_id = $1 AND state IN ('queued', 'running')",
            &[&dag_id],
        )
        .context("cannot count unfinished runs")
    }

    fn scheduled_runs(&self, from: i64, to: i64) -> Result<Vec<ScheduledRun>> {
        let sql = SCHEDULED_RUNS.replace("?1", "$1").replace("?2", "$2");
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &[&from, &to])
            .context("cannot read the scheduled runs")?;
        rows.iter()
            .map(|r| {
                Ok(ScheduledRun {
                    dag_id: r.try_get(0)?,
                    state: r.try_get(1)?,
                    data_interval_end: r.try_get(2)?,
                    start_date: r.try_get(3)?,
                    first_task_start: r.try_get(4)?,
                    tasks_success: r.try_get(5)?,
                })
            })
            .collect()
    }
}

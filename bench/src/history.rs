//! The W11 history: a database that already holds many finished runs and task instances.
//!
//! updraft cannot make 100,000 runs quickly through its CLI (each trigger is a process and a
//! commit, each task a process), and the workloads that need the history measure reads, not
//! how it was made. So the harness writes the rows itself, straight into the tables, after
//! updraft has migrated the database and registered the DAGs (it knows the schema of
//! `dag_run` and `task_instance` for this one purpose): one transaction of prepared inserts on
//! SQLite, `COPY` on PostgreSQL. The rows are what updraft itself writes for a finished run:
//! every task instance tried once, with its times; one run in 50 failed (its last task).
//! Tries (`task_try`) and logs are not written: the measured reads do not show them.
//!
//! W14 (the UI) asks for states as a UI shows them ([`History::varied_states`]): a failed run
//! fails in its middle task and the tasks after it are `upstream_failed` (never started), and
//! one run in 7 skipped its last task; and for one more DAG ([`History::wide`]), `ui_grid`,
//! whose grid is 100 runs × 200 tasks.

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use crate::dag_folder;

/// The first run's logical date, 2020-01-01T00:00:00Z, in microseconds; runs are hourly.
const FIRST_LOGICAL_DATE: i64 = 1_577_836_800_000_000;
const HOUR: i64 = 3_600_000_000;
const SECOND: i64 = 1_000_000;

/// The DAGs and how many runs each holds.
#[derive(Debug, Clone)]
pub struct History {
    pub dags: usize,
    pub tasks_per_dag: usize,
    pub runs: usize,
    /// The states a UI shows (W14) rather than W13's: see the module's documentation.
    pub varied_states: bool,
    /// One more DAG, [`WIDE_DAG`], of this shape, after the others' runs.
    pub wide: Option<Wide>,
}

/// The extra DAG of W14: `layers` layers of `width` tasks, with `runs` runs.
#[derive(Debug, Clone, Copy)]
pub struct Wide {
    pub layers: usize,
    pub width: usize,
    pub runs: usize,
}

impl Wide {
    pub fn tasks(&self) -> usize {
        self.layers * self.width
    }
}

/// The id of the [`Wide`] DAG.
pub const WIDE_DAG: &str = "ui_grid";

/// One run to write.
struct Run {
    id: i64,
    dag_id: String,
    run_id: String,
    logical_date: i64,
    index: usize,
    tasks: usize,
    failed: bool,
    varied: bool,
}

/// One task instance's row: its state and times (none for a task that never started).
struct TaskRow {
    state: &'static str,
    start: Option<i64>,
    end: Option<i64>,
}

impl History {
    pub fn dag_id(dag: usize) -> String {
        format!("api_{dag:03}")
    }

    /// The DAG whose runs W13 lists: it holds half of the runs, the others share the rest.
    pub fn busiest_dag() -> String {
        History::dag_id(0)
    }

    /// How many runs DAG `dag` holds.
    pub fn runs_of(&self, dag: usize) -> usize {
        if self.dags <= 1 {
            return self.runs;
        }
        let each_other = self.runs / 2 / (self.dags - 1);
        match dag {
            0 => self.runs - each_other * (self.dags - 1),
            _ => each_other,
        }
    }

    /// Every run, the wide DAG's included.
    pub fn all_runs(&self) -> usize {
        self.runs + self.wide.map_or(0, |w| w.runs)
    }

    pub fn task_instances(&self) -> usize {
        self.runs * self.tasks_per_dag + self.wide.map_or(0, |w| w.runs * w.tasks())
    }

    /// The DAG files: `dags` chains of `tasks_per_dag` tasks, without a schedule (no run
    /// is added while the workload measures).
    pub fn dag_files(&self) -> Vec<(String, String)> {
        let mut files: Vec<_> = (0..self.dags)
            .map(|d| {
                let id = History::dag_id(d);
                (
                    format!("{id}.yaml"),
                    dag_folder::chain(&id, self.tasks_per_dag),
                )
            })
            .collect();
        if let Some(w) = self.wide {
            files.push((
                format!("{WIDE_DAG}.yaml"),
                dag_folder::layers(WIDE_DAG, w.layers, w.width),
            ));
        }
        files
    }

    /// Every DAG, the wide one included.
    pub fn all_dags(&self) -> usize {
        self.dags + usize::from(self.wide.is_some())
    }

    /// The id of run `index` (0 = the oldest) of a DAG, as the scheduler names its runs.
    pub fn run_id(index: usize) -> String {
        let date = chrono::DateTime::from_timestamp_micros(logical_date(index))
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default();
        format!("scheduled__{date}")
    }

    /// The newest run of the busiest DAG.
    pub fn newest_run_id(&self) -> String {
        History::run_id(self.runs_of(0).saturating_sub(1))
    }

    /// Every run, DAG by DAG (the wide one last), with ids from 1.
    fn runs(&self) -> impl Iterator<Item = Run> + '_ {
        let mut id = 0;
        let shapes = (0..self.dags)
            .map(|d| (History::dag_id(d), self.runs_of(d), self.tasks_per_dag))
            .chain(self.wide.map(|w| (WIDE_DAG.to_owned(), w.runs, w.tasks())));
        let varied = self.varied_states;
        shapes.flat_map(move |(dag_id, runs, tasks)| {
            (0..runs)
                .map(|index| {
                    id += 1;
                    Run {
                        id,
                        dag_id: dag_id.clone(),
                        run_id: History::run_id(index),
                        logical_date: logical_date(index),
                        index,
                        tasks,
                        failed: index % 50 == 49,
                        varied,
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    /// Writes the history into the SQLite file of a stopped standalone.
    pub fn write_sqlite(&self, path: &std::path::Path) -> Result<()> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open {} to write the history", path.display()))?;
        // The database is rebuilt if this run dies: no need to make each page durable.
        conn.pragma_update(None, "synchronous", "OFF")?;
        let versions = dag_versions_sqlite(&conn)?;
        let tx = conn.transaction()?;
        {
            let mut insert_run = tx.prepare(
                "INSERT INTO dag_run (id, dag_id, run_id, run_type, state, logical_date, \
                 data_interval_start, data_interval_end, conf, dag_version, queued_at, \
                 start_date, end_date) VALUES (?1, ?2, ?3, 'scheduled', ?4, ?5, ?6, ?5, '{}', \
                 ?7, ?5, ?8, ?9)",
            )?;
            let mut insert_ti = tx.prepare(
                "INSERT INTO task_instance (dag_run_id, dag_id, run_id, task_id, map_index, \
                 try_number, state, queue, pool, priority_weight, hostname, queued_at, \
                 start_date, end_date) VALUES (?1, ?2, ?3, ?4, -1, 1, ?5, 'default', \
                 'default_pool', 1, 'updraft-bench', ?6, ?6, ?7)",
            )?;
            for run in self.runs() {
                let version = version_of(&versions, &run.dag_id)?;
                let (start, end) = run_times(&run);
                insert_run.execute(params![
                    run.id,
                    run.dag_id,
                    run.run_id,
                    run_state(&run),
                    run.logical_date,
                    run.logical_date - HOUR,
                    version,
                    start,
                    end
                ])?;
                for t in 0..run.tasks {
                    let row = task_row(&run, t);
                    insert_ti.execute(params![
                        run.id,
                        run.dag_id,
                        run.run_id,
                        dag_folder::task_id(t),
                        row.state,
                        row.start,
                        row.end
                    ])?;
                }
            }
        }
        tx.commit().context("cannot commit the history")?;
        Ok(())
    }

    /// Writes the history into a PostgreSQL database (no updraft process running), then
    /// moves the id sequences past it and refreshes the planner's statistics, as autovacuum
    /// would have on a database that grew this large over time.
    pub fn write_postgres(&self, url: &str) -> Result<()> {
        use std::io::Write;
        let mut client = crate::postgres::connect(url)?;
        let versions: Vec<(String, i64)> = client
            .query("SELECT dag_id, version FROM dag", &[])
            .context("cannot read the DAGs' versions")?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let mut tx = client.transaction()?;
        let mut runs = tx.copy_in(
            "COPY dag_run (id, dag_id, run_id, run_type, state, logical_date, \
             data_interval_start, data_interval_end, conf, dag_version, queued_at, start_date, \
             end_date) FROM STDIN",
        )?;
        for run in self.runs() {
            let version = version_of(&versions, &run.dag_id)?;
            let (start, end) = run_times(&run);
            writeln!(
                runs,
                "{}\t{}\t{}\tscheduled\t{}\t{}\t{}\t{}\t{{}}\t{version}\t{}\t{start}\t{end}",
                run.id,
                run.dag_id,
                run.run_id,
                run_state(&run),
                run.logical_date,
                run.logical_date - HOUR,
                run.logical_date,
                run.logical_date
            )?;
        }
        runs.finish().context("cannot copy the runs")?;
        let mut tis = tx.copy_in(
            "COPY task_instance (dag_run_id, dag_id, run_id, task_id, map_index, try_number, \
             state, queue, pool, priority_weight, hostname, queued_at, start_date, end_date) \
             FROM STDIN",
        )?;
        for run in self.runs() {
            for t in 0..run.tasks {
                let row = task_row(&run, t);
                let start = copy_value(row.start);
                writeln!(
                    tis,
                    "{}\t{}\t{}\t{}\t-1\t1\t{}\tdefault\tdefault_pool\t1\tupdraft-bench\t{start}\t{start}\t{}",
                    run.id,
                    run.dag_id,
                    run.run_id,
                    dag_folder::task_id(t),
                    row.state,
                    copy_value(row.end)
                )?;
            }
        }
        tis.finish().context("cannot copy the task instances")?;
        tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('dag_run', 'id'), (SELECT max(id) FROM dag_run));\n\
             SELECT setval(pg_get_serial_sequence('task_instance', 'id'), (SELECT max(id) FROM task_instance));",
        )?;
        tx.commit().context("cannot commit the history")?;
        client.batch_execute("ANALYZE dag_run; ANALYZE task_instance;")?;
        Ok(())
    }
}

fn logical_date(index: usize) -> i64 {
    FIRST_LOGICAL_DATE + index as i64 * HOUR
}

fn run_state(run: &Run) -> &'static str {
    if run.failed {
        "failed"
    } else {
        "success"
    }
}

/// A run starts a second after its logical date; its tasks run one a second.
fn run_times(run: &Run) -> (i64, i64) {
    let start = run.logical_date + SECOND;
    (start, start + run.tasks as i64 * SECOND)
}

/// Task `t`'s state, start and end: half a second each, one after the other. A failed run
/// fails in its last task, or with varied states in its middle one, the tasks after it
/// `upstream_failed` (never started); with varied states one run in 7 skipped its last task.
fn task_row(run: &Run, t: usize) -> TaskRow {
    let start = run.logical_date + SECOND + t as i64 * SECOND;
    let last = t + 1 == run.tasks;
    let failing = if run.varied {
        run.tasks / 2
    } else {
        run.tasks - 1
    };
    let state = match () {
        _ if run.failed && t == failing => "failed",
        _ if run.failed && t > failing => "upstream_failed",
        _ if run.varied && last && run.index % 7 == 3 => "skipped",
        _ => "success",
    };
    match state {
        "upstream_failed" => TaskRow {
            state,
            start: None,
            end: None,
        },
        "skipped" => TaskRow {
            state,
            start: Some(start),
            end: Some(start),
        },
        _ => TaskRow {
            state,
            start: Some(start),
            end: Some(start + SECOND / 2),
        },
    }
}

/// A value of a `COPY … FROM STDIN` line: `\N` for NULL.
fn copy_value(value: Option<i64>) -> String {
    value.map_or_else(|| "\\N".to_owned(), |v| v.to_string())
}

fn dag_versions_sqlite(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare("SELECT dag_id, version FROM dag")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .context("cannot read the DAGs' versions")
}

fn version_of(versions: &[(String, i64)], dag_id: &str) -> Result<i64> {
    versions
        .iter()
        .find(|(id, _)| id == dag_id)
        .map(|(_, v)| *v)
        .with_context(|| format!("DAG {dag_id} is not registered: cannot add its history"))
}

#[cfg(test)]
mod tests {
    use super::{task_row, History, Wide, WIDE_DAG};

    #[test]
    fn the_busiest_dag_holds_half_and_every_run_is_counted() {
        let h = History {
            dags: 100,
            tasks_per_dag: 10,
            runs: 100_000,
            varied_states: false,
            wide: None,
        };
        assert_eq!(h.runs_of(0), 50_005);
        assert_eq!(h.runs_of(1), 505);
        assert_eq!((0..100).map(|d| h.runs_of(d)).sum::<usize>(), 100_000);
        assert_eq!(h.runs().count(), 100_000);
        assert_eq!(h.task_instances(), 1_000_000);
        let one = History {
            dags: 1,
            tasks_per_dag: 2,
            runs: 7,
            varied_states: false,
            wide: None,
        };
        assert_eq!(one.runs_of(0), 7);
    }

    #[test]
    fn the_wide_dag_comes_last_and_varied_failures_stop_in_the_middle() {
        let h = History {
            dags: 2,
            tasks_per_dag: 10,
            runs: 100,
            varied_states: true,
            wide: Some(Wide {
                layers: 10,
                width: 20,
                runs: 100,
            }),
        };
        assert_eq!(h.all_dags(), 3);
        assert_eq!(h.all_runs(), 200);
        assert_eq!(h.task_instances(), 100 * 10 + 100 * 200);
        assert_eq!(h.dag_files().last().unwrap().0, "ui_grid.yaml");
        let runs: Vec<_> = h.runs().collect();
        assert_eq!(runs.len(), 200);
        let wide: Vec<_> = runs.iter().filter(|r| r.dag_id == WIDE_DAG).collect();
        assert_eq!(wide.len(), 100);
        assert!(wide.iter().all(|r| r.tasks == 200));
        let failed = runs.iter().find(|r| r.failed && r.tasks == 10).unwrap();
        let states: Vec<_> = (0..10).map(|t| task_row(failed, t).state).collect();
        assert_eq!(states[4], "success");
        assert_eq!(states[5], "failed");
        assert!(states[6..].iter().all(|s| *s == "upstream_failed"));
        assert_eq!(task_row(failed, 7).start, None);
        let skipping = runs.iter().find(|r| r.index == 3).unwrap();
        assert_eq!(task_row(skipping, 9).state, "skipped");
    }

    #[test]
    fn without_varied_states_a_failed_run_fails_in_its_last_task() {
        let h = History {
            dags: 1,
            tasks_per_dag: 3,
            runs: 50,
            varied_states: false,
            wide: None,
        };
        let failed = h.runs().find(|r| r.failed).unwrap();
        let states: Vec<_> = (0..3).map(|t| task_row(&failed, t).state).collect();
        assert_eq!(states, ["success", "success", "failed"]);
        let third = h.runs().find(|r| r.index == 3).unwrap();
        assert_eq!(task_row(&third, 2).state, "success");
    }

    #[test]
    fn run_ids_are_the_schedulers_names_of_hourly_runs() {
        assert_eq!(History::run_id(0), "scheduled__2020-01-01T00:00:00+00:00");
        assert_eq!(History::run_id(25), "scheduled__2020-01-02T01:00:00+00:00");
    }
}

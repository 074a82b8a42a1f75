//! Browsing runs and task instances with Airflow's filters, and a task instance's tries.

use rusqlite::{params, Connection, OptionalExtension};
use updraft_store::{
    DagRun, DagRunQuery, DagRunSortField, Page, Result, StoreError, TaskInstanceQuery,
    TaskInstanceRow, TaskInstanceSortField, TaskInstanceSummary, TaskTry,
};

use super::sql::{col, nullable, order_by, qualified, total, Column, Filter};
use crate::codec::{instant, opt_instant, parse};
use crate::dags::conversion;
use crate::db_err;
use crate::runs::{run_from_row, RUN_COLUMNS};
use crate::task_instances::{ti_from_row, TI_COLUMNS};

fn run_sort(field: DagRunSortField) -> Column {
    match field {
        DagRunSortField::Id => col("id"),
        DagRunSortField::DagId => col("dag_id"),
        DagRunSortField::RunId => col("run_id"),
        DagRunSortField::State => col("state"),
        DagRunSortField::RunType => col("run_type"),
        DagRunSortField::LogicalDate => col("logical_date"),
        DagRunSortField::QueuedAt => col("queued_at"),
        DagRunSortField::StartDate => nullable("start_date"),
        DagRunSortField::EndDate => nullable("end_date"),
        DagRunSortField::DataIntervalStart => col("data_interval_start"),
        DagRunSortField::DataIntervalEnd => col("data_interval_end"),
    }
}

pub fn query_dag_runs(conn: &Connection, query: &DagRunQuery) -> Result<Page<DagRun>> {
    let mut f = Filter::default();
    if let Some(dag_ids) = &query.dag_ids {
        f.any_of("dag_id", dag_ids);
    }
    f.like("run_id", query.run_id_pattern.as_deref());
    let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
    f.any_of_if_given("state", &states);
    let run_types: Vec<&str> = query.run_types.iter().map(|t| t.as_str()).collect();
    f.any_of_if_given("run_type", &run_types);
    f.range("logical_date", &query.logical_date);
    f.range("start_date", &query.start_date);
    f.range("end_date", &query.end_date);
    f.range("queued_at", &query.queued_at);
    let where_sql = f.where_sql();
    let count: i64 = match query.known_total {
        Some(known) => i64::try_from(known).unwrap_or(i64::MAX),
        None => conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM dag_run{where_sql}"))
            .and_then(|mut s| s.query_row(f.values(), |r| r.get(0)))
            .map_err(db_err)?,
    };
    let order = order_by(&query.sort, DagRunSortField::Id, run_sort, "id");
    let window = f.window_sql(query.window);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM dag_run{where_sql}{order}{window}"
        ))
        .map_err(db_err)?;
    let items = stmt
        .query_map(f.values(), run_from_row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page {
        items,
        total: total(count),
    })
}

/// `end_date - start_date` in microseconds; NULL unless both are set.
const DURATION: &str = "(ti.end_date - ti.start_date)";

fn ti_sort(field: TaskInstanceSortField) -> Column {
    match field {
        TaskInstanceSortField::Id => col("ti.id"),
        TaskInstanceSortField::DagId => col("ti.dag_id"),
        TaskInstanceSortField::RunId => col("ti.run_id"),
        TaskInstanceSortField::TaskId => col("ti.task_id"),
        TaskInstanceSortField::MapIndex => col("ti.map_index"),
        TaskInstanceSortField::State => col("ti.state"),
        TaskInstanceSortField::TryNumber => col("ti.try_number"),
        TaskInstanceSortField::LogicalDate => col("r.logical_date"),
        TaskInstanceSortField::StartDate => nullable("ti.start_date"),
        TaskInstanceSortField::EndDate => nullable("ti.end_date"),
        TaskInstanceSortField::Duration => nullable(DURATION),
        TaskInstanceSortField::Pool => col("ti.pool"),
        TaskInstanceSortField::Queue => col("ti.queue"),
        TaskInstanceSortField::PriorityWeight => col("ti.priority_weight"),
    }
}

pub fn query_task_instances(
    conn: &Connection,
    query: &TaskInstanceQuery,
) -> Result<Page<TaskInstanceRow>> {
    let mut f = Filter::default();
    // On the run's columns (the task instance's are copies): one run's task instances are
    // then found through the run's unique (dag_id, run_id) and the task instances' run index.
    if let Some(dag_ids) = &query.dag_ids {
        f.any_of("r.dag_id", dag_ids);
    }
    if let Some(run_ids) = &query.run_ids {
        f.any_of("r.run_id", run_ids);
    }
    if let Some(task_ids) = &query.task_ids {
        f.any_of("ti.task_id", task_ids);
    }
    f.like("ti.task_id", query.task_id_pattern.as_deref());
    let states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
    f.any_of_if_given("ti.state", &states);
    f.any_of_if_given("ti.pool", &query.pools);
    f.any_of_if_given("ti.queue", &query.queues);
    f.range("r.logical_date", &query.logical_date);
    f.range("ti.start_date", &query.start_date);
    f.range("ti.end_date", &query.end_date);
    if let Some(seconds) = query.duration_gte {
        let p = f.bind(seconds * 1e6);
        f.push(format!("{DURATION} >= {p}"));
    }
    if let Some(seconds) = query.duration_lte {
        let p = f.bind(seconds * 1e6);
        f.push(format!("{DURATION} <= {p}"));
    }
    if let Some(id) = query.id_after {
        let p = f.bind(id);
        f.push(format!("ti.id > {p}"));
    }
    let from = format!(
        " FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id{}",
        f.where_sql()
    );
    let count: i64 = if query.without_total {
        0
    } else {
        conn.prepare_cached(&format!("SELECT COUNT(*){from}"))
            .and_then(|mut s| s.query_row(f.values(), |r| r.get(0)))
            .map_err(db_err)?
    };
    let order = order_by(&query.sort, TaskInstanceSortField::Id, ti_sort, "ti.id");
    let window = f.window_sql(query.window);
    let sql = format!(
        "SELECT {}, r.logical_date, r.dag_version{from}{order}{window}",
        qualified(TI_COLUMNS, "ti")
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let items = stmt
        .query_map(f.values(), |row| {
            Ok(TaskInstanceRow {
                ti: ti_from_row(row)?,
                logical_date: instant(row.get(21)?).map_err(|e| conversion(21, e))?,
                dag_version: row.get(22)?,
            })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub fn task_instance_summaries(
    conn: &Connection,
    dag_run_ids: &[i64],
) -> Result<Vec<TaskInstanceSummary>> {
    // One statement for any number of runs: the ids travel as one JSON array.
    let ids = format!(
        "[{}]",
        dag_run_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut stmt = conn
        .prepare_cached(
            "SELECT dag_run_id, task_id, map_index, state, start_date, end_date \
             FROM task_instance WHERE dag_run_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY dag_run_id, task_id, map_index",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![ids], |row| {
            let at = |i: usize| opt_instant(row.get(i)?).map_err(|e| conversion(i, e));
            Ok(TaskInstanceSummary {
                dag_run_id: row.get(0)?,
                task_id: row.get(1)?,
                map_index: row.get(2)?,
                state: parse(&row.get::<_, String>(3)?).map_err(|e| conversion(3, e))?,
                start_date: at(4)?,
                end_date: at(5)?,
            })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(rows)
}

pub fn task_tries(conn: &Connection, ti_id: i64) -> Result<Vec<TaskTry>> {
    let known = conn
        .prepare_cached("SELECT 1 FROM task_instance WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![ti_id], |_| Ok(())).optional())
        .map_err(db_err)?;
    if known.is_none() {
        return Err(StoreError::NotFound(format!("task instance #{ti_id}")));
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT ti_id, try_number, state, hostname, worker_id, start_date, end_date, \
             infrastructure_failure FROM task_try WHERE ti_id = ?1 ORDER BY try_number",
        )
        .map_err(db_err)?;
    let tries = stmt
        .query_map(params![ti_id], |r| {
            Ok(TaskTry {
                ti_id: r.get(0)?,
                try_number: r.get(1)?,
                state: parse(&r.get::<_, String>(2)?).map_err(|e| conversion(2, e))?,
                hostname: r.get(3)?,
                worker_id: r.get(4)?,
                start_date: opt_instant(r.get(5)?).map_err(|e| conversion(5, e))?,
                end_date: opt_instant(r.get(6)?).map_err(|e| conversion(6, e))?,
                infrastructure_failure: r.get(7)?,
            })
        })
        .map_err(db_err)?;
    tries.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
}

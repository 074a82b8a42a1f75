//! Browsing runs and task instances with Airflow's filters, and a task instance's tries.

use sqlx::PgConnection;
use updraft_store::{
    DagRun, DagRunQuery, DagRunSortField, Page, Result, StoreError, TaskInstanceQuery,
    TaskInstanceRow, TaskInstanceSortField, TaskInstanceSummary, TaskTry,
};

use super::sql::{col, nullable, order_by, qualified, total, Arg, Column, Filter};
use crate::codec::{col as column, col_instant, col_opt_instant, col_u32, parse};
use crate::db_err;
use crate::runs::{run_from_row, RUN_COLUMNS};
use crate::task_instances::{ti_from_row, TI_COLUMNS};

fn run_sort(field: DagRunSortField) -> Column {
    match field {
        DagRunSortField::Id => col("id"),
        DagRunSortField::DagId => col("dag_id"),
        DagRunSortField::RunId => col("run_id"),
        DagRunSortField::State => col("state COLLATE \"C\""),
        DagRunSortField::RunType => col("run_type COLLATE \"C\""),
        DagRunSortField::LogicalDate => col("logical_date"),
        DagRunSortField::QueuedAt => col("queued_at"),
        DagRunSortField::StartDate => nullable("start_date"),
        DagRunSortField::EndDate => nullable("end_date"),
        DagRunSortField::DataIntervalStart => col("data_interval_start"),
        DagRunSortField::DataIntervalEnd => col("data_interval_end"),
    }
}

pub async fn query_dag_runs(conn: &mut PgConnection, query: &DagRunQuery) -> Result<Page<DagRun>> {
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
        None => {
            let count_sql = format!("SELECT COUNT(*) FROM dag_run{where_sql}");
            f.query(&count_sql)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)
                .and_then(|row| column(&row, 0))?
        }
    };
    let order = order_by(&query.sort, DagRunSortField::Id, run_sort, "id");
    let window = f.window_sql(query.window);
    let sql = format!("SELECT {RUN_COLUMNS} FROM dag_run{where_sql}{order}{window}");
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let items = rows.iter().map(run_from_row).collect::<Result<_>>()?;
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
        TaskInstanceSortField::State => col("ti.state COLLATE \"C\""),
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

pub async fn query_task_instances(
    conn: &mut PgConnection,
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
        let p = f.bind(Arg::Float(seconds * 1e6));
        f.push(format!("{DURATION} >= {p}"));
    }
    if let Some(seconds) = query.duration_lte {
        let p = f.bind(Arg::Float(seconds * 1e6));
        f.push(format!("{DURATION} <= {p}"));
    }
    if let Some(id) = query.id_after {
        let p = f.bind(Arg::Int(id));
        f.push(format!("ti.id > {p}"));
    }
    let from = format!(
        " FROM task_instance ti JOIN dag_run r ON r.id = ti.dag_run_id{}",
        f.where_sql()
    );
    let count: i64 = if query.without_total {
        0
    } else {
        let count_sql = format!("SELECT COUNT(*){from}");
        f.query(&count_sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)
            .and_then(|row| column(&row, 0))?
    };
    let order = order_by(&query.sort, TaskInstanceSortField::Id, ti_sort, "ti.id");
    let window = f.window_sql(query.window);
    let sql = format!(
        "SELECT {}, r.logical_date, r.dag_version{from}{order}{window}",
        qualified(TI_COLUMNS, "ti")
    );
    let rows = f.query(&sql).fetch_all(&mut *conn).await.map_err(db_err)?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(TaskInstanceRow {
                ti: ti_from_row(row)?,
                logical_date: col_instant(row, 21)?,
                dag_version: column(row, 22)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Page {
        items,
        total: total(count),
    })
}

pub async fn task_instance_summaries(
    conn: &mut PgConnection,
    dag_run_ids: &[i64],
) -> Result<Vec<TaskInstanceSummary>> {
    let rows = sqlx::query(
        "SELECT dag_run_id, task_id, map_index, state, start_date, end_date \
         FROM task_instance WHERE dag_run_id = ANY($1) \
         ORDER BY dag_run_id, task_id COLLATE \"C\", map_index",
    )
    .bind(dag_run_ids)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(TaskInstanceSummary {
                dag_run_id: column(row, 0)?,
                task_id: column(row, 1)?,
                map_index: column(row, 2)?,
                state: parse(&column::<String>(row, 3)?)?,
                start_date: col_opt_instant(row, 4)?,
                end_date: col_opt_instant(row, 5)?,
            })
        })
        .collect()
}

pub async fn task_tries(conn: &mut PgConnection, ti_id: i64) -> Result<Vec<TaskTry>> {
    let known: Option<i32> = sqlx::query_scalar("SELECT 1 FROM task_instance WHERE id = $1")
        .bind(ti_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if known.is_none() {
        return Err(StoreError::NotFound(format!("task instance #{ti_id}")));
    }
    let rows = sqlx::query(
        "SELECT ti_id, try_number, state, hostname, worker_id, start_date, end_date, \
         infrastructure_failure FROM task_try WHERE ti_id = $1 ORDER BY try_number",
    )
    .bind(ti_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(TaskTry {
                ti_id: column(row, 0)?,
                try_number: col_u32(row, 1)?,
                state: parse(&column::<String>(row, 2)?)?,
                hostname: column(row, 3)?,
                worker_id: column(row, 4)?,
                start_date: col_opt_instant(row, 5)?,
                end_date: col_opt_instant(row, 6)?,
                infrastructure_failure: column(row, 7)?,
            })
        })
        .collect()
}

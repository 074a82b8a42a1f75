//! The audit log ([`EventLogStore`]): appended by every state-changing call, queried with
//! filters. Without a sort the order is by id, ascending (the order events were recorded).

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::Postgres;
use updraft_store::*;

use crate::codec::{col, col_instant, col_opt_instant, micros, opt_micros, to_u32};
use crate::variables::window_args;
use crate::{db_err, PostgresStore};

const COLUMNS: &str = "id, dttm, event, owner, dag_id, run_id, task_id, map_index, try_number, \
    logical_date, extra";

fn event_from_row(row: &PgRow) -> Result<EventLogRecord> {
    let try_number: Option<i64> = col(row, 8)?;
    Ok(EventLogRecord {
        id: col(row, 0)?,
        event: NewEventLog {
            when: col_instant(row, 1)?,
            event: col(row, 2)?,
            owner: col(row, 3)?,
            dag_id: col(row, 4)?,
            run_id: col(row, 5)?,
            task_id: col(row, 6)?,
            map_index: col(row, 7)?,
            try_number: try_number.map(to_u32).transpose()?,
            logical_date: col_opt_instant(row, 9)?,
            extra: col(row, 10)?,
        },
    })
}

fn sort_column(field: EventLogSortField) -> &'static str {
    match field {
        EventLogSortField::Id => "id",
        EventLogSortField::When => "dttm",
        EventLogSortField::Event => "event",
        EventLogSortField::Owner => "owner",
        EventLogSortField::DagId => "dag_id",
        EventLogSortField::RunId => "run_id",
        EventLogSortField::TaskId => "task_id",
    }
}

/// A bound value of a filter.
enum Arg {
    Text(String),
    Int(i64),
    Texts(Vec<String>),
}

/// The `WHERE` clause of a query and its arguments (`$1`, `$2`, … in order).
fn filters(query: &EventLogQuery) -> (String, Vec<Arg>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut add = |clause: &str, value: Arg| {
        args.push(value);
        clauses.push(clause.replace('#', &format!("${}", args.len())));
    };
    for (column, value) in [
        ("dag_id", &query.dag_id),
        ("run_id", &query.run_id),
        ("task_id", &query.task_id),
        ("owner", &query.owner),
        ("event", &query.event),
    ] {
        if let Some(v) = value {
            add(&format!("{column} = #"), Arg::Text(v.clone()));
        }
    }
    if let Some(v) = query.map_index {
        add("map_index = #", Arg::Int(v));
    }
    if let Some(v) = query.try_number {
        add("try_number = #", Arg::Int(i64::from(v)));
    }
    for (op, bound) in [
        (">=", query.when.gte),
        (">", query.when.gt),
        ("<=", query.when.lte),
        ("<", query.when.lt),
    ] {
        if let Some(t) = bound {
            add(&format!("dttm {op} #"), Arg::Int(micros(t)));
        }
    }
    if !query.included_events.is_empty() {
        add("event = ANY(#)", Arg::Texts(query.included_events.clone()));
    }
    if !query.excluded_events.is_empty() {
        add(
            "NOT (event = ANY(#))",
            Arg::Texts(query.excluded_events.clone()),
        );
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, args)
}

fn bind_all<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: &'q [Arg],
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(*v),
            Arg::Texts(v) => q.bind(v),
        };
    }
    q
}

#[async_trait]
impl EventLogStore for PostgresStore {
    async fn add_event_log(&self, event: NewEventLog) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO event_log (dttm, event, owner, dag_id, run_id, task_id, map_index, \
             try_number, logical_date, extra) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(micros(event.when))
        .bind(&event.event)
        .bind(&event.owner)
        .bind(&event.dag_id)
        .bind(&event.run_id)
        .bind(&event.task_id)
        .bind(event.map_index)
        .bind(event.try_number.map(i64::from))
        .bind(opt_micros(event.logical_date))
        .bind(&event.extra)
        .fetch_one(&mut *self.conn().await?)
        .await
        .map_err(db_err)
    }
    async fn get_event_log(&self, id: i64) -> Result<EventLogRecord> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM event_log WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound(format!("event log #{id}")))?;
        event_from_row(&row)
    }
    async fn query_event_logs(&self, query: EventLogQuery) -> Result<Page<EventLogRecord>> {
        let (clause, args) = filters(&query);
        let mut conn = self.conn().await?;
        let count = format!("SELECT COUNT(*) FROM event_log {clause}");
        let total: i64 = col(
            &bind_all(sqlx::query(&count), &args)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?,
            0,
        )?;
        let mut order: Vec<String> = query
            .sort
            .iter()
            .map(|s| {
                // NULLs sort as the smallest values in both backends.
                let (dir, nulls) = if s.descending {
                    ("DESC", "NULLS LAST")
                } else {
                    ("ASC", "NULLS FIRST")
                };
                format!("{} {dir} {nulls}", sort_column(s.field))
            })
            .collect();
        // Ties broken by id, so pages never overlap.
        order.push("id".to_string());
        let (limit, offset) = window_args(query.window);
        let select = format!(
            "SELECT {COLUMNS} FROM event_log {clause} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            order.join(", ")
        );
        let rows = bind_all(sqlx::query(&select), &args)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        Ok(Page {
            items: rows.iter().map(event_from_row).collect::<Result<_>>()?,
            total: total.max(0) as u64,
        })
    }
}

//! The audit log ([`EventLogStore`]): appended by every state-changing call, queried with
//! filters. Without a sort the order is by id, ascending (the order events were recorded).

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, types::Value, Connection, OptionalExtension, Row};
use updraft_store::*;

use crate::codec::{instant, micros, opt_instant, opt_micros};
use crate::dags::conversion;
use crate::manage::window_args;
use crate::{db_err, SqliteStore};

const COLUMNS: &str = "id, dttm, event, owner, dag_id, run_id, task_id, map_index, try_number, \
    logical_date, extra";

fn event_from_row(row: &Row) -> rusqlite::Result<EventLogRecord> {
    Ok(EventLogRecord {
        id: row.get(0)?,
        event: NewEventLog {
            when: instant(row.get(1)?).map_err(|e| conversion(1, e))?,
            event: row.get(2)?,
            owner: row.get(3)?,
            dag_id: row.get(4)?,
            run_id: row.get(5)?,
            task_id: row.get(6)?,
            map_index: row.get(7)?,
            try_number: row.get(8)?,
            logical_date: opt_instant(row.get(9)?).map_err(|e| conversion(9, e))?,
            extra: row.get(10)?,
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

/// The `WHERE` clause of a query and its arguments (numbered in order).
fn filters(query: &EventLogQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut add = |clause: &str, value: Value, clauses: &mut Vec<String>| {
        args.push(value);
        clauses.push(clause.replace('#', &format!("?{}", args.len())));
    };
    let text = |v: &String| Value::Text(v.clone());
    for (column, value) in [
        ("dag_id", &query.dag_id),
        ("run_id", &query.run_id),
        ("task_id", &query.task_id),
        ("owner", &query.owner),
        ("event", &query.event),
    ] {
        if let Some(v) = value {
            add(&format!("{column} = #"), text(v), &mut clauses);
        }
    }
    if let Some(v) = query.map_index {
        add("map_index = #", Value::Integer(v), &mut clauses);
    }
    if let Some(v) = query.try_number {
        add("try_number = #", Value::Integer(i64::from(v)), &mut clauses);
    }
    for (op, bound) in [
        (">=", query.when.gte),
        (">", query.when.gt),
        ("<=", query.when.lte),
        ("<", query.when.lt),
    ] {
        if let Some(t) = bound {
            add(
                &format!("dttm {op} #"),
                Value::Integer(micros(t)),
                &mut clauses,
            );
        }
    }
    let mut list = |negate: bool, events: &[String], clauses: &mut Vec<String>| {
        if events.is_empty() {
            return;
        }
        let mut marks = Vec::new();
        for e in events {
            args.push(Value::Text(e.clone()));
            marks.push(format!("?{}", args.len()));
        }
        let not = if negate { "NOT " } else { "" };
        clauses.push(format!("event {not}IN ({})", marks.join(", ")));
    };
    list(false, &query.included_events, &mut clauses);
    list(true, &query.excluded_events, &mut clauses);
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (clause, args)
}

fn query_events(conn: &Connection, query: &EventLogQuery) -> Result<Page<EventLogRecord>> {
    let (clause, args) = filters(query);
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM event_log {clause}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
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
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM event_log {clause} ORDER BY {} LIMIT {limit} OFFSET {offset}",
            order.join(", ")
        ))
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params_from_iter(args.iter()), event_from_row)
        .map_err(db_err)?;
    Ok(Page {
        items: rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)?,
        total: total.max(0) as u64,
    })
}

#[async_trait]
impl EventLogStore for SqliteStore {
    async fn add_event_log(&self, event: NewEventLog) -> Result<i64> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO event_log (dttm, event, owner, dag_id, run_id, task_id, map_index, \
                 try_number, logical_date, extra) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    micros(event.when),
                    event.event,
                    event.owner,
                    event.dag_id,
                    event.run_id,
                    event.task_id,
                    event.map_index,
                    event.try_number,
                    opt_micros(event.logical_date),
                    event.extra
                ],
            )
            .map_err(db_err)?;
            Ok(tx.last_insert_rowid())
        })
        .await
    }
    async fn get_event_log(&self, id: i64) -> Result<EventLogRecord> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM event_log WHERE id = ?1"))
                .and_then(|mut s| s.query_row(params![id], event_from_row).optional())
                .map_err(db_err)?
                .ok_or_else(|| StoreError::NotFound(format!("event log #{id}")))
        })
        .await
    }
    async fn query_event_logs(&self, query: EventLogQuery) -> Result<Page<EventLogRecord>> {
        self.read(move |c| query_events(c, &query)).await
    }
}

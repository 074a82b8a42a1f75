//! Building the WHERE, ORDER BY and LIMIT of a browse query with bound values only.
//!
//! User input (patterns, ids, dates) is always bound; the only text spliced into SQL is the
//! fixed column expressions the sort enums map to.

use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;
use updraft_store::{Sort, TimeRange, Window};

use crate::codec::micros;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    Texts(Vec<String>),
}

/// The conditions of a query and the values they bind, numbered (`$N`) so that the count
/// query and the page query share them.
#[derive(Default)]
pub struct Filter {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    /// Binds `arg`; answers its placeholder.
    pub fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn push(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    /// `column` is one of `values`; an empty list matches nothing.
    pub fn any_of<S: AsRef<str>>(&mut self, column: &str, values: &[S]) {
        if let [only] = values {
            // PostgreSQL 15 does not take rows in index order through `= ANY(…)`: one DAG's
            // runs newest first would scan every run by date instead of that DAG's.
            let p = self.bind(Arg::Text(only.as_ref().to_string()));
            self.push(format!("{column} = {p}"));
        } else {
            let p = self.bind(texts(values));
            self.push(format!("{column} = ANY({p})"));
        }
    }

    /// Like [`any_of`](Self::any_of), but no filter at all when `values` is empty (an empty
    /// state list means any state).
    pub fn any_of_if_given<S: AsRef<str>>(&mut self, column: &str, values: &[S]) {
        if !values.is_empty() {
            self.any_of(column, values);
        }
    }

    /// Airflow's `*_pattern`: a case-insensitive substring, with the user's `%` and `_`
    /// wildcards inside.
    pub fn like(&mut self, column: &str, pattern: Option<&str>) {
        if let Some(pattern) = pattern {
            let p = self.bind(Arg::Text(pattern.to_string()));
            self.push(format!("{column} ILIKE '%' || {p} || '%'"));
        }
    }

    pub fn range(&mut self, column: &str, range: &TimeRange) {
        let bounds = [
            (">=", range.gte),
            (">", range.gt),
            ("<=", range.lte),
            ("<", range.lt),
        ];
        for (op, bound) in bounds {
            if let Some(t) = bound {
                let p = self.bind(Arg::Int(micros(t)));
                self.push(format!("{column} {op} {p}"));
            }
        }
    }

    /// ` WHERE …`, or nothing without conditions.
    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// ` LIMIT $n OFFSET $m`, binding the window after the filter's values.
    pub fn window_sql(&mut self, window: Window) -> String {
        let limit = self.bind(Arg::Int(i64::from(window.limit)));
        // No table holds 2^63 rows: an offset past that is simply past the end.
        let offset = self.bind(Arg::Int(i64::try_from(window.offset).unwrap_or(i64::MAX)));
        format!(" LIMIT {limit} OFFSET {offset}")
    }

    /// `sql` with every value bound so far.
    pub fn query<'q>(&self, sql: &'q str) -> Query<'q, Postgres, PgArguments> {
        let mut query = sqlx::query(sql);
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Float(v) => query.bind(*v),
                Arg::Bool(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
                Arg::Texts(v) => query.bind(v.clone()),
            };
        }
        query
    }
}

pub fn texts<S: AsRef<str>>(values: &[S]) -> Arg {
    Arg::Texts(values.iter().map(|v| v.as_ref().to_string()).collect())
}

/// How a sort key is written in SQL.
pub struct Column {
    pub expr: &'static str,
    /// Rows without a value sort last in either direction, as on every backend.
    pub nullable: bool,
}

pub const fn col(expr: &'static str) -> Column {
    Column {
        expr,
        nullable: false,
    }
}

pub const fn nullable(expr: &'static str) -> Column {
    Column {
        expr,
        nullable: true,
    }
}

/// `ORDER BY` of `sort` (or `default` ascending when empty), ending with `tie` — the table's
/// id, in the direction of the last key — so that equal keys keep one order across pages.
pub fn order_by<F: Copy>(
    sort: &[Sort<F>],
    default: F,
    column: impl Fn(F) -> Column,
    tie: &str,
) -> String {
    let fallback = [Sort {
        field: default,
        descending: false,
    }];
    let keys = if sort.is_empty() { &fallback[..] } else { sort };
    let mut parts: Vec<String> = Vec::with_capacity(keys.len() + 1);
    let mut tie_seen = false;
    for key in keys {
        let c = column(key.field);
        let direction = if key.descending { "DESC" } else { "ASC" };
        tie_seen |= c.expr == tie;
        parts.push(if c.nullable {
            format!("{} {direction} NULLS LAST", c.expr)
        } else {
            format!("{} {direction}", c.expr)
        });
    }
    if !tie_seen {
        let descending = keys.last().is_some_and(|k| k.descending);
        parts.push(format!("{tie} {}", if descending { "DESC" } else { "ASC" }));
    }
    format!(" ORDER BY {}", parts.join(", "))
}

/// `columns` (a comma-separated list) with every name prefixed by `alias.`, to select a
/// table's decoder columns next to a join.
pub fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `COUNT(*)` as a page total.
pub fn total(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

//! How values are written to PostgreSQL columns: instants as `BIGINT` microseconds since the
//! epoch (UTC), states as their Airflow names, maps as JSON text; and reading them back.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use updraft_store::{Result, StoreError};

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

pub fn instant(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

pub fn opt_instant(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(instant).transpose()
}

pub fn parse<T: std::str::FromStr>(text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Corrupt(e.to_string()))
}

pub fn json_map(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

/// Column `index` of `row`; a value of the wrong type is corrupt data.
pub fn col<'r, T>(row: &'r PgRow, index: usize) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(index)
        .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}")))
}

pub fn col_instant(row: &PgRow, index: usize) -> Result<DateTime<Utc>> {
    instant(col(row, index)?)
}

pub fn col_opt_instant(row: &PgRow, index: usize) -> Result<Option<DateTime<Utc>>> {
    opt_instant(col(row, index)?)
}

/// A `BIGINT` column holding a `u32` (try numbers, counters).
pub fn col_u32(row: &PgRow, index: usize) -> Result<u32> {
    let v: i64 = col(row, index)?;
    to_u32(v)
}

pub fn to_u32(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is not a valid count")))
}

//! How values are written to PostgreSQL columns (the encoding every backend shares,
//! [`updraft_store::codec`]), and reading them back from rows.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
pub use updraft_store::codec::*;
use updraft_store::{Result, StoreError};

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

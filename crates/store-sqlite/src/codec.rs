//! How values are written to SQLite columns: instants as integer microseconds since the epoch
//! (UTC), states as their Airflow names, maps as JSON text.

use chrono::{DateTime, Utc};
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

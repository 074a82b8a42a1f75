//! How every backend writes values to its columns and reads them back: instants as integer
//! microseconds since the epoch (UTC), states as their Airflow names, maps as JSON text. One
//! encoding for both, so a row means the same on SQLite and PostgreSQL.

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn opt_micros(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(micros)
}

/// A stored instant; one out of chrono's range is corrupt data.
pub fn instant(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

pub fn opt_instant(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(instant).transpose()
}

/// A stored name (a state, a run type); one this binary does not know is corrupt data.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_and_out_of_range_ones_are_corrupt() {
        let t = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(instant(micros(t)).unwrap(), t);
        assert_eq!(opt_instant(opt_micros(None)).unwrap(), None);
        assert!(matches!(instant(i64::MAX), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            parse::<crate::TaskState>("sleeping"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(json_map("[1]"), Err(StoreError::Corrupt(_))));
    }
}

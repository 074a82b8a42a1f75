//! Airflow's `macros` (`ds_add`, `ds_format`) and date filters (`ds`, `ts`, ...) for templates.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::context::date::{bad_format, python_format, write_format};
use crate::context::DateValue;

/// Installs `macros` and the date filters into `env`.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_global(
        "macros",
        Value::from_iter([
            ("ds_add", Value::from_function(ds_add)),
            ("ds_format", Value::from_function(ds_format)),
        ]),
    );
    env.add_filter("ds", |value: Value| {
        date_filter(value, |d| d.strftime_static("%Y-%m-%d"))
    });
    env.add_filter("ds_nodash", |value: Value| {
        date_filter(value, |d| d.strftime_static("%Y%m%d"))
    });
    env.add_filter("ts", |value: Value| {
        date_filter(value, DateValue::isoformat)
    });
    env.add_filter("ts_nodash", |value: Value| {
        date_filter(value, |d| d.strftime_static("%Y%m%dT%H%M%S"))
    });
    env.add_filter("ts_nodash_with_tz", |value: Value| {
        date_filter(value, |d| d.isoformat().replace(['-', ':'], ""))
    });
}

/// `macros.ds_add(ds, days)`: `ds` (`YYYY-MM-DD`) moved by `days` (which may be negative).
fn ds_add(ds: Value, days: i64) -> Result<String, Error> {
    let date = match ds.downcast_object_ref::<DateValue>() {
        Some(date) => date.naive().date(),
        None => {
            let text = ds.as_str().ok_or_else(|| not_a_date(&ds))?;
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| not_a_date(&ds))?
        }
    };
    let moved = TimeDelta::try_days(days)
        .and_then(|delta| date.checked_add_signed(delta))
        .ok_or_else(|| invalid(format!("ds_add: {ds} plus {days} days is out of range")))?;
    Ok(moved.format("%Y-%m-%d").to_string())
}

/// `macros.ds_format(ds, input_format, output_format)`: re-formats a date string, with Python
/// `strptime`/`strftime` formats, e.g. `ds_format('2026-01-05', '%Y-%m-%d', '%d/%m/%y')`.
fn ds_format(ds: Value, input_format: &str, output_format: &str) -> Result<String, Error> {
    let parsed = match ds.downcast_object_ref::<DateValue>() {
        Some(date) => date.naive(),
        None => {
            let text = ds.as_str().ok_or_else(|| not_a_date(&ds))?;
            parse_python(text, input_format).ok_or_else(|| {
                invalid(format!(
                    "ds_format: `{text}` does not match format `{input_format}`"
                ))
            })?
        }
    };
    write_format(parsed.format(&python_format(output_format)))
        .map_err(|_| bad_format(output_format))
}

/// Python's `datetime.strptime(text, format)`: fields missing from the format default to the
/// start of the day.
fn parse_python(text: &str, format: &str) -> Option<NaiveDateTime> {
    let format = python_format(format);
    DateTime::parse_from_str(text, &format)
        .map(|dt| dt.naive_utc())
        .or_else(|_| NaiveDateTime::parse_from_str(text, &format))
        .or_else(|_| NaiveDate::parse_from_str(text, &format).map(|d| d.and_time(NaiveTime::MIN)))
        .ok()
}

/// Applies a date filter to a datetime, passing `none` through as Airflow does.
fn date_filter(value: Value, format: impl Fn(&DateValue) -> String) -> Result<Value, Error> {
    if value.is_none() {
        return Ok(value);
    }
    match value.downcast_object_ref::<DateValue>() {
        Some(date) => Ok(Value::from(format(date))),
        None => Err(invalid(format!(
            "expected a datetime such as logical_date, got {}",
            value.kind()
        ))),
    }
}

fn not_a_date(value: &Value) -> Error {
    invalid(format!("expected a date like 2026-01-31, got `{value}`"))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

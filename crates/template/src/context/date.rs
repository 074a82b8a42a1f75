//! `DateValue`: a datetime in a template (`logical_date`, `data_interval_start`, ...), rendered and
//! manipulated like Airflow's pendulum datetimes.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use chrono::format::{DelayedFormat, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use minijinja::value::{from_args, DynObject, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

/// An instant plus the time zone it is shown in (UTC unless `in_timezone` changed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateValue {
    utc: DateTime<Utc>,
    tz: Tz,
}

impl DateValue {
    pub(crate) fn utc(utc: DateTime<Utc>) -> Self {
        DateValue { utc, tz: Tz::UTC }
    }

    fn local(&self) -> DateTime<Tz> {
        self.utc.with_timezone(&self.tz)
    }

    /// The naive wall-clock time in this value's time zone.
    pub(crate) fn naive(&self) -> NaiveDateTime {
        self.local().naive_local()
    }

    /// Python's `datetime.isoformat()`: `2026-01-01T00:00:00+00:00`, with `.ffffff` only when the
    /// microseconds are not zero.
    pub(crate) fn isoformat(&self) -> String {
        let fraction = if self.local().nanosecond() / 1_000 == 0 {
            ""
        } else {
            ".%6f"
        };
        self.strftime_static(&format!("%Y-%m-%dT%H:%M:%S{fraction}%:z"))
    }

    /// Formats with a chrono format string known to be valid.
    pub(crate) fn strftime_static(&self, format: &str) -> String {
        write_format(self.local().format(format)).unwrap_or_default()
    }

    /// Python's `strftime` with a format string from a template.
    pub(crate) fn strftime(&self, format: &str) -> Result<String, Error> {
        let chrono_format = python_format(format);
        write_format(self.local().format(&chrono_format)).map_err(|_| bad_format(format))
    }

    fn shifted(&self, kwargs: &Kwargs, sign: i64) -> Result<Self, Error> {
        let mut delta = TimeDelta::zero();
        for (unit, seconds) in [
            ("weeks", 604_800),
            ("days", 86_400),
            ("hours", 3_600),
            ("minutes", 60),
            ("seconds", 1),
        ] {
            let amount: Option<i64> = kwargs.get(unit)?;
            let part = amount
                .and_then(|amount| amount.checked_mul(seconds)?.checked_mul(sign))
                .and_then(TimeDelta::try_seconds);
            delta = match (amount, part) {
                (None, _) => delta,
                (Some(_), Some(part)) => delta.checked_add(&part).ok_or_else(out_of_range)?,
                (Some(_), None) => return Err(out_of_range()),
            };
        }
        kwargs.assert_all_used()?;
        let utc = self
            .utc
            .checked_add_signed(delta)
            .ok_or_else(out_of_range)?;
        Ok(DateValue { utc, tz: self.tz })
    }
}

impl Object for DateValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let local = self.local();
        let value = match key.as_str()? {
            "year" => Value::from(local.year()),
            "month" => Value::from(local.month()),
            "day" => Value::from(local.day()),
            "hour" => Value::from(local.hour()),
            "minute" => Value::from(local.minute()),
            "second" => Value::from(local.second()),
            "microsecond" => Value::from(local.nanosecond() / 1_000),
            "timezone_name" | "tzname" => Value::from(self.tz.name()),
            _ => return None,
        };
        Some(value)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (&str,) = from_args(args)?;
                Ok(Value::from(self.strftime(format)?))
            }
            "isoformat" => {
                let () = from_args(args)?;
                Ok(Value::from(self.isoformat()))
            }
            "date" | "to_date_string" => {
                let () = from_args(args)?;
                Ok(Value::from(self.strftime_static("%Y-%m-%d")))
            }
            "to_datetime_string" => {
                let () = from_args(args)?;
                Ok(Value::from(self.strftime_static("%Y-%m-%d %H:%M:%S")))
            }
            "timestamp" => {
                let () = from_args(args)?;
                Ok(Value::from(self.utc.timestamp_micros() as f64 / 1e6))
            }
            "in_timezone" | "in_tz" => {
                let (name,): (&str,) = from_args(args)?;
                let tz: Tz = name.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("unknown time zone `{name}`"),
                    )
                })?;
                Ok(Value::from_object(DateValue { utc: self.utc, tz }))
            }
            "add" | "subtract" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let sign = if method == "add" { 1 } else { -1 };
                Ok(Value::from_object(self.shifted(&kwargs, sign)?))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.utc.cmp(&other.utc))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat())
    }
}

/// Formats into a `String`, turning chrono's refusal of a format string into an error instead of
/// the panic `to_string()` would raise.
pub(crate) fn write_format(format: DelayedFormat<StrftimeItems<'_>>) -> Result<String, fmt::Error> {
    let mut out = String::new();
    write!(out, "{format}")?;
    Ok(out)
}

/// Translates a Python `strftime`/`strptime` format to chrono's dialect. They agree on every
/// common directive except `%f`, which is microseconds in Python and nanoseconds in chrono.
pub(crate) fn python_format(format: &str) -> String {
    let mut out = String::with_capacity(format.len() + 2);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '%' {
            continue;
        }
        let mut next = chars.next();
        if let Some(flag @ ('-' | '_' | '0')) = next {
            out.push(flag);
            next = chars.next();
        }
        match next {
            Some('f') => out.push_str("6f"),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

pub(crate) fn bad_format(format: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("invalid date format `{format}`"),
    )
}

fn out_of_range() -> Error {
    Error::new(ErrorKind::InvalidOperation, "date out of range")
}

//! Instants as pages show them: a `<time datetime="…">` element with the UTC text, which
//! `app.js` rewrites into the time zone the user chose (UTC, the browser's or the DAG's).

use std::fmt;

use chrono::{DateTime, Utc};

/// An instant to show; renders as a `<time>` element (markup of our own, no user text:
/// templates print it with `|safe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    /// The DAG's time zone, for the "DAG's time zone" choice.
    pub dag_tz: Option<chrono_tz::Tz>,
}

impl Moment {
    pub fn new(at: DateTime<Utc>) -> Self {
        Moment { at, dag_tz: None }
    }

    pub fn in_dag_tz(at: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        Moment {
            at,
            dag_tz: Some(tz),
        }
    }

    /// The instant in UTC, as text.
    pub fn utc(&self) -> String {
        self.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }

    pub fn iso(&self) -> String {
        self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

impl fmt::Display for Moment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Time zone names are [A-Za-z0-9_/+-]: nothing to escape.
        write!(f, "<time datetime=\"{}\"", self.iso())?;
        if let Some(tz) = self.dag_tz {
            write!(f, " data-tz=\"{}\"", tz.name())?;
        }
        write!(f, " title=\"{}\">{}</time>", self.utc(), self.utc())
    }
}

/// How long ago `at` was, roughly ("12 s", "5 min", "3 h", "2 d").
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        7200..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    }
}

/// A duration in seconds as `1h 02m 03s`, `2m 03s` or `3.2s`.
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let whole = seconds.round() as i64;
    let (h, m, s) = (whole / 3600, whole % 3600 / 60, whole % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_a_time_element_in_utc() {
        let at = DateTime::parse_from_rfc3339("2024-03-01T12:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Moment::in_dag_tz(at, chrono_tz::Europe::Paris).to_string(),
            "<time datetime=\"2024-03-01T12:30:05Z\" data-tz=\"Europe/Paris\" \
             title=\"2024-03-01 12:30:05 UTC\">2024-03-01 12:30:05 UTC</time>"
        );
    }

    #[test]
    fn durations_and_ages_read_naturally() {
        assert_eq!(duration(3.21), "3.2s");
        assert_eq!(duration(123.0), "2m 03s");
        assert_eq!(duration(3723.0), "1h 02m 03s");
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(30), now), "30 s");
        assert_eq!(ago(now - chrono::Duration::minutes(5), now), "5 min");
        assert_eq!(ago(now - chrono::Duration::hours(3), now), "3 h");
        assert_eq!(ago(now - chrono::Duration::days(2), now), "2 d");
    }
}

//! Sensors: tasks that wait for something (Airflow's `BaseSensorOperator`). How often a
//! sensor pokes, when it gives up, what giving up means, and the waits on time alone that the
//! scheduler decides without running anything.
//!
//! A sensor's try starts at its first poke and lasts across reschedules: its `timeout` counts
//! from that instant (the task instance's `start_date`, kept while it is
//! `up_for_reschedule`), not from the latest poke, and a timeout ends the task for good —
//! failed, or skipped with `soft_fail` — without using up its retries.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Airflow's defaults: a poke a minute, for at most seven days.
pub const DEFAULT_POKE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SENSOR_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The connection a file sensor reads its base path from when it names none (Airflow's).
pub const DEFAULT_FS_CONN_ID: &str = "fs_default";

/// How a sensor waits between pokes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorMode {
    /// The try keeps its worker slot and sleeps between pokes.
    #[default]
    Poke,
    /// Each poke is a short claim; between pokes the task instance is `up_for_reschedule`
    /// and holds no slot.
    Reschedule,
}

/// A sensor's settings (`BaseSensorOperator`'s arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sensing {
    #[serde(with = "secs")]
    pub poke_interval: Duration,
    #[serde(with = "secs")]
    pub timeout: Duration,
    #[serde(default)]
    pub mode: SensorMode,
    /// A timeout skips the task instead of failing it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft_fail: bool,
    /// Each wait doubles (with a stable jitter), as Airflow's `exponential_backoff`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exponential_backoff: bool,
    /// The longest wait between pokes with `exponential_backoff`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub max_wait: Option<Duration>,
}

impl Default for Sensing {
    fn default() -> Self {
        Sensing {
            poke_interval: DEFAULT_POKE_INTERVAL,
            timeout: DEFAULT_SENSOR_TIMEOUT,
            mode: SensorMode::Poke,
            soft_fail: false,
            exponential_backoff: false,
            max_wait: None,
        }
    }
}

/// What a sensor does after a poke that found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterPoke {
    /// Poke again at this instant.
    PokeAt(DateTime<Utc>),
    /// The timeout passed: the task ends (failed, or skipped with `soft_fail`).
    TimedOut,
}

impl Sensing {
    /// After a poke at `now` that found nothing, in a try whose first poke was at `started`;
    /// `salt` makes the backoff's jitter differ between task instances (and stay the same for
    /// one, so a restarted worker waits as the first one would have).
    pub fn after_poke(&self, started: DateTime<Utc>, now: DateTime<Utc>, salt: u64) -> AfterPoke {
        let elapsed = (now - started).to_std().unwrap_or(Duration::ZERO);
        if elapsed >= self.timeout {
            return AfterPoke::TimedOut;
        }
        let poke_number = self.pokes_by(elapsed, salt);
        let wait = self
            .wait_after(poke_number, salt)
            .min(self.timeout - elapsed);
        let at = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        AfterPoke::PokeAt(at)
    }

    /// The wait after poke number `poke_number` (1 for the first).
    pub fn wait_after(&self, poke_number: u32, salt: u64) -> Duration {
        if !self.exponential_backoff {
            return self.poke_interval;
        }
        // Airflow: at least `poke_interval * 2^(n-2)` (and one second), plus a stable
        // jitter below that much again.
        let exponent = poke_number.saturating_sub(1).min(40) as i32 - 1;
        let least = (self.poke_interval.as_secs_f64() * 2f64.powi(exponent)).max(1.0);
        let jitter = (mix(salt ^ u64::from(poke_number)) % 1000) as f64 / 1000.0 * least;
        let wait = Duration::try_from_secs_f64(least + jitter).unwrap_or(Duration::MAX);
        match self.max_wait {
            Some(max) => wait.min(max),
            None => wait,
        }
    }

    /// How many pokes a try has made once `elapsed` passed since its first, had every poke
    /// happened when it was due: the backoff of a rescheduled sensor goes on from there
    /// without a count of its own in the store.
    fn pokes_by(&self, elapsed: Duration, salt: u64) -> u32 {
        let mut at = Duration::ZERO;
        let mut n = 1;
        while n < 10_000 {
            at = at.saturating_add(self.wait_after(n, salt));
            if at > elapsed {
                break;
            }
            n += 1;
        }
        n
    }
}

/// What a file sensor waits for (Airflow's `FileSensor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWait {
    /// A path or a glob (a template), joined to the connection's `path` extra when relative.
    pub filepath: String,
    #[serde(default = "default_fs_conn_id")]
    pub fs_conn_id: String,
    /// `**` matches any number of directories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

fn default_fs_conn_id() -> String {
    DEFAULT_FS_CONN_ID.to_owned()
}

/// A wait on time alone, decided by the scheduler without a process or a worker slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeWait {
    /// Until the run's data interval end (its logical date without one) plus this.
    AfterInterval(Duration),
    /// Until this time of the day, in the DAG's time zone, on the day the wait begins.
    TimeOfDay(NaiveTime),
    /// Until this instant.
    Until(DateTime<Utc>),
}

impl TimeWait {
    /// When a wait that begins at `now`, in a run whose interval ends at `interval_end`, is
    /// over.
    pub fn due(
        &self,
        interval_end: DateTime<Utc>,
        timezone: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match self {
            TimeWait::AfterInterval(delta) => chrono::Duration::from_std(*delta)
                .ok()
                .and_then(|d| interval_end.checked_add_signed(d))
                .unwrap_or(interval_end),
            TimeWait::TimeOfDay(time) => {
                let day = now.with_timezone(&timezone).date_naive();
                timezone
                    .from_local_datetime(&day.and_time(*time))
                    .earliest()
                    // A time skipped by a DST change: the wait ends when the day reaches it.
                    .map_or(now, |at| at.with_timezone(&Utc))
            }
            TimeWait::Until(at) => *at,
        }
    }
}

/// A stable 64-bit mix (splitmix64's finalizer): the jitter must not change between
/// processes or builds, which `std`'s hasher does not promise.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable salt for a task instance's backoff jitter.
pub fn jitter_salt(ti_id: i64, try_number: u32) -> u64 {
    mix((ti_id as u64) ^ (u64::from(try_number) << 48))
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Duration::try_from_secs_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_sensor_pokes_every_interval_until_its_timeout_from_the_first_poke() {
        let sensing = Sensing {
            poke_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(25),
            ..Sensing::default()
        };
        assert_eq!(
            sensing.after_poke(at(0), at(0), 1),
            AfterPoke::PokeAt(at(10))
        );
        assert_eq!(
            sensing.after_poke(at(0), at(10), 1),
            AfterPoke::PokeAt(at(20))
        );
        // The last wait ends at the timeout, not past it.
        assert_eq!(
            sensing.after_poke(at(0), at(20), 1),
            AfterPoke::PokeAt(at(25))
        );
        assert_eq!(sensing.after_poke(at(0), at(25), 1), AfterPoke::TimedOut);
    }

    #[test]
    fn exponential_backoff_grows_and_stops_at_max_wait() {
        let sensing = Sensing {
            poke_interval: Duration::from_secs(4),
            exponential_backoff: true,
            max_wait: Some(Duration::from_secs(30)),
            ..Sensing::default()
        };
        let waits: Vec<f64> = (1..=8)
            .map(|n| sensing.wait_after(n, 7).as_secs_f64())
            .collect();
        // Poke n waits at least 4 * 2^(n-2) seconds (one second at least) and below twice that.
        for (i, wait) in waits.iter().enumerate() {
            let least = (4.0 * 2f64.powi(i as i32 - 1)).max(1.0);
            assert!(*wait <= 30.0, "{waits:?}");
            if least * 2.0 <= 30.0 {
                assert!(*wait >= least && *wait < least * 2.0, "{waits:?}");
            }
        }
        assert_eq!(waits[7], 30.0);
        // Stable: the same instance waits the same.
        assert_eq!(sensing.wait_after(3, 7), sensing.wait_after(3, 7));
    }

    #[test]
    fn time_waits_end_after_the_interval_at_a_time_of_day_or_at_an_instant() {
        let end = at(0);
        let tz = chrono_tz::Europe::Paris;
        assert_eq!(
            TimeWait::AfterInterval(Duration::from_secs(90)).due(end, tz, at(5)),
            at(90)
        );
        assert_eq!(TimeWait::Until(at(7)).due(end, tz, at(100)), at(7));
        let noon = NaiveTime::from_hms_opt(12, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 5, 0, 0).unwrap();
        // Noon in Paris in summer is 10:00 UTC.
        assert_eq!(
            TimeWait::TimeOfDay(noon).due(end, tz, now),
            Utc.with_ymd_and_hms(2026, 7, 1, 10, 0, 0).unwrap()
        );
    }
}

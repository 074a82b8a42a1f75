//! Schedules: cron expressions, presets and fixed intervals, evaluated in the DAG's time zone.
//!
//! Semantics follow Airflow 3's trigger timetables (`CronTriggerTimetable`,
//! `DeltaTriggerTimetable`): a run fires *at* each tick, its logical date is the tick and its
//! data interval is empty (start = end = the tick).
//!
//! # Daylight saving time
//!
//! Cron expressions are matched against the wall clock of `dag.timezone`, as Airflow does:
//!
//! - A **nonexistent** local time (the hour skipped when clocks spring forward) is shifted
//!   forward by the length of the gap for schedules that do not fire every hour:
//!   `30 2 * * *` in Europe/Amsterdam fires at 03:30 CEST (01:30 UTC) on the spring-forward
//!   day. This is Airflow's behaviour (a naive time with `fold=0` is read with the offset in
//!   force before the transition). croner itself would snap to the end of the gap (03:00).
//!   Schedules whose hour field is `*` (they fire every hour) simply have no tick in the
//!   skipped hour: `30 * * * *` fires at 01:30 CET and then 03:30 CEST, one hour apart.
//! - An **ambiguous** local time (the hour repeated when clocks fall back) fires once, at its
//!   first occurrence, for schedules that do not fire every hour; schedules whose hour field is
//!   `*` fire at both occurrences, so `0 * * * *` produces two distinct 02:00 runs, one hour
//!   apart in UTC (Airflow's "fold hour" handling).
//!
//! Fixed intervals (`Schedule::Every`) are absolute durations, anchored at `start_date` (or
//! at the Unix epoch when the DAG has none), so they are unaffected by time zones.

use std::fmt;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, SubsecRound, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::{Deserialize, Serialize};

use crate::dag::Dag;
use crate::duration::parse_duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Schedule {
    /// Manual runs only.
    None,
    /// `@once`: a single run at `start_date`.
    Once,
    /// A 5-field cron expression (presets are stored in their cron form).
    Cron(String),
    /// A fixed interval in seconds, starting at `start_date`.
    Every(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The text is neither a 5-field cron expression, a preset nor a positive duration.
    #[error("invalid schedule {input:?}: {reason}")]
    Invalid { input: String, reason: String },
}

/// The next run the scheduler should create. Its `run_after` is `logical_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextRun {
    pub logical_date: DateTime<Utc>,
    pub data_interval_start: DateTime<Utc>,
    pub data_interval_end: DateTime<Utc>,
}

/// The fields of a cron expression, in order, as error messages name them.
const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// Airflow's cron presets and their cron form. `@once` is handled separately.
pub const PRESETS: [(&str, &str); 6] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@quarterly", "0 0 1 */3 *"),
    ("@yearly", "0 0 1 1 *"),
];

impl Schedule {
    /// Parses what a user writes after `schedule:`: a cron expression, a preset or a duration.
    ///
    /// - `@once` → [`Schedule::Once`]; `@hourly` … `@yearly` → [`Schedule::Cron`] of their cron
    ///   form (see [`PRESETS`]).
    /// - One word (`30m`, `1h30m`, `3600`) → [`Schedule::Every`] in whole seconds, not zero.
    /// - Otherwise a 5-field cron expression (minute hour day-of-month month day-of-week),
    ///   validated with croner (names like `MON`/`JAN` and croner's `L`, `W`, `#` extensions are
    ///   accepted) and required to fire at least once.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::Invalid {
            input: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid(
                "empty; expected a cron expression, a preset like @daily or a duration like 1h"
                    .to_string(),
            ));
        }
        if trimmed.starts_with('@') {
            if trimmed.eq_ignore_ascii_case("@once") {
                return Ok(Schedule::Once);
            }
            return PRESETS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
                .map(|(_, cron)| Schedule::Cron((*cron).to_string()))
                .ok_or_else(|| {
                    invalid(
                        "unknown preset; expected one of @once, @hourly, @daily, @weekly, \
                         @monthly, @quarterly, @yearly"
                            .to_string(),
                    )
                });
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.len() == 1 {
            let duration = parse_duration(trimmed).map_err(|_| {
                invalid(
                    "expected a cron expression (5 fields), a preset like @daily \
                     or a duration like 30m or 1h"
                        .to_string(),
                )
            })?;
            if duration.subsec_nanos() != 0 {
                return Err(invalid(
                    "an interval must be a whole number of seconds".to_string(),
                ));
            }
            if duration.as_secs() == 0 {
                return Err(invalid("an interval must be longer than zero".to_string()));
            }
            return Ok(Schedule::Every(duration.as_secs()));
        }
        if fields.len() != 5 {
            return Err(invalid(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), \
                 found {}",
                fields.len()
            )));
        }
        // croner reads an empty list element (`,5`, `1,,2`) as matching nothing, and then
        // searches centuries for a first tick before it reports that none exists.
        if let Some((index, _)) = fields
            .iter()
            .enumerate()
            .find(|(_, field)| field.split(',').any(str::is_empty))
        {
            return Err(invalid(format!(
                "the {} field has an empty element in its list",
                CRON_FIELDS[index]
            )));
        }
        // croner takes a month or weekday name in any field (`MON` in the hour field is 1);
        // cron takes them only in their own fields.
        for (index, allowed) in [(0, ""), (1, ""), (2, "LW?")] {
            if fields[index]
                .chars()
                .any(|c| c.is_ascii_alphabetic() && !allowed.contains(c.to_ascii_uppercase()))
            {
                return Err(invalid(format!(
                    "the {} field takes numbers only (names are for the month and day-of-week \
                     fields)",
                    CRON_FIELDS[index]
                )));
            }
        }
        // croner's `+` (day-of-month AND day-of-week) is not Airflow's cron; a day-of-week
        // of `+` or `L` alone matches no day, and croner searches to the year 5000 before it
        // reports that such an expression never fires (found by fuzzing).
        if trimmed.contains('+') {
            return Err(invalid(
                "`+` is not a cron character (day-of-month and day-of-week combine with OR)"
                    .to_string(),
            ));
        }
        if fields[4]
            .split(',')
            .any(|element| element.eq_ignore_ascii_case("L"))
        {
            return Err(invalid(
                "in the day-of-week field, L needs a weekday before it (5L: the month's last \
                 Friday)"
                    .to_string(),
            ));
        }
        let expression = fields.join(" ");
        let cron = parse_cron(&expression).map_err(|e| invalid(e.to_string()))?;
        let probe = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        let fires = probe.is_some_and(|p| cron.find_next_occurrence(&p, false).is_ok());
        if !fires {
            return Err(invalid("the cron expression never fires".to_string()));
        }
        Ok(Schedule::Cron(expression))
    }

    /// For display: the cron text, `@once`, a duration like `30m` or `1h30m`, or `None`.
    /// Durations are written so that [`Schedule::parse`] reads them back.
    pub fn describe(&self) -> String {
        match self {
            Schedule::None => "None".to_string(),
            Schedule::Once => "@once".to_string(),
            Schedule::Cron(text) => text.clone(),
            Schedule::Every(secs) => describe_secs(*secs),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The next run the scheduler should create for `dag`, given the logical date of the latest
/// scheduled run already created (`None`: it never ran) and the current instant.
///
/// - `catchup = true` (with a `start_date`): the first tick after `last_logical_date`, or the
///   first tick at or after `start_date` when there is none — even far in the past; the
///   scheduler calls this repeatedly to create the missed runs in order. A tick is never
///   before `start_date`.
/// - `catchup = false` (Airflow's rule): the latest of (the latest tick ≤ `now`, the first tick
///   after `last_logical_date`, the first tick ≥ `start_date`). Without a `start_date` and
///   without a previous run, the first tick ≥ `now`. A DAG with `catchup = true` but no
///   `start_date` is treated as `catchup = false`: there is no beginning to catch up from.
/// - `@once`: one run at `start_date` (or `now` without one), `None` once any run exists.
/// - No tick after `end_date`, and never a tick at or before `last_logical_date`.
///
/// The result may lie in the future: the scheduler creates the run when `now` reaches it.
pub fn next_run(
    dag: &Dag,
    last_logical_date: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<NextRun> {
    let tick = match &dag.schedule {
        Schedule::None => return None,
        Schedule::Once => {
            if last_logical_date.is_some() {
                return None;
            }
            dag.start_date.unwrap_or(now)
        }
        Schedule::Cron(_) | Schedule::Every(_) => {
            let ticks = Ticks::for_dag(dag)?;
            let first = dag.start_date.and_then(|start| ticks.at_or_after(start));
            let after_last = last_logical_date.and_then(|last| ticks.after(last));
            match (dag.catchup, dag.start_date, last_logical_date) {
                (true, Some(_), None) => first?,
                (true, Some(_), Some(_)) => after_last?.max(first?),
                (_, None, None) => ticks.at_or_after(now)?,
                _ => [ticks.at_or_before(now), after_last, first]
                    .into_iter()
                    .flatten()
                    .max()?,
            }
        }
    };
    if last_logical_date.is_some_and(|last| tick <= last)
        || dag.start_date.is_some_and(|start| tick < start)
    {
        return None;
    }
    if dag.end_date.is_some_and(|end| tick > end) {
        return None;
    }
    Some(NextRun {
        logical_date: tick,
        data_interval_start: tick,
        data_interval_end: tick,
    })
}

/// Up to `n` fire times strictly after `after`, within `start_date..=end_date`: what
/// `updraft dags next-execution -n N` prints. Empty for `Schedule::None`; at most the
/// `start_date` for `@once`.
pub fn next_fire_times(dag: &Dag, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let within_end = |t: &DateTime<Utc>| dag.end_date.is_none_or(|end| *t <= end);
    let mut out = Vec::new();
    match &dag.schedule {
        Schedule::None => {}
        Schedule::Once => {
            if let Some(start) = dag.start_date {
                if start > after && within_end(&start) && n > 0 {
                    out.push(start);
                }
            }
        }
        Schedule::Cron(_) | Schedule::Every(_) => {
            let Some(ticks) = Ticks::for_dag(dag) else {
                return out;
            };
            let mut next = match dag.start_date {
                Some(start) if start > after => ticks.at_or_after(start),
                _ => ticks.after(after),
            };
            while let Some(tick) = next {
                if out.len() >= n || !within_end(&tick) {
                    break;
                }
                out.push(tick);
                next = ticks.after(tick);
            }
        }
    }
    out
}

/// The instants at which a cron or interval schedule fires.
enum Ticks {
    Cron(Box<CronTicks>),
    Every {
        step: TimeDelta,
        anchor: DateTime<Utc>,
    },
}

struct CronTicks {
    cron: Cron,
    tz: Tz,
    /// The hour field is `*`: fire at both occurrences of a repeated hour and skip the
    /// nonexistent one (Airflow's `_covers_every_hour`).
    every_hour: bool,
}

/// How far the wall clock can jump at a DST transition, with room to spare. Candidates this far
/// on either side of the searched instant are considered, since around a transition the order of
/// wall-clock times and of instants differ.
const DST_MARGIN: TimeDelta = TimeDelta::hours(3);
/// Safety bound on croner searches per query; a 5-field cron fires at most once a minute, so a
/// query looks at no more than ~4 * 60 * 3 candidates.
const MAX_CANDIDATES: usize = 2_000;

impl Ticks {
    fn for_dag(dag: &Dag) -> Option<Ticks> {
        match &dag.schedule {
            Schedule::Cron(text) => {
                let cron = parse_cron(text).ok()?;
                let every_hour = cron.pattern.hours.is_all_set();
                Some(Ticks::Cron(Box::new(CronTicks {
                    cron,
                    tz: dag.timezone,
                    every_hour,
                })))
            }
            Schedule::Every(secs) if *secs > 0 => Some(Ticks::Every {
                step: TimeDelta::try_seconds(i64::try_from(*secs).ok()?)?,
                anchor: dag.start_date.unwrap_or(DateTime::UNIX_EPOCH),
            }),
            _ => None,
        }
    }

    /// The first tick strictly after `t`.
    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Ticks::Cron(cron) => cron.after(t),
            Ticks::Every { step, anchor } => {
                if t < *anchor {
                    return Some(*anchor);
                }
                let k = (t - *anchor).num_seconds() / step.num_seconds() + 1;
                let offset = TimeDelta::try_seconds(k.checked_mul(step.num_seconds())?)?;
                anchor.checked_add_signed(offset)
            }
        }
    }

    /// The latest tick at or before `t`.
    fn at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Ticks::Cron(cron) => cron.at_or_before(t),
            Ticks::Every { step, anchor } => {
                if t < *anchor {
                    return None;
                }
                let k = (t - *anchor).num_seconds() / step.num_seconds();
                let offset = TimeDelta::try_seconds(k.checked_mul(step.num_seconds())?)?;
                anchor.checked_add_signed(offset)
            }
        }
    }

    /// The first tick at or after `t`.
    fn at_or_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.after(t.checked_sub_signed(TimeDelta::nanoseconds(1))?)
    }
}

impl CronTicks {
    fn after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz).naive_local();
        let start = local.checked_sub_signed(DST_MARGIN)?.trunc_subsecs(0);
        let mut cursor = Utc.from_utc_datetime(&start);
        let mut inclusive = true;
        let mut best: Option<DateTime<Utc>> = None;
        for _ in 0..MAX_CANDIDATES {
            let Ok(found) = self.cron.find_next_occurrence(&cursor, inclusive) else {
                break;
            };
            // Cron ticks are whole minutes; croner keeps the cursor's sub-seconds otherwise.
            let wall = found.naive_utc().trunc_subsecs(0);
            if let Some(b) = best {
                if wall > b.with_timezone(&self.tz).naive_local() + DST_MARGIN {
                    break;
                }
            }
            for u in self.instants(wall).into_iter().flatten() {
                if u > t && best.is_none_or(|b| u < b) {
                    best = Some(u);
                }
            }
            cursor = found;
            inclusive = false;
        }
        best
    }

    fn at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz).naive_local();
        let start = local.checked_add_signed(DST_MARGIN)?.trunc_subsecs(0);
        let mut cursor = Utc.from_utc_datetime(&start);
        let mut inclusive = true;
        let mut best: Option<DateTime<Utc>> = None;
        for _ in 0..MAX_CANDIDATES {
            let Ok(found) = self.cron.find_previous_occurrence(&cursor, inclusive) else {
                break;
            };
            // Cron ticks are whole minutes; croner keeps the cursor's sub-seconds otherwise.
            let wall = found.naive_utc().trunc_subsecs(0);
            if let Some(b) = best {
                if wall < b.with_timezone(&self.tz).naive_local() - DST_MARGIN {
                    break;
                }
            }
            for u in self.instants(wall).into_iter().flatten() {
                if u <= t && best.is_none_or(|b| u > b) {
                    best = Some(u);
                }
            }
            cursor = found;
            inclusive = false;
        }
        best
    }

    /// The instants at which the matching wall-clock time `wall` fires (see the module docs).
    fn instants(&self, wall: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(d) => [Some(d.with_timezone(&Utc)), None],
            LocalResult::Ambiguous(a, b) => {
                let (first, second) = if a <= b { (a, b) } else { (b, a) };
                let second = self.every_hour.then(|| second.with_timezone(&Utc));
                [Some(first.with_timezone(&Utc)), second]
            }
            LocalResult::None if self.every_hour => [None, None],
            LocalResult::None => [self.shift_over_gap(wall), None],
        }
    }

    /// A nonexistent wall-clock time read with the UTC offset in force just before the gap,
    /// which lands after the transition, shifted forward by the gap's length.
    fn shift_over_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Gaps last an hour or two (a day at most, in Samoa 2011); look back in 15 minute steps.
        (1..=4 * 48).find_map(|quarter| {
            let probe = wall.checked_sub_signed(TimeDelta::minutes(15 * quarter))?;
            let before = self.tz.from_local_datetime(&probe).latest()?;
            let offset = i64::from(before.offset().fix().local_minus_utc());
            let utc = wall.checked_sub_signed(TimeDelta::try_seconds(offset)?)?;
            Some(Utc.from_utc_datetime(&utc))
        })
    }
}

fn parse_cron(expression: &str) -> Result<Cron, croner::errors::CronError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(&sunday_as_zero(expression))
}

/// `expression` with a day-of-week element `7L` or `7#n` written `0L` / `0#n`: cron reads 7
/// as Sunday, as croner does for a plain 7, but croner's `7L` and `7#n` match no day (and it
/// then searches three thousand years before saying so; found by fuzzing).
fn sunday_as_zero(expression: &str) -> String {
    let mut fields: Vec<String> = expression.split_whitespace().map(str::to_string).collect();
    if let Some(day_of_week) = fields.get_mut(4) {
        *day_of_week = day_of_week
            .split(',')
            .map(|element| match element.strip_prefix('7') {
                Some(rest) if rest.starts_with(['L', 'l', '#']) => format!("0{rest}"),
                _ => element.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    fields.join(" ")
}

fn describe_secs(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests;

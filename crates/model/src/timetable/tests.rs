//! Table-driven tests for schedule parsing and the Airflow 3 trigger-timetable semantics.

use chrono::{DateTime, Utc};

use super::*;
use crate::dag::Dag;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn dag(schedule: &str, tz: &str, start: Option<&str>, end: Option<&str>, catchup: bool) -> Dag {
    Dag {
        timezone: tz.parse().unwrap(),
        start_date: start.map(utc),
        end_date: end.map(utc),
        catchup,
        ..Dag::new("d", Schedule::parse(schedule).unwrap())
    }
}

#[test]
fn parses_cron_presets_and_durations() {
    let cases = [
        ("0 0 * * *", Schedule::Cron("0 0 * * *".into())),
        (
            "  */15  *  * * MON-FRI ",
            Schedule::Cron("*/15 * * * MON-FRI".into()),
        ),
        ("30 2 L * *", Schedule::Cron("30 2 L * *".into())),
        ("0 0 * * 5L", Schedule::Cron("0 0 * * 5L".into())),
        ("@once", Schedule::Once),
        ("@hourly", Schedule::Cron("0 * * * *".into())),
        ("@daily", Schedule::Cron("0 0 * * *".into())),
        ("@weekly", Schedule::Cron("0 0 * * 0".into())),
        ("@monthly", Schedule::Cron("0 0 1 * *".into())),
        ("@quarterly", Schedule::Cron("0 0 1 */3 *".into())),
        ("@yearly", Schedule::Cron("0 0 1 1 *".into())),
        ("30m", Schedule::Every(1800)),
        ("1h", Schedule::Every(3600)),
        ("1h30m", Schedule::Every(5400)),
        ("2d", Schedule::Every(172_800)),
        ("90", Schedule::Every(90)),
    ];
    for (input, expected) in cases {
        assert_eq!(Schedule::parse(input), Ok(expected), "{input:?}");
    }
}

#[test]
fn rejects_bad_schedules_naming_the_input() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("0", "longer than zero"),
        ("0s", "longer than zero"),
        ("1.5", "whole number of seconds"),
        ("banana", "expected a cron expression"),
        ("@reboot", "unknown preset"),
        ("* * * *", "5 fields"),
        ("0 0 * * * *", "5 fields"),
        ("61 * * * *", ""),
        ("0 25 * * *", ""),
        ("0 0 * * funday", ""),
        ("0 0 30 2 *", "never fires"),
        // Found by fuzzing (fuzz/corpus/schedule/hang-*): these took croner seconds to find
        // that they never fire.
        (
            ", 6 * * 1-5",
            "the minute field has an empty element in its list",
        ),
        (
            "0 , * * 1-5",
            "the hour field has an empty element in its list",
        ),
        (
            "0 0 1,,15 * *",
            "the day-of-month field has an empty element",
        ),
        ("0 0 * * MON,", "the day-of-week field has an empty element"),
        ("0 0 * * +", "`+` is not a cron character"),
        ("1\t0 * * +MON", "`+` is not a cron character"),
        ("0 0 * * L", "L needs a weekday before it"),
        ("0 0 * * 1,l", "L needs a weekday before it"),
    ];
    for (input, reason) in cases {
        let err = Schedule::parse(input).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("{input:?}")), "{message}");
        assert!(message.contains(reason), "{input:?}: {message}");
    }
}

#[test]
fn describes_schedules_in_a_form_parse_reads_back() {
    let cases = [
        (Schedule::None, "None"),
        (Schedule::Once, "@once"),
        (Schedule::Cron("0 0 * * *".into()), "0 0 * * *"),
        (Schedule::Every(45), "45s"),
        (Schedule::Every(1800), "30m"),
        (Schedule::Every(3600), "1h"),
        (Schedule::Every(5400), "1h30m"),
        (Schedule::Every(86_400), "1d"),
        (Schedule::Every(90_061), "1d1h1m1s"),
    ];
    for (schedule, text) in cases {
        assert_eq!(schedule.describe(), text);
        assert_eq!(schedule.to_string(), text);
        if schedule != Schedule::None {
            assert_eq!(Schedule::parse(text), Ok(schedule));
        }
    }
}

#[test]
fn fire_times_in_time_zones_across_both_dst_changes() {
    // Europe/Amsterdam 2025: spring forward 30 March 02:00 CET -> 03:00 CEST (01:00 UTC),
    // fall back 26 October 03:00 CEST -> 02:00 CET (01:00 UTC).
    // America/New_York 2025: spring forward 9 March 02:00 EST -> 03:00 EDT.
    let cases: [(&str, &str, &str, &[&str]); 10] = [
        (
            "*/15 * * * *",
            "UTC",
            "2025-01-01T00:07:00Z",
            &[
                "2025-01-01T00:15:00Z",
                "2025-01-01T00:30:00Z",
                "2025-01-01T00:45:00Z",
            ],
        ),
        // Nonexistent 02:30 is shifted forward by the gap: 03:30 CEST.
        (
            "30 2 * * *",
            "Europe/Amsterdam",
            "2025-03-28T12:00:00Z",
            &[
                "2025-03-29T01:30:00Z",
                "2025-03-30T01:30:00Z",
                "2025-03-31T00:30:00Z",
                "2025-04-01T00:30:00Z",
            ],
        ),
        // Hourly: the skipped hour simply has no tick; the cadence stays one hour.
        (
            "0 * * * *",
            "Europe/Amsterdam",
            "2025-03-29T23:30:00Z",
            &[
                "2025-03-30T00:00:00Z",
                "2025-03-30T01:00:00Z",
                "2025-03-30T02:00:00Z",
            ],
        ),
        (
            "30 * * * *",
            "Europe/Amsterdam",
            "2025-03-30T00:00:00Z",
            &[
                "2025-03-30T00:30:00Z",
                "2025-03-30T01:30:00Z",
                "2025-03-30T02:30:00Z",
            ],
        ),
        // Hourly across the fall back: both 02:00 (CEST, then CET) fire.
        (
            "0 * * * *",
            "Europe/Amsterdam",
            "2025-10-25T23:30:00Z",
            &[
                "2025-10-26T00:00:00Z",
                "2025-10-26T01:00:00Z",
                "2025-10-26T02:00:00Z",
                "2025-10-26T03:00:00Z",
            ],
        ),
        (
            "*/30 * * * *",
            "Europe/Amsterdam",
            "2025-10-26T00:15:00Z",
            &[
                "2025-10-26T00:30:00Z",
                "2025-10-26T01:00:00Z",
                "2025-10-26T01:30:00Z",
                "2025-10-26T02:00:00Z",
            ],
        ),
        // A fixed time in the repeated hour fires once, at its first occurrence (CEST).
        (
            "30 2 * * *",
            "Europe/Amsterdam",
            "2025-10-25T12:00:00Z",
            &["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"],
        ),
        // Starting inside the repeated hour, after the first 02:30: next day.
        (
            "30 2 * * *",
            "Europe/Amsterdam",
            "2025-10-26T00:45:00Z",
            &["2025-10-27T01:30:00Z"],
        ),
        (
            "0 0 * * *",
            "America/New_York",
            "2025-03-08T00:00:00Z",
            &[
                "2025-03-08T05:00:00Z",
                "2025-03-09T05:00:00Z",
                "2025-03-10T04:00:00Z",
            ],
        ),
        (
            "0 9 * * MON",
            "Asia/Kolkata",
            "2025-01-01T00:00:00Z",
            &["2025-01-06T03:30:00Z", "2025-01-13T03:30:00Z"],
        ),
    ];
    for (cron, tz, after, expected) in cases {
        let d = dag(cron, tz, None, None, false);
        let got = next_fire_times(&d, utc(after), expected.len());
        let expected: Vec<_> = expected.iter().map(|t| utc(t)).collect();
        assert_eq!(got, expected, "{cron} in {tz} after {after}");
    }
}

#[test]
fn fire_times_respect_start_end_once_and_none() {
    let cases: [(Dag, &str, usize, &[&str]); 8] = [
        (
            dag("@daily", "UTC", Some("2025-01-05T00:00:00Z"), None, true),
            "2025-01-01T00:00:00Z",
            2,
            &["2025-01-05T00:00:00Z", "2025-01-06T00:00:00Z"],
        ),
        (
            dag("@daily", "UTC", None, Some("2025-01-03T00:00:00Z"), true),
            "2025-01-01T00:00:00Z",
            5,
            &["2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z"],
        ),
        (
            dag("6h", "UTC", Some("2025-01-01T01:00:00Z"), None, true),
            "2025-01-01T08:00:00Z",
            3,
            &[
                "2025-01-01T13:00:00Z",
                "2025-01-01T19:00:00Z",
                "2025-01-02T01:00:00Z",
            ],
        ),
        (
            dag("@once", "UTC", Some("2025-01-05T00:00:00Z"), None, true),
            "2025-01-01T00:00:00Z",
            3,
            &["2025-01-05T00:00:00Z"],
        ),
        (
            dag("@once", "UTC", Some("2025-01-05T00:00:00Z"), None, true),
            "2025-01-05T00:00:00Z",
            3,
            &[],
        ),
        (
            Dag {
                schedule: Schedule::None,
                ..dag("@daily", "UTC", None, None, true)
            },
            "2025-01-01T00:00:00Z",
            3,
            &[],
        ),
        (
            dag("@daily", "UTC", None, None, true),
            "2025-01-01T00:00:00Z",
            0,
            &[],
        ),
        // Second-long intervals anchored at the epoch, far from it.
        (
            dag("1s", "UTC", None, None, false),
            "2090-01-01T00:00:00Z",
            2,
            &["2090-01-01T00:00:01Z", "2090-01-01T00:00:02Z"],
        ),
    ];
    for (d, after, n, expected) in cases {
        let expected: Vec<_> = expected.iter().map(|t| utc(t)).collect();
        assert_eq!(
            next_fire_times(&d, utc(after), n),
            expected,
            "{} after {after}",
            d.schedule
        );
    }
}

#[test]
fn next_run_catchup_end_date_and_once() {
    let start = Some("2025-01-01T00:00:00Z");
    let now = "2025-01-10T12:00:00Z";
    // (name, dag, last logical date, now, expected logical date)
    type Case<'a> = (&'a str, Dag, Option<&'a str>, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "catchup: first run at start",
            dag("@daily", "UTC", start, None, true),
            None,
            now,
            Some("2025-01-01T00:00:00Z"),
        ),
        (
            "catchup: the tick after last",
            dag("@daily", "UTC", start, None, true),
            Some("2025-01-01T00:00:00Z"),
            now,
            Some("2025-01-02T00:00:00Z"),
        ),
        (
            "catchup: up to now",
            dag("@daily", "UTC", start, None, true),
            Some("2025-01-09T00:00:00Z"),
            now,
            Some("2025-01-10T00:00:00Z"),
        ),
        (
            "catchup: next is in the future",
            dag("@daily", "UTC", start, None, true),
            Some("2025-01-10T00:00:00Z"),
            now,
            Some("2025-01-11T00:00:00Z"),
        ),
        (
            "catchup: unaligned start",
            dag("@daily", "UTC", Some("2025-01-01T06:00:00Z"), None, true),
            None,
            now,
            Some("2025-01-02T00:00:00Z"),
        ),
        (
            "catchup: never before start",
            dag("@daily", "UTC", Some("2025-01-05T00:00:00Z"), None, true),
            Some("2025-01-01T00:00:00Z"),
            now,
            Some("2025-01-05T00:00:00Z"),
        ),
        (
            "no catchup: latest tick",
            dag("@daily", "UTC", start, None, false),
            None,
            now,
            Some("2025-01-10T00:00:00Z"),
        ),
        (
            "no catchup: skip missed",
            dag("@daily", "UTC", start, None, false),
            Some("2025-01-03T00:00:00Z"),
            now,
            Some("2025-01-10T00:00:00Z"),
        ),
        (
            "no catchup: latest exists",
            dag("@daily", "UTC", start, None, false),
            Some("2025-01-10T00:00:00Z"),
            now,
            Some("2025-01-11T00:00:00Z"),
        ),
        (
            "no catchup: start in the future",
            dag("@daily", "UTC", start, None, false),
            None,
            "2024-12-20T08:00:00Z",
            Some("2025-01-01T00:00:00Z"),
        ),
        (
            "no catchup: tick exactly now",
            dag("@daily", "UTC", start, None, false),
            Some("2025-01-08T00:00:00Z"),
            "2025-01-10T00:00:00Z",
            Some("2025-01-10T00:00:00Z"),
        ),
        (
            "no start date: next tick",
            dag("@daily", "UTC", None, None, true),
            None,
            now,
            Some("2025-01-11T00:00:00Z"),
        ),
        (
            "no start date, ran before",
            dag("@daily", "UTC", None, None, true),
            Some("2025-01-05T00:00:00Z"),
            now,
            Some("2025-01-10T00:00:00Z"),
        ),
        (
            "end date: last tick",
            dag("@daily", "UTC", start, Some("2025-01-05T00:00:00Z"), true),
            Some("2025-01-04T00:00:00Z"),
            now,
            Some("2025-01-05T00:00:00Z"),
        ),
        (
            "end date: done",
            dag("@daily", "UTC", start, Some("2025-01-05T00:00:00Z"), true),
            Some("2025-01-05T00:00:00Z"),
            now,
            None,
        ),
        (
            "end date: no catchup past end",
            dag("@daily", "UTC", start, Some("2025-01-05T00:00:00Z"), false),
            None,
            now,
            None,
        ),
        (
            "once: at start",
            dag("@once", "UTC", start, None, true),
            None,
            now,
            Some("2025-01-01T00:00:00Z"),
        ),
        (
            "once: only once",
            dag("@once", "UTC", start, None, true),
            Some("2025-01-01T00:00:00Z"),
            now,
            None,
        ),
        (
            "once: no start means now",
            dag("@once", "UTC", None, None, false),
            None,
            now,
            Some(now),
        ),
        (
            "once: start after end",
            dag(
                "@once",
                "UTC",
                Some("2025-02-01T00:00:00Z"),
                Some("2025-01-31T00:00:00Z"),
                true,
            ),
            None,
            now,
            None,
        ),
        (
            "every: catchup from start",
            dag("6h", "UTC", start, None, true),
            None,
            now,
            Some("2025-01-01T00:00:00Z"),
        ),
        (
            "every: after last",
            dag("6h", "UTC", start, None, true),
            Some("2025-01-01T00:00:00Z"),
            now,
            Some("2025-01-01T06:00:00Z"),
        ),
        (
            "every: no catchup",
            dag("6h", "UTC", Some("2025-01-01T00:10:00Z"), None, false),
            None,
            now,
            Some("2025-01-10T06:10:00Z"),
        ),
        (
            "cron in a time zone",
            dag(
                "@daily",
                "Europe/Amsterdam",
                Some("2024-12-31T23:00:00Z"),
                None,
                false,
            ),
            None,
            "2025-07-01T10:00:00Z",
            Some("2025-06-30T22:00:00Z"),
        ),
    ];
    for (name, d, last, now, expected) in cases {
        let got = next_run(&d, last.map(utc), utc(now));
        let expected = expected.map(|t| NextRun {
            logical_date: utc(t),
            data_interval_start: utc(t),
            data_interval_end: utc(t),
        });
        assert_eq!(got, expected, "{name}");
    }
    let manual = Dag {
        schedule: Schedule::None,
        ..dag("@daily", "UTC", start, None, true)
    };
    assert_eq!(next_run(&manual, None, utc(now)), None);
}

#[test]
fn catchup_creates_every_missed_run_in_order_across_dst() {
    // Hourly in Amsterdam over the fall-back night: 25 runs between 00:00 and 24:00 local.
    let d = dag(
        "0 * * * *",
        "Europe/Amsterdam",
        Some("2025-10-25T22:00:00Z"),
        Some("2025-10-26T22:59:00Z"),
        true,
    );
    let now = utc("2025-11-01T00:00:00Z");
    let mut last = None;
    let mut runs = Vec::new();
    while let Some(run) = next_run(&d, last, now) {
        assert!(last.is_none_or(|l| run.logical_date > l));
        last = Some(run.logical_date);
        runs.push(run.logical_date);
    }
    assert_eq!(runs.len(), 25);
    assert_eq!(runs.first(), Some(&utc("2025-10-25T22:00:00Z")));
    assert_eq!(runs.last(), Some(&utc("2025-10-26T22:00:00Z")));
}

/// Found by fuzzing: croner reads `7L` (the month's last Sunday) as no day at all, and `MON`
/// in the hour field as 1.
#[test]
fn a_last_sunday_written_7l_fires_and_names_stay_in_their_fields() {
    let after = utc("2026-03-29T00:00:00Z");
    for (text, first) in [
        ("1 1 * 6 7L", "2026-06-28T01:01:00Z"),
        ("1 1 * 6 0L", "2026-06-28T01:01:00Z"),
        ("0 9 * * 7#2", "2026-04-12T09:00:00Z"),
        ("30 6 * JUN SUNL", "2026-06-28T06:30:00Z"),
    ] {
        let schedule = Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(schedule.describe(), text, "the text is kept as written");
        let fires = next_fire_times(&dag(text, "UTC", None, None, false), after, 1);
        assert_eq!(fires, vec![utc(first)], "{text}");
    }
    for (text, field) in [
        ("1\t MON *\t6\t7L", "hour"),
        ("JAN 1 * * *", "minute"),
        ("0 0 MON * *", "day-of-month"),
    ] {
        let error = Schedule::parse(text).expect_err(text).to_string();
        assert!(error.contains(field), "{text}: {error}");
    }
}

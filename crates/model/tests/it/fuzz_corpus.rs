//! The `schedule` fuzz target's corpus (`fuzz/corpus/schedule`, crashes found by fuzzing
//! included) replayed as the target runs it: each file is `<schedule>` or
//! `<schedule>|<timezone>`, parsed as a schedule and as a duration; a schedule that parses
//! reads back from its description and yields increasing fire times.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use updraft_model::duration::parse_duration;
use updraft_model::{next_fire_times, next_run, Dag, Schedule};

#[test]
fn every_corpus_schedule_parses_or_is_refused_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/schedule");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the schedule corpus exists") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        replayed += 1;
        if let Ok(text) = std::str::from_utf8(&bytes) {
            replay(text);
        }
    }
    assert!(replayed > 10, "only {replayed} files in {}", dir.display());
}

fn replay(text: &str) {
    let _ = parse_duration(text);
    let (schedule_text, timezone) = match text.rsplit_once('|') {
        Some((schedule, zone)) => (schedule, zone.parse().unwrap_or(chrono_tz::UTC)),
        None => (text, chrono_tz::UTC),
    };
    let Ok(schedule) = Schedule::parse(schedule_text) else {
        return;
    };
    assert_eq!(
        Schedule::parse(&schedule.describe()).as_ref(),
        Ok(&schedule),
        "{text:?}"
    );
    let start = utc(2024, 2, 29);
    let now = utc(2026, 3, 29);
    for (catchup, start_date, last) in [
        (false, None, None),
        (true, Some(start), None),
        (true, Some(start), Some(utc(2025, 10, 26))),
        (false, Some(start), Some(now)),
    ] {
        let dag = dag(schedule.clone(), timezone, catchup, start_date);
        if let Some(next) = next_run(&dag, last, now) {
            assert!(last.is_none_or(|last| next.logical_date > last), "{text:?}");
        }
        let fires = next_fire_times(&dag, now, 5);
        assert!(fires.windows(2).all(|w| w[0] < w[1]), "{text:?}: {fires:?}");
    }
}

fn utc(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 0, 0, 0).unwrap()
}

fn dag(
    schedule: Schedule,
    timezone: chrono_tz::Tz,
    catchup: bool,
    start_date: Option<DateTime<Utc>>,
) -> Dag {
    Dag {
        timezone,
        start_date,
        catchup,
        ..Dag::new("fuzz", schedule)
    }
}

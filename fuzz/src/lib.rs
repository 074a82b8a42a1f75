//! What each fuzz target does with one input: the same calls the product makes on untrusted
//! text, and the checks that must hold whatever the input. The binaries in `bin/` hand AFL's
//! inputs to these functions; a panic (or an abort) here is a finding.

mod template_context;

use chrono::{DateTime, TimeZone, Utc};
use updraft_api::validate::{accept_body, BodyRoute};
use updraft_dagfile::{parse_dag_source, Format, MAX_FILE_BYTES};
use updraft_model::{next_fire_times, next_run, Dag, Schedule};
use updraft_template::{Renderer, TemplateContext};

pub use template_context::template_context;

/// A DAG file's bytes, loaded as the DAG folder loads a `.yaml` and a `.json` file (both
/// parsers see every input). A DAG that loads must survive the store's serde round trip.
pub fn dagfile(data: &[u8]) {
    if data.len() > MAX_FILE_BYTES {
        return;
    }
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Yaml, Format::Json] {
        if let Ok(dag) = parse_dag_source(source, "fuzz", format) {
            let stored = serde_json::to_string(&dag).expect("a loaded DAG serialises");
            let read_back: Dag = serde_json::from_str(&stored).expect("a stored DAG reads back");
            assert_eq!(read_back, dag, "the store's round trip changes the DAG");
        }
    }
}

/// `<schedule>` or `<schedule>|<timezone>`: parsed as `schedule:` and as a duration, and a
/// schedule that parses is asked for its next runs as the scheduler does.
pub fn schedule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = updraft_model::duration::parse_duration(text);
    let (schedule_text, timezone) = match text.rsplit_once('|') {
        Some((schedule, zone)) => (schedule, zone.parse().unwrap_or(chrono_tz::UTC)),
        None => (text, chrono_tz::UTC),
    };
    let Ok(schedule) = Schedule::parse(schedule_text) else {
        return;
    };
    let described = schedule.describe();
    assert_eq!(
        Schedule::parse(&described).as_ref(),
        Ok(&schedule),
        "describe() does not read back"
    );
    let start = instant(2024, 2, 29);
    let now = instant(2026, 3, 29);
    for (catchup, start_date, last) in [
        (false, None, None),
        (true, Some(start), None),
        (true, Some(start), Some(instant(2025, 10, 26))),
        (false, Some(start), Some(now)),
    ] {
        let dag = dag_with(schedule.clone(), timezone, catchup, start_date);
        if let Some(next) = next_run(&dag, last, now) {
            assert!(last.is_none_or(|last| next.logical_date > last));
        }
        let fires = next_fire_times(&dag, now, 5);
        assert!(fires.windows(2).all(|w| w[0] < w[1]), "{fires:?}");
    }
}

/// A task field's template, rendered for a typical scheduled run.
pub fn template(renderer: &Renderer, context: &TemplateContext, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = renderer.render(text, context);
}

/// One byte choosing the route (its value modulo the number of routes: `'1'` claim, `'2'`
/// heartbeat, `'3'` finish, `'4'` logs, `'5'` trigger, `'6'` variable, `'7'` worker
/// heartbeat), then the request body, checked as the execution API's server does.
pub fn execution_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let route = BodyRoute::ALL[usize::from(selector) % BodyRoute::ALL.len()];
    let _ = accept_body(route, body, instant(2026, 1, 1));
}

fn instant(year: i32, month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn dag_with(
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

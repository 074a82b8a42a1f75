//! The soak's figures for the report (with the goals) and the failures that fail the
//! harness run once the report is written.

use super::load::Triggered;
use super::samples::{ProcessSample, Reduce, Trend};
use super::tries::{TryCheck, SCHEDULED_DAG, TRIGGERED_DAG};
use super::{RunStates, Soak};
use crate::measurement::{Figure, Goal, Measurement, Unit};

/// Failures quoted in full; the rest are counted.
const QUOTED: usize = 10;
/// The bound on resident memory growth after the warm-up.
const RSS_GROWTH_PERCENT: f64 = 5.0;

/// The stable keys and the labels of one long-lived process's figures.
struct ProcessKeys {
    rss: (&'static str, &'static str),
    rss_growth: (&'static str, &'static str),
    fds: (&'static str, &'static str),
    fd_growth: (&'static str, &'static str),
}

macro_rules! process_keys {
    ($key:literal, $name:literal) => {
        ProcessKeys {
            rss: (
                concat!($key, "_rss_mib"),
                concat!($name, " resident at the end"),
            ),
            rss_growth: (
                concat!($key, "_rss_growth_pct"),
                concat!($name, " resident growth after warm-up"),
            ),
            fds: (
                concat!($key, "_fds"),
                concat!(
                    $name,
                    " open files at rest, every run finished (floor; connections accepted or to the database left out)"
                ),
            ),
            fd_growth: (
                concat!($key, "_fd_growth"),
                concat!($name, " open files at rest above the floor after warm-up"),
            ),
        }
    };
}

/// In the order of the soak's long-lived processes: scheduler, API server, worker.
const PROCESS_KEYS: [ProcessKeys; 3] = [
    process_keys!("scheduler", "scheduler-1"),
    process_keys!("api_server", "api-server-1"),
    process_keys!("worker", "worker-1"),
];

/// The figures, and the failures.
pub(super) fn measure(
    soak: &Soak,
    triggered: &Triggered,
    runs: &RunStates,
    check: &TryCheck,
) -> Measurement {
    let mut m = Measurement::default();
    let not_succeeded = runs.not_succeeded();
    let succeeded = runs.count(TRIGGERED_DAG, "success") + runs.count(SCHEDULED_DAG, "success");
    let none = None;
    let zero = Some(Goal::AtMost(0.0));
    let counts = [
        (
            "kills",
            "processes SIGKILLed and restarted",
            soak.kills.len(),
            none,
        ),
        (
            "runs_triggered",
            "runs triggered through the REST API",
            triggered.run_ids.len(),
            none,
        ),
        (
            "runs_succeeded",
            "runs succeeded (triggered and scheduled)",
            succeeded,
            none,
        ),
        (
            "scheduled_runs_succeeded",
            "runs of the every-minute DAG succeeded",
            runs.count(SCHEDULED_DAG, "success"),
            none,
        ),
        (
            "runs_not_succeeded",
            "runs failed or unfinished",
            not_succeeded.len(),
            zero,
        ),
        ("tries", "tries that ran", check.tries_seen, none),
        (
            "tries_lost",
            "tries lost (a success whose try never ran)",
            check.lost.len(),
            zero,
        ),
        (
            "tries_duplicated",
            "tries that ran more than once",
            check.duplicated.len(),
            zero,
        ),
        (
            "retries_after_kills",
            "tries run again after a kill took them",
            check.retries,
            none,
        ),
        (
            "trigger_attempts_failed",
            "trigger attempts sent again (server killed)",
            triggered.failed_attempts,
            none,
        ),
    ];
    for (key, label, value, goal) in counts {
        figure(
            &mut m,
            Figure::new(key, label, Unit::Count, value as f64),
            goal,
        );
    }

    for (p, keys) in PROCESS_KEYS.iter().enumerate() {
        let series = |value: fn(&ProcessSample) -> f64| -> Vec<f64> {
            soak.samples
                .iter()
                .map(|s| value(&s.processes[p]))
                .collect()
        };
        let rss = Trend::of(
            &series(|s| s.rss_kib as f64 / 1024.0),
            soak.warm_up_samples(),
            Reduce::Mean,
        );
        let fds = Trend::of(
            &series(|s| s.fds as f64),
            soak.warm_up_samples(),
            Reduce::Min,
        );
        let (Some(rss), Some(fds)) = (rss, fds) else {
            continue;
        };
        let fds_at_rest = soak
            .at_rest
            .iter()
            .map(|s| s.processes[p].fds as f64)
            .fold(fds.at_end, f64::min);
        let fd_growth = fds_at_rest - fds.after_warm_up;
        let figures = [
            (keys.rss, Unit::Mebibytes, rss.at_end, None),
            (
                keys.rss_growth,
                Unit::Percent,
                rss.growth_percent(),
                Some(Goal::AtMost(RSS_GROWTH_PERCENT)),
            ),
            (keys.fds, Unit::Count, fds_at_rest, None),
            (keys.fd_growth, Unit::Count, fd_growth, zero),
        ];
        for ((key, label), unit, value, goal) in figures {
            figure(&mut m, Figure::new(key, label, unit, value), goal);
        }
    }
    let connections: Vec<f64> = soak
        .samples
        .iter()
        .map(|s| s.db_connections as f64)
        .collect();
    if let Some(db) = Trend::of(&connections, soak.warm_up_samples(), Reduce::Max) {
        let figures = [
            (
                "db_connections",
                "database connections at the end (ceiling)",
                db.at_end,
                none,
            ),
            (
                "db_connections_max",
                "database connections, most after warm-up",
                db.max,
                none,
            ),
            (
                "db_connection_growth",
                "database connections growth after warm-up",
                db.growth(),
                zero,
            ),
        ];
        for (key, label, value, goal) in figures {
            figure(&mut m, Figure::new(key, label, Unit::Count, value), goal);
        }
    }

    let missing: Vec<String> = triggered
        .run_ids
        .iter()
        .filter(|run| !runs.has(TRIGGERED_DAG, run))
        .map(|run| format!("{run} (its trigger was answered)"))
        .collect();
    for (what, list) in [
        (
            "tries lost (a task succeeded with a try that never ran)",
            &check.lost,
        ),
        ("tries that ran more than once", &check.duplicated),
        ("tries the database does not know of", &check.unknown),
        ("malformed try lines", &check.malformed),
        ("runs that did not succeed", &not_succeeded),
        ("runs triggered but missing from the database", &missing),
        ("triggers no API server accepted", &triggered.given_up),
        ("processes that exited by themselves", &soak.crashes),
    ] {
        if !list.is_empty() {
            m.fail(quote(what, list, &soak.kills));
        }
    }
    m
}

fn figure(m: &mut Measurement, figure: Figure, goal: Option<Goal>) {
    m.figure(match goal {
        Some(goal) => figure.goal(goal),
        None => figure,
    });
}

/// `N what:` and the first few, then the kills, to line them up with.
fn quote(what: &str, list: &[String], kills: &[String]) -> String {
    let mut text = format!(
        "{} {what}:\n  {}",
        list.len(),
        list[..list.len().min(QUOTED)].join("\n  ")
    );
    if list.len() > QUOTED {
        text.push_str(&format!("\n  … and {} more", list.len() - QUOTED));
    }
    text.push_str(&format!("\nkills:\n  {}", kills.join("\n  ")));
    text
}

//! W13 `api`: the public REST API's reads on the W11 history (100,000 runs, 1,000,000 task
//! instances): the DAG list, the busiest DAG's runs newest first, one run's task instances.
//!
//! The history is written into the database once updraft has registered the DAGs (see
//! [`crate::history`]), then updraft is started again on it and measured from outside over
//! loopback as a client would: a user made with `updraft users create`, a token from
//! `POST /auth/token`, and keep-alive connections sending `Authorization: Bearer`. Each route's
//! latency is timed over one connection (one request at a time); the reads per second over
//! several connections at once, the three routes in turn.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{fill_history, start, Bench, Sizes};
use crate::history::History;
use crate::http::{self, Connection};
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::stats;
use crate::updraft::Home;

const USER: &str = "bench_reader";
/// How long one load may take at most: the load is bounded by its count and by this.
const LOAD_DEADLINE: Duration = Duration::from_secs(300);
/// Requests per route before anything is timed (connections, caches, the page cache).
const WARM_UP: usize = 50;

/// The W11 history W13 reads (and W11 runs on).
pub(super) fn history(sizes: &Sizes) -> History {
    History {
        dags: sizes.api_dags,
        tasks_per_dag: sizes.api_tasks_per_dag,
        runs: sizes.api_runs,
        varied_states: false,
        wide: None,
    }
}

pub fn run(bench: &Bench) -> Result<Measurement> {
    let sizes = bench.sizes;
    let history = history(sizes);
    let home = bench.home()?;
    let fill_s = fill_history(bench, &home, &history)?;

    let running = start(bench, &home, history.dags)?;
    let base = running
        .api_url()
        .context("the deployment has no API address")?;
    let auth = vec![format!(
        "Authorization: Bearer {}",
        token(bench, &home, &base, USER, "Viewer")?
    )];
    let routes = Routes::of(&history);
    let mut m = Measurement::default();
    check_answers(&base, &auth, &routes, &history, &mut m)?;

    let mut connection = Connection::open(&base)?;
    for path in routes.all() {
        for _ in 0..WARM_UP {
            connection.get(path, &auth)?;
        }
    }
    for (route, path) in [
        (ROUTE_NAMES[0], &routes.dags),
        (ROUTE_NAMES[1], &routes.runs),
        (ROUTE_NAMES[2], &routes.task_instances),
    ] {
        let one = http::load(
            &base,
            &auth,
            std::slice::from_ref(path),
            1,
            sizes.api_requests,
            LOAD_DEADLINE,
        )?;
        let (p50, p99) = route;
        m.figure(Figure::new(
            p50.0,
            p50.1,
            Unit::Millis,
            stats::percentile(&one.latencies_ms, 50.0),
        ));
        m.figure(
            Figure::new(
                p99.0,
                p99.1,
                Unit::Millis,
                stats::percentile(&one.latencies_ms, 99.0),
            )
            .goal(Goal::AtMost(20.0)),
        );
    }
    let load = http::load(
        &base,
        &auth,
        &routes.all().cloned().collect::<Vec<_>>(),
        sizes.api_connections,
        sizes.api_load_requests,
        LOAD_DEADLINE,
    )?;
    running.stop()?;

    m.figure(
        Figure::new(
            "reads_per_s",
            "authenticated reads/s, routes in turn",
            Unit::ReadsPerSecond,
            load.per_second(),
        )
        .goal(Goal::AtLeast(2000.0)),
    );
    m.figure(Figure::new(
        "load_p99_ms",
        "p99 of a read under that load",
        Unit::Millis,
        stats::percentile(&load.latencies_ms, 99.0),
    ));
    m.figure(Figure::new(
        "history_fill_s",
        "writing the history (harness, SQL)",
        Unit::Seconds,
        fill_s,
    ));
    m.count("runs", history.runs as u64);
    m.count("task_instances", history.task_instances() as u64);
    m.count("load_requests", load.latencies_ms.len() as u64);
    m.count("load_connections", sizes.api_connections as u64);
    Ok(m)
}

/// Each route's figures: (key, label) of its p50 and of its p99, timed over one connection.
type RouteFigures = ((&'static str, &'static str), (&'static str, &'static str));
const ROUTE_NAMES: [RouteFigures; 3] = [
    (
        ("dags_p50_ms", "GET dags?limit=100, p50"),
        ("dags_p99_ms", "GET dags?limit=100, p99"),
    ),
    (
        ("runs_p50_ms", "GET a DAG's runs newest first, p50"),
        ("runs_p99_ms", "GET a DAG's runs newest first, p99"),
    ),
    (
        ("tis_p50_ms", "GET one run's taskInstances, p50"),
        ("tis_p99_ms", "GET one run's taskInstances, p99"),
    ),
];

/// The three measured paths.
struct Routes {
    dags: String,
    runs: String,
    task_instances: String,
}

impl Routes {
    fn of(history: &History) -> Routes {
        let dag = History::busiest_dag();
        Routes {
            dags: "/api/v2/dags?limit=100".to_owned(),
            runs: format!("/api/v2/dags/{dag}/dagRuns?limit=100&order_by=-logical_date"),
            task_instances: format!(
                "/api/v2/dags/{dag}/dagRuns/{}/taskInstances",
                percent_encode(&history.newest_run_id())
            ),
        }
    }

    fn all(&self) -> impl Iterator<Item = &String> {
        [&self.dags, &self.runs, &self.task_instances].into_iter()
    }
}

/// A user's token: made with the CLI with this role, as an operator would, logged in over
/// HTTP.
pub(super) fn token(
    bench: &Bench,
    home: &Home,
    base: &str,
    user: &str,
    role: &str,
) -> Result<String> {
    let password = crate::postgres::random_hex(16)?;
    bench.updraft.cli(
        home,
        &[
            "users",
            "create",
            "--username",
            user,
            "--password",
            &password,
            "--role",
            role,
            "--firstname",
            "Bench",
            "--lastname",
            "Reader",
            "--email",
            "bench@example.invalid",
        ],
    )?;
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let answer = Connection::open(base)?.request(
        "POST",
        "/auth/token",
        &[],
        Some(("application/json", body.as_bytes())),
    )?;
    if !(200..300).contains(&answer.status) {
        bail!(
            "POST /auth/token answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    let value: Value = serde_json::from_slice(&answer.body).context("a token that is not JSON")?;
    value["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no access_token in {value}"))
}

/// Each route answers what the history holds, before any of them is timed.
fn check_answers(
    base: &str,
    auth: &[String],
    routes: &Routes,
    history: &History,
    m: &mut Measurement,
) -> Result<()> {
    let mut connection = Connection::open(base)?;
    let mut json = |path: &str| -> Result<Value> {
        let answer = connection.get(path, auth)?;
        if answer.status != 200 {
            bail!(
                "GET {path} answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        serde_json::from_slice(&answer.body).with_context(|| format!("GET {path}: not JSON"))
    };
    let dags = json(&routes.dags)?;
    let listed = dags["dags"].as_array().map_or(0, Vec::len);
    expect("DAGs total_entries", &dags["total_entries"], history.dags)?;
    expect_count("DAGs listed", listed, history.dags.min(100))?;

    let runs = json(&routes.runs)?;
    expect(
        "runs total_entries",
        &runs["total_entries"],
        history.runs_of(0),
    )?;
    let newest = runs["dag_runs"][0]["dag_run_id"].as_str().unwrap_or("");
    if newest != history.newest_run_id() {
        bail!(
            "the first run listed is {newest:?}, not the newest {:?}",
            history.newest_run_id()
        );
    }
    expect_count(
        "runs listed",
        runs["dag_runs"].as_array().map_or(0, Vec::len),
        history.runs_of(0).min(100),
    )?;

    let tis = json(&routes.task_instances)?;
    expect(
        "task instances total_entries",
        &tis["total_entries"],
        history.tasks_per_dag,
    )?;
    m.count("dags_listed", listed as u64);
    m.count("runs_total_entries", history.runs_of(0) as u64);
    m.count("task_instances_listed", history.tasks_per_dag as u64);
    Ok(())
}

fn expect(what: &str, value: &Value, expected: usize) -> Result<()> {
    match value.as_u64() {
        Some(v) if v == expected as u64 => Ok(()),
        _ => bail!("{what} is {value}, expected {expected}"),
    }
}

fn expect_count(what: &str, value: usize, expected: usize) -> Result<()> {
    if value != expected {
        bail!("{what}: {value}, expected {expected}");
    }
    Ok(())
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded (a path
/// segment such as a run id with `:` and `+`).
pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn run_ids_are_encoded_for_a_path() {
        assert_eq!(
            percent_encode("scheduled__2020-01-01T00:00:00+00:00"),
            "scheduled__2020-01-01T00%3A00%3A00%2B00%3A00"
        );
    }
}

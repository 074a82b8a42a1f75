//! W14 `ui`: the web UI's main views on the W11 history (100,000 runs, 1,000,000 task
//! instances), timed from outside as a browser's requests, and the grid of a DAG with 100
//! runs × 200 tasks rendered in headless Chromium.
//!
//! The history is W13's (see [`crate::history`]) with the states a UI shows (failed runs
//! stop in their middle task, the rest `upstream_failed`; skipped tasks) and one more DAG,
//! `ui_grid`: 10 layers of 20 tasks with 100 runs. An Admin made with the CLI logs in over
//! HTTP; its token goes in the `_token` cookie as after `POST /auth/login`. Each view's HTML
//! is fetched over one keep-alive connection, one request at a time (after a warm-up): the
//! time from sending the request to the end of the answer, p50 and p99 (500 requests, or as
//! many as fit in a minute, at least 20, when the view is slow). Then `chromedriver`
//! loads the `ui_grid` grid with `?runs=100` repeatedly in one headless Chromium (its static
//! files cached after the first load, as for a user who comes back) and reads the page's
//! navigation timing: navigation start → load event end, and → first contentful paint.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::api::{percent_encode, token};
use super::{fill_history, start, Bench};
use crate::browser::Browser;
use crate::history::{History, Wide, WIDE_DAG};
use crate::http::Connection;
use crate::measurement::{Figure, Goal, Measurement, Unit};
use crate::metadata::Database;
use crate::stats;

const USER: &str = "bench_admin";
/// Requests per view before anything is timed.
const WARM_UP: usize = 20;
/// Browser loads before any is timed (the first fetches the static files).
const BROWSER_WARM_UP: usize = 2;
/// How long the timed requests of one view may take: a slow view gets fewer of them.
const VIEW_BUDGET: Duration = Duration::from_secs(60);
/// Requests timed per view however slow it is.
const MIN_REQUESTS: usize = 20;

/// A measured view: its name, its p50 and p99 figures (key, label).
struct ViewFigures {
    name: &'static str,
    p50: (&'static str, &'static str),
    p99: (&'static str, &'static str),
}

const VIEWS: [ViewFigures; 10] = [
    view(
        "home",
        ("home_p50_ms", "GET / (Home), p50"),
        ("home_p99_ms", "GET / (Home), p99"),
    ),
    view(
        "dags",
        ("dags_p50_ms", "GET /dags, p50"),
        ("dags_p99_ms", "GET /dags, p99"),
    ),
    view(
        "grid",
        ("grid_p50_ms", "grid of api_000 (50,005 runs, last 25), p50"),
        ("grid_p99_ms", "grid of api_000 (50,005 runs, last 25), p99"),
    ),
    view(
        "grid100",
        (
            "grid100_p50_ms",
            "grid of ui_grid, 100 runs × 200 tasks, p50",
        ),
        (
            "grid100_p99_ms",
            "grid of ui_grid, 100 runs × 200 tasks, p99",
        ),
    ),
    view(
        "graph",
        ("graph_p50_ms", "graph of ui_grid (200 tasks), p50"),
        ("graph_p99_ms", "graph of ui_grid (200 tasks), p99"),
    ),
    view(
        "gantt",
        ("gantt_p50_ms", "Gantt of api_000's newest run, p50"),
        ("gantt_p99_ms", "Gantt of api_000's newest run, p99"),
    ),
    view(
        "run",
        ("run_p50_ms", "a run of api_000 (its page), p50"),
        ("run_p99_ms", "a run of api_000 (its page), p99"),
    ),
    view(
        "task",
        ("task_p50_ms", "a task instance's page, p50"),
        ("task_p99_ms", "a task instance's page, p99"),
    ),
    view(
        "cluster",
        ("cluster_p50_ms", "GET /cluster, p50"),
        ("cluster_p99_ms", "GET /cluster, p99"),
    ),
    view(
        "variables",
        ("variables_p50_ms", "GET /admin/variables, p50"),
        ("variables_p99_ms", "GET /admin/variables, p99"),
    ),
];

const fn view(
    name: &'static str,
    p50: (&'static str, &'static str),
    p99: (&'static str, &'static str),
) -> ViewFigures {
    ViewFigures { name, p50, p99 }
}

/// W14's history: W13's, with varied states and the wide DAG.
pub fn history(bench: &Bench) -> History {
    let s = bench.sizes;
    History {
        dags: s.api_dags,
        tasks_per_dag: s.api_tasks_per_dag,
        runs: s.api_runs,
        varied_states: true,
        wide: Some(Wide {
            layers: s.ui_grid_layers,
            width: s.ui_grid_width,
            runs: s.ui_grid_runs,
        }),
    }
}

/// Times GETs of `path` one at a time over `connection`: `requests` of them, or as many as
/// [`VIEW_BUDGET`] allows (at least [`MIN_REQUESTS`]) when the view is slow. Milliseconds
/// from sending each request to the end of its answer; every answer must be 200.
fn time_view(
    connection: &mut Connection,
    path: &str,
    headers: &[String],
    requests: usize,
) -> Result<Vec<f64>> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests);
    while latencies.len() < requests
        && (latencies.len() < MIN_REQUESTS || started.elapsed() < VIEW_BUDGET)
    {
        let sent = Instant::now();
        let answer = connection.get(path, headers)?;
        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
        if answer.status != 200 {
            bail!("GET {path} answered {}", answer.status);
        }
    }
    Ok(latencies)
}

/// A view's path and a text its page must hold.
fn path_of(name: &str, history: &History) -> (String, String) {
    let dag = History::busiest_dag();
    let newest = history.newest_run_id();
    let run = format!("/dags/{dag}/runs/{}", percent_encode(&newest));
    let wide_runs = history.wide.map_or(0, |w| w.runs);
    match name {
        "home" => ("/".to_owned(), "</html>".to_owned()),
        "dags" => ("/dags".to_owned(), dag),
        "grid" => (format!("/dags/{dag}"), newest),
        "grid100" => (
            format!("/dags/{WIDE_DAG}?runs={wide_runs}"),
            WIDE_DAG.to_owned(),
        ),
        "graph" => (
            format!("/dags/{WIDE_DAG}/graph"),
            crate::dag_folder::task_id(0),
        ),
        "gantt" => (
            format!("/dags/{dag}/gantt?run_id={}", percent_encode(&newest)),
            crate::dag_folder::task_id(0),
        ),
        "run" => (run, newest),
        "task" => (
            format!("{run}/tasks/{}", crate::dag_folder::task_id(0)),
            crate::dag_folder::task_id(0),
        ),
        "cluster" => ("/cluster".to_owned(), "</html>".to_owned()),
        _ => ("/admin/variables".to_owned(), "</html>".to_owned()),
    }
}

pub fn run(bench: &Bench) -> Result<Measurement> {
    if bench.database != Database::Sqlite {
        bail!("W14 runs on SQLite (the standalone) only");
    }
    let sizes = bench.sizes;
    let history = history(bench);
    let home = bench.home()?;
    let fill_s = fill_history(bench, &home, &history)?;

    let running = start(bench, &home, history.all_dags())?;
    let base = running
        .api_url()
        .context("the deployment has no API address")?;
    let token = token(bench, &home, &base, USER, "Admin")?;
    let cookie = vec![format!("Cookie: _token={token}")];
    let mut m = Measurement::default();

    let mut connection = Connection::open(&base)?;
    let paths: Vec<(String, String)> = VIEWS.iter().map(|v| path_of(v.name, &history)).collect();
    for (view, (path, expected)) in VIEWS.iter().zip(&paths) {
        let answer = connection.get(path, &cookie)?;
        let body = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 || !body.contains(expected.as_str()) {
            bail!(
                "the {} view (GET {path}) answered {} without {expected:?}: {}",
                view.name,
                answer.status,
                body.chars().take(300).collect::<String>()
            );
        }
        if view.name == "grid100" {
            m.count("grid100_html_bytes", answer.body.len() as u64);
        }
        for _ in 0..WARM_UP.min(sizes.ui_requests) {
            connection.get(path, &cookie)?;
        }
    }
    for (view, (path, _)) in VIEWS.iter().zip(&paths) {
        let latencies = time_view(&mut connection, path, &cookie, sizes.ui_requests)?;
        m.figure(Figure::new(
            view.p50.0,
            view.p50.1,
            Unit::Millis,
            stats::percentile(&latencies, 50.0),
        ));
        m.figure(
            Figure::new(
                view.p99.0,
                view.p99.1,
                Unit::Millis,
                stats::percentile(&latencies, 99.0),
            )
            .goal(Goal::AtMost(50.0)),
        );
        if latencies.len() < sizes.ui_requests {
            eprintln!(
                "updraft-bench: W14: {} timed {} requests, not {}: the view is slower than \
                 {VIEW_BUDGET:?} for them all",
                view.name,
                latencies.len(),
                sizes.ui_requests
            );
        }
    }

    let grid = paths
        .iter()
        .zip(&VIEWS)
        .find(|(_, v)| v.name == "grid100")
        .map(|(p, _)| p.0.clone())
        .context("no grid100 view")?;
    browser_render(
        &base,
        &token,
        &grid,
        &history,
        sizes.ui_browser_loads,
        &mut m,
    )?;
    running.stop()?;

    m.figure(Figure::new(
        "history_fill_s",
        "writing the history (harness, SQL)",
        Unit::Seconds,
        fill_s,
    ));
    m.count("runs", history.all_runs() as u64);
    m.count("task_instances", history.task_instances() as u64);
    Ok(m)
}

/// Waits until the grid page's script has put every row into the table; when that was, in
/// milliseconds since navigation start.
fn grid_complete(browser: &mut Browser) -> Result<f64> {
    let at = browser.execute_async(
        "const done = arguments[arguments.length - 1];\n\
         (function check() {\n\
           const at = document.documentElement.getAttribute('data-grid-complete');\n\
           if (at) done(Number(at)); else requestAnimationFrame(check);\n\
         })();",
    )?;
    at.as_f64()
        .with_context(|| format!("the grid page answered {at} for when it was complete"))
}

/// Loads the grid `loads` times (after a warm-up) in headless Chromium and records its
/// render times; checks first that every cell is there.
fn browser_render(
    base: &str,
    token: &str,
    grid: &str,
    history: &History,
    loads: usize,
    m: &mut Measurement,
) -> Result<()> {
    let wide = history.wide.context("W14 without its wide DAG")?;
    let mut browser = Browser::start()?;
    browser.navigate(&format!("{base}/login"))?;
    browser.add_cookie("_token", token)?;
    let url = format!("{base}{grid}");
    browser.navigate(&url)?;
    grid_complete(&mut browser)?;
    let cells = browser
        .execute("return document.querySelectorAll('table.grid td').length;")?
        .as_u64()
        .unwrap_or(0);
    let expected = (wide.runs * wide.tasks()) as u64;
    if cells != expected {
        bail!("the grid at {url} shows {cells} cells, expected {expected}");
    }
    m.count("grid_cells", cells);
    for _ in 0..BROWSER_WARM_UP {
        browser.navigate(&url)?;
    }
    let (mut load, mut fcp, mut dcl, mut response) = (vec![], vec![], vec![], vec![]);
    let mut complete = vec![];
    for _ in 0..loads {
        browser.navigate(&url)?;
        complete.push(grid_complete(&mut browser)?);
        let t = browser.timing()?;
        load.push(t.load_end);
        dcl.push(t.dom_content_loaded);
        response.push(t.response_end);
        if let Some(f) = t.first_contentful_paint {
            fcp.push(f);
        }
    }
    m.figure(Figure::new(
        "grid_browser_response_ms",
        "browser: navigation start → HTML received, median",
        Unit::Millis,
        stats::median(&response),
    ));
    m.figure(Figure::new(
        "grid_browser_fcp_ms",
        "browser: navigation start → first contentful paint, median",
        Unit::Millis,
        if fcp.is_empty() {
            f64::NAN
        } else {
            stats::median(&fcp)
        },
    ));
    m.figure(Figure::new(
        "grid_browser_dcl_ms",
        "browser: navigation start → DOMContentLoaded end, median",
        Unit::Millis,
        stats::median(&dcl),
    ));
    m.figure(
        Figure::new(
            "grid_browser_load_ms",
            "browser: navigation start → load event end, median",
            Unit::Millis,
            stats::median(&load),
        )
        .goal(Goal::AtMost(300.0)),
    );
    m.figure(Figure::new(
        "grid_browser_complete_ms",
        "browser: navigation start → every row in the table (the rows past the first screen \
         arrive after the first paint), median",
        Unit::Millis,
        stats::median(&complete),
    ));
    m.figure(Figure::new(
        "grid_browser_load_max_ms",
        "browser: navigation start → load event end, slowest",
        Unit::Millis,
        stats::max(&load),
    ));
    m.count("browser_loads", loads as u64);
    Ok(())
}

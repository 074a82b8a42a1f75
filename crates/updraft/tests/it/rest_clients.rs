//! Third-party clients against the public REST API of a real `updraft standalone`:
//! schemathesis fuzzes every operation of `/openapi.json`, and Airflow's own Python client
//! (`apache-airflow-client`) lists, pauses, triggers, waits, reads logs, sets a variable and
//! creates a pool. Both log in as the `admin` user that standalone creates.

use std::io::{Read, Write};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::fixture::{eventually, Home, Standalone};
use crate::python;

/// Two tasks: `greet` logs a known line, `after` runs once it succeeded.
const DAG: &str = "\
dag_id: client_check
tags: [clients]
tasks:
  - task_id: greet
    bash_command: echo hello from updraft
  - task_id: after
    bash_command: 'true'
    dependencies: [greet]
";

/// Bounds of the schemathesis run: a few examples per operation, a fixed seed (the same cases
/// on every run, so a failure reproduces), and no request waits long (a `…/wait` on a run that
/// does not end would otherwise hold the run).
const SCHEMATHESIS_ARGS: &[&str] = &[
    "--checks",
    "not_a_server_error,response_schema_conformance",
    "--max-examples",
    "10",
    "--seed",
    "20261201",
    // One worker: Hypothesis's lambda-source cache is not thread-safe (a "recursion depth
    // mismatch" error with two).
    "--workers",
    "1",
    // Advice such as "operations mostly met 404s" is not a failure of the API.
    "--warnings",
    "off",
    "--request-timeout",
    "10",
    // Logging out would revoke the token the rest of the run uses.
    "--exclude-path",
    "/auth/logout",
    // `…/wait` streams until its run ends, and a run ends only if its tasks can run: once a
    // generated request has set the default pool's slots to 0, it never does, and the
    // stream's lines keep the request timeout from firing. Its own tests cover it.
    "--exclude-path-regex",
    "/wait$",
];

/// `http://127.0.0.1:PORT` of the running standalone.
fn base_url(standalone: &Standalone) -> String {
    standalone
        .health_url
        .strip_suffix("/api/v2/monitor/health")
        .unwrap_or_else(|| panic!("unexpected health address {}", standalone.health_url))
        .to_string()
}

/// The password standalone generated for `admin` on first start.
pub(crate) fn admin_password(home: &Home) -> String {
    let path = home.path().join("standalone_admin_password.txt");
    eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&path)
            .ok()
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    })
    .unwrap_or_else(|| panic!("standalone wrote no {}", path.display()))
}

/// `POST /auth/token` as `admin`; the access token.
fn admin_token(base: &str, password: &str) -> String {
    let body = serde_json::json!({"username": "admin", "password": password}).to_string();
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /auth/token HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains(" 201 ") || head.contains(" 200 "),
        "{response}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let venv = python::venv();
    let home = Home::new();
    home.write_dag("client_check.yaml", DAG);
    let standalone = home.standalone();
    let base = base_url(&standalone);
    // A finished run, so that runs, task instances, tries and logs exist to be read.
    let run_id = home.trigger("client_check");
    home.wait_for_run("client_check", &run_id, Duration::from_secs(60));
    let token = admin_token(&base, &admin_password(&home));

    let out = Command::new(venv.join("bin/schemathesis"))
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(SCHEMATHESIS_ARGS)
        .env("NO_COLOR", "1")
        .current_dir(home.path())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // It really exercised the API: every selected operation was tested, none failed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let selected = summary_number(&stdout, "Selected:").unwrap_or_else(|| panic!("{text}"));
    let tested = summary_number(&stdout, "Tested:").unwrap_or_else(|| panic!("{text}"));
    assert!(selected > 1, "only {selected} operations selected:\n{text}");
    assert_eq!(tested, selected, "not every operation was tested:\n{text}");
    // Warnings (operations that mostly met 404s, say) are advice, not failures; every
    // generated case must have passed.
    let cases = stdout
        .lines()
        .skip_while(|line| !line.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no test-case summary:\n{text}"));
    let counts: Vec<&str> = cases.split_whitespace().collect();
    assert!(
        matches!(counts.as_slice(), [generated, "generated,", passed, "passed"] if generated == passed),
        "not every generated case passed ({cases}):\n{text}"
    );
    assert!(!stdout.contains("failure"), "{text}");
}

/// The number after `label` in schemathesis's summary (`Selected: 40/41` gives 40).
fn summary_number(stdout: &str, label: &str) -> Option<u64> {
    let line = stdout.lines().find_map(|l| l.trim().strip_prefix(label))?;
    line.trim().split('/').next()?.trim().parse().ok()
}

#[test]
fn the_airflow_python_client_drives_updraft() {
    let venv = python::venv();
    let home = Home::new();
    home.write_dag("client_check.yaml", DAG);
    let standalone = home.standalone();
    let base = base_url(&standalone);
    let password = admin_password(&home);
    let script = python::workspace().join("tests/python/airflow_client_check.py");

    let out = Command::new(venv.join("bin/python"))
        .arg(&script)
        .args([&base, "admin", &password, "client_check"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "the Airflow client check failed:\n{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("all 8 steps ok"),
        "{text}"
    );
    // What the client did is in updraft, as the CLI sees it.
    let variable = home.ok(&["variables", "get", "client_check"]);
    assert_eq!(variable.trim(), "42");
    let pools = home.json(&["pools", "list"]);
    let pool = pools
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "client_pool")
        .unwrap_or_else(|| panic!("no client_pool in {pools:#}"));
    assert_eq!(pool["slots"], 3);
    let states = home.json(&[
        "tasks",
        "states-for-dag-run",
        "client_check",
        "triggered_by_airflow_client",
    ]);
    assert_eq!(states["state"], "success", "{states:#}");
}

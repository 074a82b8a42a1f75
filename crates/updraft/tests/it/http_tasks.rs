//! HTTP tasks (`operator: http`, Airflow's `HttpOperator`) against a server the test starts on
//! loopback: the request as the connection and the task say, the response as XCom, and a
//! status the task does not accept as a failure with the status in the log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::fixture::{state_of, Home};

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    method: String,
    pub(crate) target: String,
    /// Names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    body: String,
}

/// Answers `/items…` with a JSON list, `/created` with 201, anything else with 404.
pub(crate) fn serve() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let target = parts.next().unwrap_or_default().to_owned();
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.trim_end().split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, text) = if target.starts_with("/items") {
                ("200 OK", r#"{"items": [{"id": 7}, {"id": 8}]}"#)
            } else if target == "/created" {
                ("201 Created", "made it")
            } else {
                ("404 Not Found", "no such thing")
            };
            record.lock().unwrap().push(Seen {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    (port, seen)
}

const HTTP_DAG: &str = r#"
dag_id: http_calls
params: {kind: widgets}
tasks:
  - task_id: first_id
    operator: http
    http:
      http_conn_id: items_api
      method: GET
      endpoint: "items/{{ params.kind }}"
      data: {day: "{{ ds }}"}
      response_filter: /items/0/id
  - task_id: create
    operator: http
    dependencies: [first_id]
    http:
      http_conn_id: items_api
      endpoint: created
      data: '{"id": {{ ti.xcom_pull(task_ids="first_id") }}}'
      headers: {Content-Type: application/json}
      expected_status: [201]
      log_response: true
  - task_id: missing
    operator: http
    http:
      http_conn_id: items_api
      method: GET
      endpoint: nowhere
"#;

#[test]
fn http_tasks_call_the_connections_endpoint_and_keep_the_response() {
    let (port, seen) = serve();
    let home = Home::new();
    home.write_dag("http_calls.yaml", HTTP_DAG);
    let connection = format!("http://robot:s3cret-pass@127.0.0.1:{port}");
    let out = home
        .command()
        .args([
            "dags",
            "test",
            "http_calls",
            "2024-03-01",
            "--output",
            "json",
        ])
        .env("AIRFLOW_CONN_ITEMS_API", &connection)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(doc["state"], "failed", "`missing` fails the run: {doc:#}");
    let run_id = doc["run_id"].as_str().unwrap().to_owned();
    let states = home.json(&["tasks", "states-for-dag-run", "http_calls", &run_id]);
    assert_eq!(state_of(&states, "first_id"), "success", "{states:#}");
    assert_eq!(state_of(&states, "create"), "success");
    assert_eq!(state_of(&states, "missing"), "failed");

    let seen = seen.lock().unwrap().clone();
    let get = seen
        .iter()
        .find(|s| s.target.starts_with("/items"))
        .unwrap();
    assert_eq!(get.method, "GET");
    assert_eq!(get.target, "/items/widgets?day=2024-03-01");
    let auth = get
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap();
    assert!(auth.1.starts_with("Basic "), "{auth:?}");
    let post = seen.iter().find(|s| s.target == "/created").unwrap();
    assert_eq!(post.method, "POST");
    assert_eq!(post.body, r#"{"id": 7}"#);
    assert!(post
        .headers
        .iter()
        .any(|(n, v)| n == "content-type" && v == "application/json"));

    let db = rusqlite::Connection::open(home.path().join("updraft.db")).unwrap();
    let xcom = |task: &str| -> Option<Value> {
        db.query_row(
            "SELECT value FROM xcom WHERE task_id = ?1 AND key = 'return_value'",
            [task],
            |row| row.get::<_, String>(0),
        )
        .ok()
        .map(|text| serde_json::from_str(&text).unwrap())
    };
    assert_eq!(xcom("first_id"), Some(Value::from(7)));
    assert_eq!(xcom("create"), Some(Value::from("made it")));

    let log = home.ok(&["tasks", "logs", "http_calls", &run_id, "create"]);
    assert!(
        log.contains("Response: 201 Created") && log.contains("made it"),
        "{log}"
    );
    let log = home.ok(&["tasks", "logs", "http_calls", &run_id, "missing"]);
    assert!(log.contains("HTTP error: 404:Not Found"), "{log}");
    assert!(
        log.contains("no such thing"),
        "the error's body is logged: {log}"
    );
    assert!(!log.contains("s3cret-pass"), "{log}");
}

#[test]
fn an_http_task_without_its_request_is_an_import_error() {
    let home = Home::new();
    home.write_dag(
        "broken_http.yaml",
        "dag_id: broken_http\ntasks:\n  - task_id: t\n    operator: http\n",
    );
    home.write_dag(
        "bad_pointer.yaml",
        "dag_id: bad_pointer\ntasks:\n  - task_id: t\n    operator: http\n    http: {endpoint: x, response_filter: items.0}\n",
    );
    let errors = home.ok(&["dags", "list-import-errors"]);
    assert!(errors.contains("operator `http` needs `http:`"), "{errors}");
    assert!(errors.contains("is a JSON pointer"), "{errors}");
}

//! Backfills through the binary on SQLite: `backfill create` (and its `dags backfill` alias)
//! makes the standalone scheduler create one run per logical date, a dry run creates
//! nothing, and the reprocess behaviours decide what happens to dates that have a run.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixture::Home;

const DAG: &str = "dag_id: daily\nschedule: \"@daily\"\nstart_date: 2024-01-01\ncatchup: false\n\
tasks:\n  - task_id: t\n    retries: 0\n    bash_command: '[ \"{{ ds }}\" != 2024-01-02 ] || test -e {gate}'\n";

fn backfill_runs(home: &Home) -> Vec<Value> {
    let runs = home.json(&["dags", "list-runs", "daily"]);
    let mut runs: Vec<Value> = runs
        .as_array()
        .expect("a list of runs")
        .iter()
        .filter(|r| {
            r["logical_date"]
                .as_str()
                .is_some_and(|d| d.starts_with("2024"))
        })
        .cloned()
        .collect();
    runs.sort_by_key(|r| r["logical_date"].as_str().unwrap_or_default().to_string());
    runs
}

/// Waits until backfill `id` is completed and returns its record.
fn wait_completed(home: &Home, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let all = home.json(&["backfill", "list", "--dag-id", "daily"]);
        let found = all
            .as_array()
            .and_then(|a| a.iter().find(|b| b["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no backfill {id} in {all:#}"));
        if !found["completed_at"].is_null() {
            return found;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(home.path().join("standalone.log")).unwrap_or_default();
            panic!(
                "backfill {id} did not complete: {found:#}\n{:#?}\n{log}",
                backfill_runs(home)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn actions(dry_run: &Value) -> Vec<(String, String)> {
    dry_run
        .as_array()
        .expect("a list of dates")
        .iter()
        .map(|d| {
            let action = match (
                d["exception_reason"].as_str(),
                d["reprocesses_run"].as_bool(),
            ) {
                (Some(reason), _) => reason.to_string(),
                (None, Some(true)) => "reprocess".to_string(),
                _ => "create".to_string(),
            };
            (
                d["logical_date"].as_str().unwrap_or_default()[..10].to_string(),
                action,
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn backfill_creates_one_run_per_date_and_reprocesses_as_asked() {
    let home = Home::new();
    let gate = home.path().join("gate");
    home.write_dag(
        "daily.yaml",
        &DAG.replace("{gate}", &gate.display().to_string()),
    );

    // A dry run lists the dates and creates nothing.
    let dry = home.json(&[
        "backfill",
        "create",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-03",
        "--dry-run",
    ]);
    assert_eq!(
        actions(&dry),
        pairs(&[
            ("2024-01-01", "create"),
            ("2024-01-02", "create"),
            ("2024-01-03", "create")
        ])
    );
    assert!(home
        .json(&["backfill", "list"])
        .as_array()
        .unwrap()
        .is_empty());

    // Newest first, one at a time: the runs never overlap and start newest first. Created
    // before the scheduler starts, so that the second backfill below meets it unfinished.
    let created = home.json(&[
        "dags",
        "backfill",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-03",
        "--max-active-runs",
        "1",
        "--run-backwards",
    ]);
    let id = created[0]["id"].as_i64().expect("the backfill's id");
    assert_eq!(created[0]["max_active_runs"], 1);
    assert_eq!(created[0]["run_backwards"], true);
    // One backfill of a DAG at a time.
    let second = home.run(&[
        "backfill",
        "create",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-05",
        "--to-date",
        "2024-01-06",
    ]);
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already a running backfill"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    // Nothing runs a backfill but a scheduler: the dry run, the refused one, and this one
    // before any scheduler ran, created no runs.
    assert!(
        backfill_runs(&home).is_empty(),
        "runs exist before any scheduler ran"
    );
    let _standalone = home.standalone();
    wait_completed(&home, id);
    let runs = backfill_runs(&home);
    let summary: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r["run_type"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("backfill", "success"),
            ("backfill", "failed"),
            ("backfill", "success")
        ]
    );
    let start = |i: usize| runs[i]["start_date"].as_str().unwrap().to_string();
    let end = |i: usize| runs[i]["end_date"].as_str().unwrap().to_string();
    assert!(
        end(2) <= start(1) && end(1) <= start(0),
        "runs overlapped or ran oldest first: {runs:#?}"
    );

    // `none` skips every date with a run; `failed` runs the failed one again.
    std::fs::write(&gate, "").unwrap();
    let dry = home.json(&[
        "backfill",
        "create",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-04",
        "--dry-run",
    ]);
    assert_eq!(
        actions(&dry),
        pairs(&[
            ("2024-01-01", "already exists"),
            ("2024-01-02", "already exists"),
            ("2024-01-03", "already exists"),
            ("2024-01-04", "create"),
        ])
    );
    let created = home.json(&[
        "backfill",
        "create",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-01",
        "--to-date",
        "2024-01-04",
        "--reprocess-behavior",
        "failed",
        "--dag-run-conf",
        "{\"k\": 1}",
    ]);
    let id = created[0]["id"].as_i64().unwrap();
    wait_completed(&home, id);
    let runs = backfill_runs(&home);
    let summary: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r["logical_date"].as_str().unwrap()[..10].to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        pairs(&[
            ("2024-01-01", "success"),
            ("2024-01-02", "success"),
            ("2024-01-03", "success"),
            ("2024-01-04", "success"),
        ]),
        "the failed date is run again in its own run, not a second one"
    );

    // `completed` runs every finished date again.
    let dry = home.json(&[
        "backfill",
        "create",
        "--dag-id",
        "daily",
        "--from-date",
        "2024-01-03",
        "--to-date",
        "2024-01-04",
        "--reprocess-behavior",
        "completed",
        "--dry-run",
    ]);
    assert_eq!(
        actions(&dry),
        pairs(&[("2024-01-03", "reprocess"), ("2024-01-04", "reprocess")])
    );
}

#[test]
fn backfill_refuses_bad_requests_clearly() {
    let home = Home::new();
    home.write_dag("daily.yaml", &DAG.replace("{gate}", "/nonexistent"));
    home.write_dag(
        "manual.yaml",
        "tasks:\n  - task_id: t\n    bash_command: 'true'\n",
    );
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "--dag-id",
                "nope",
                "--from-date",
                "2024-01-01",
                "--to-date",
                "2024-01-02",
            ],
            "not found",
        ),
        (
            &[
                "--dag-id",
                "daily",
                "--from-date",
                "2024-01-03",
                "--to-date",
                "2024-01-02",
            ],
            "is after",
        ),
        (
            &[
                "--dag-id",
                "manual",
                "--from-date",
                "2024-01-01",
                "--to-date",
                "2024-01-02",
            ],
            "no schedule",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["backfill", "create"];
        all.extend_from_slice(args);
        let out = home.run(&all);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(home
        .json(&["backfill", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

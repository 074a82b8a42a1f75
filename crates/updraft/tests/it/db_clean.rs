//! `updraft db clean` through the binary on a SQLite file: the confirmation, the dry run, the
//! deletion with its archive tables, and the log files of the deleted tries.

use std::path::PathBuf;
use std::time::Duration;

use crate::fixture::*;

const DAG: &str = "tasks:\n  - task_id: say\n    bash_command: echo hello from say\n  - task_id: after\n    bash_command: echo after\n    dependencies: [say]\n";

/// Every finished run is older than this.
fn tomorrow() -> String {
    (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()
}

fn log_files(home: &Home, run_id: &str) -> Vec<PathBuf> {
    let dir = home
        .path()
        .join("logs")
        .join("dag_id=d")
        .join(format!("run_id={run_id}"));
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn run_ids(home: &Home) -> Vec<String> {
    let runs = home.json(&["dags", "list-runs", "d"]);
    let mut ids: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn db_clean_deletes_finished_runs_with_their_log_files_and_keeps_unfinished_ones() {
    let home = Home::new();
    home.write_dag("d.yaml", DAG);
    let mut finished = Vec::new();
    for date in ["2026-01-01", "2026-01-02"] {
        let out = home.json(&["dags", "test", "d", date]);
        assert_eq!(out["state"], "success");
        finished.push(out["run_id"].as_str().unwrap().to_string());
    }
    for run_id in &finished {
        assert_eq!(log_files(&home, run_id).len(), 2, "one log per task");
    }
    // Nothing runs it: it stays queued, and so stays.
    let queued = home.trigger("d");
    let before = tomorrow();

    // Without --yes the user must type `delete rows`; stdin is empty here.
    let refused = home.run(&["db", "clean", "--clean-before-timestamp", &before]);
    assert_eq!(refused.status.code(), Some(1));
    let prompt = String::from_utf8_lossy(&refused.stdout);
    assert!(
        prompt.contains("You have requested that we purge all data prior to")
            && prompt.contains("Enter 'delete rows' (without quotes) to proceed."),
        "{prompt}"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("User did not confirm; exiting."),
        "{refused:?}"
    );

    let dry = home.json(&[
        "db",
        "clean",
        "--clean-before-timestamp",
        &before,
        "--dry-run",
    ]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["rows"]["dag_run"], 2);
    assert_eq!(dry["rows"]["task_instance"], 4);
    assert_eq!(dry["rows"]["task_instance_history"], 4);
    assert_eq!(run_ids(&home).len(), 3, "a dry run deletes nothing");
    assert_eq!(log_files(&home, &finished[0]).len(), 2);

    let text = home.ok(&[
        "db",
        "clean",
        "--clean-before-timestamp",
        &before,
        "--tables",
        "dag_run",
        "--yes",
        "--batch-size",
        "1",
    ]);
    assert!(text.contains("rows deleted"), "{text}");
    assert!(
        text.contains("Deleted ") && text.contains(" in 2 batches; removed 4 log files."),
        "{text}"
    );
    assert!(text.contains("Archived in _updraft_deleted__"), "{text}");
    assert_eq!(run_ids(&home), vec![queued.clone()]);
    for run_id in &finished {
        assert_eq!(log_files(&home, run_id), Vec::<PathBuf>::new());
        assert!(
            !home
                .path()
                .join("logs/dag_id=d")
                .join(format!("run_id={run_id}"))
                .exists(),
            "the run's empty log folder goes too"
        );
    }
    let states = home.json(&["tasks", "states-for-dag-run", "d", &queued]);
    assert_eq!(states["state"], "queued");

    let again = home.json(&[
        "db",
        "clean",
        "--clean-before-timestamp",
        &before,
        "--skip-archive",
        "--yes",
    ]);
    assert_eq!(again["rows"]["dag_run"], 0);
    assert_eq!(again["archive_tables"], serde_json::json!([]));

    // `db drop-archived` asks too, then drops the archives of the tables named.
    let refused = home.run(&["db", "drop-archived"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stdout)
            .contains("Enter 'drop archived tables' (without quotes) to proceed."),
        "{refused:?}"
    );
    let dropped = home.ok(&["db", "drop-archived", "--tables", "xcom", "--yes"]);
    assert!(
        dropped.starts_with("Dropped table _updraft_deleted__xcom__")
            && dropped.lines().count() == 1,
        "{dropped}"
    );
    let dropped = home.ok(&["db", "drop-archived", "-y"]);
    assert_eq!(
        dropped.lines().count(),
        3,
        "dag_run, task_instance, task_instance_history: {dropped}"
    );
    assert_eq!(
        home.ok(&["db", "drop-archived", "-y"]).trim(),
        "No archived tables to drop."
    );
}

#[test]
fn db_clean_refuses_unknown_tables_and_timestamps() {
    let home = Home::new();
    for (args, message) in [
        (
            vec!["--clean-before-timestamp", "2026-01-01", "--tables", "dag"],
            "unknown table \"dag\" for --tables: choose from dag_run, task_instance",
        ),
        (
            vec!["--clean-before-timestamp", "last tuesday"],
            "invalid --clean-before-timestamp \"last tuesday\"",
        ),
    ] {
        let mut all = vec!["db", "clean", "--yes"];
        all.extend(args);
        let out = home.run(&all);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
}

#[test]
fn standalone_applies_the_retention_to_finished_runs() {
    let home = Home::new();
    std::fs::write(
        home.path().join("updraft.toml"),
        "[database]\nretention = \"1s\"\nretention_interval = \"1s\"\n",
    )
    .unwrap();
    let marks = home.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    home.write_dag(
        "d.yaml",
        &format!(
            "tasks:\n  - task_id: slow\n    bash_command: sleep 3; touch {}/{{{{ run_id }}}}\n",
            marks.display()
        ),
    );
    let _standalone = home.standalone();
    let run_id = home.trigger("d");
    // The run is older than the retention long before it finishes, and stays until then.
    let mark = marks.join(&run_id);
    let mut seen_running = false;
    let gone = eventually(Duration::from_secs(60), || {
        let ids = run_ids(&home);
        if !ids.contains(&run_id) {
            return Some(());
        }
        seen_running |= !mark.exists();
        None
    });
    assert!(
        gone.is_some(),
        "the finished run was never deleted\n{}",
        std::fs::read_to_string(home.path().join("standalone.log")).unwrap_or_default()
    );
    assert!(seen_running, "the run was seen before its task finished");
    assert!(mark.exists(), "the run was deleted before its task ran");
    assert_eq!(log_files(&home, &run_id), Vec::<PathBuf>::new());
}

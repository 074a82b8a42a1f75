//! The DAG folder across CLI processes: what one process loaded is recorded in the database,
//! so the next one parses only the files that changed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use updraft_store::Store;

use crate::fixture::Home;

fn pipeline(schedule: &str) -> String {
    format!(
        "schedule: '{schedule}'\nstart_date: 2024-01-01\ntasks:\n  - task_id: a\n    bash_command: echo a\n  - task_id: b\n    bash_command: echo b\n    dependencies: [a]\n"
    )
}

/// Gives files an mtime this long ago, so that a scan trusts their (mtime, size) (files
/// modified within 2 s of being read are read again).
fn set_age(paths: &[&Path], ago: Duration) {
    for path in paths {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// What the scan of `updraft ARGS` did: (files unchanged since their record, read, parsed).
fn scan(home: &Home, args: &[&str]) -> (u64, u64, u64) {
    let out = home
        .command()
        .args(args)
        .env("UPDRAFT_LOG", "updraft::dag_processor=debug")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "updraft {args:?} failed: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("DAG folder scanned"))
        .unwrap_or_else(|| panic!("no scan logged: {stderr}"));
    let field = |name: &str| -> u64 {
        let start = line.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        line[start..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("unchanged"), field("read"), field("parsed"))
}

fn list(home: &Home) -> (u64, u64, u64) {
    scan(home, &["dags", "list"])
}

/// The current version of `dag_id`, read from the database.
fn version(home: &Home, dag_id: &str) -> i64 {
    let path = home.path().join("updraft.db");
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async {
            let store = updraft_store_sqlite::SqliteStore::open(&path).unwrap();
            store.get_dag(dag_id).await.unwrap().version
        })
}

fn schedule_of(home: &Home, dag_id: &str) -> String {
    let dags = home.json(&["dags", "list"]);
    dags.as_array()
        .unwrap()
        .iter()
        .find(|d| d["dag_id"] == dag_id)
        .and_then(|d| d["schedule"].as_str())
        .unwrap_or_else(|| panic!("no DAG {dag_id} in {dags:#}"))
        .to_string()
}

#[test]
fn a_warm_dags_list_parses_nothing() {
    let home = Home::new();
    for i in 0..20 {
        home.write_dag(&format!("dag_{i:02}.yaml"), &pipeline("0 1 * * *"));
    }
    let files: Vec<_> = (0..20)
        .map(|i| home.dags().join(format!("dag_{i:02}.yaml")))
        .collect();
    set_age(&files.iter().map(|p| p.as_path()).collect::<Vec<_>>(), HOUR);
    assert_eq!(list(&home), (0, 20, 20), "cold: everything is parsed");
    assert_eq!(
        list(&home),
        (20, 20, 0),
        "warm: every file is read, none parsed"
    );
    assert_eq!(home.json(&["dags", "list"]).as_array().unwrap().len(), 20);
    assert_eq!(version(&home, "dag_07"), 1);

    // A change that keeps the size and an old mtime (a file deployed with fixed timestamps)
    // is seen: records save the parsing, never the reading.
    let a = home.dags().join("dag_00.yaml");
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::write(&a, pipeline("0 2 * * *")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(list(&home), (19, 20, 1));
    assert_eq!(schedule_of(&home, "dag_00"), "0 2 * * *");
    assert_eq!(version(&home, "dag_00"), 2);
}

#[test]
fn an_edited_dag_file_is_published_as_a_new_version() {
    let home = Home::new();
    home.write_dag("a.yaml", &pipeline("0 1 * * *"));
    home.write_dag("b.yaml", &pipeline("0 1 * * *"));
    let (a, b) = (home.dags().join("a.yaml"), home.dags().join("b.yaml"));
    set_age(&[&a, &b], HOUR);
    list(&home);

    home.write_dag("a.yaml", &pipeline("0 * * * *"));
    set_age(&[&a], HOUR / 2);
    assert_eq!(list(&home), (1, 2, 1));
    assert_eq!(schedule_of(&home, "a"), "0 * * * *");
    assert_eq!((version(&home, "a"), version(&home, "b")), (2, 1));
}

#[test]
fn a_touched_dag_file_is_read_but_not_published_again() {
    let home = Home::new();
    home.write_dag("a.yaml", &pipeline("0 1 * * *"));
    let a = home.dags().join("a.yaml");
    set_age(&[&a], HOUR);
    list(&home);

    set_age(&[&a], HOUR / 2);
    assert_eq!(list(&home), (1, 1, 0), "read and hashed, not parsed");
    assert_eq!(version(&home, "a"), 1);
    assert_eq!(list(&home), (1, 1, 0), "still not parsed again");
}

#[test]
fn a_deleted_dag_file_removes_its_dag_on_a_warm_scan() {
    let home = Home::new();
    home.write_dag("a.yaml", &pipeline("0 1 * * *"));
    home.write_dag("b.yaml", &pipeline("0 1 * * *"));
    let (a, b) = (home.dags().join("a.yaml"), home.dags().join("b.yaml"));
    set_age(&[&a, &b], HOUR);
    list(&home);

    std::fs::remove_file(&a).unwrap();
    assert_eq!(list(&home), (1, 1, 0));
    let dags = home.json(&["dags", "list"]);
    assert_eq!(dags.as_array().unwrap().len(), 1);
    assert_eq!(dags[0]["dag_id"], "b");

    // Back with the same content: the same version, active again.
    home.write_dag("a.yaml", &pipeline("0 1 * * *"));
    set_age(&[&a], HOUR);
    assert_eq!(list(&home), (1, 2, 1));
    assert_eq!(home.json(&["dags", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(version(&home, "a"), 1);
}

#[test]
fn a_broken_dag_file_keeps_its_import_error_on_warm_scans() {
    let home = Home::new();
    home.write_dag("good.yaml", &pipeline("0 1 * * *"));
    home.write_dag(
        "broken.yaml",
        "tasks:\n  - task_id: a\n    bash_command: 'true'\n    retires: 2\n",
    );
    let (good, broken) = (
        home.dags().join("good.yaml"),
        home.dags().join("broken.yaml"),
    );
    set_age(&[&good, &broken], HOUR);
    assert_eq!(scan(&home, &["dags", "list-import-errors"]), (0, 2, 2));

    for _ in 0..2 {
        assert_eq!(
            scan(&home, &["dags", "list-import-errors"]),
            (2, 2, 0),
            "the recorded error is shown again without parsing"
        );
        let errors = home.json(&["dags", "list-import-errors"]);
        assert_eq!(errors.as_array().unwrap().len(), 1, "{errors:#}");
        assert!(errors[0]["filename"]
            .as_str()
            .unwrap()
            .ends_with("broken.yaml"));
        assert!(
            errors[0]["error"]
                .as_str()
                .unwrap()
                .contains("unknown key `retires`"),
            "{errors:#}"
        );
    }

    home.write_dag("broken.yaml", &pipeline("0 1 * * *"));
    set_age(&[&broken], HOUR);
    assert_eq!(scan(&home, &["dags", "list-import-errors"]), (1, 2, 1));
    assert_eq!(
        home.json(&["dags", "list-import-errors"]),
        serde_json::json!([])
    );
    assert_eq!(home.json(&["dags", "list"]).as_array().unwrap().len(), 2);
}

/// A DAG deleted through the REST API while its file changed comes back with the new
/// definition, and runs it: the process that ran the deleted DAG still holds its versions by
/// DAG id and number, and the new DAG's versions are numbered past them.
#[test]
fn a_dag_deleted_and_found_again_runs_its_new_definition() {
    let home = Home::new();
    let out = home.path().join("out.txt");
    let write = |word: &str| {
        home.write_dag(
            "again.yaml",
            &format!(
                "dag_id: again\ntasks:\n  - task_id: t\n    bash_command: echo {word} >> {}\n",
                out.display()
            ),
        )
    };
    write("old");
    let standalone = home.standalone();
    let first = home.trigger("again");
    let states = home.wait_for_run("again", &first, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");

    write("new");
    let auth = standalone.admin_bearer(&home);
    let (status, body) = crate::users::http(
        "DELETE",
        &format!("{}/api/v2/dags/again", standalone.base_url()),
        &[("Authorization", auth.as_str())],
        None,
    );
    assert_eq!(status, 200, "{body}");

    // Found again by the next scan, with the new definition.
    let found = crate::fixture::eventually(Duration::from_secs(30), || {
        let dags = home.json(&["dags", "list"]);
        dags.as_array()?
            .iter()
            .any(|d| d["dag_id"] == "again")
            .then_some(())
    });
    assert!(found.is_some(), "the DAG did not come back");
    let second = home.trigger("again");
    let states = home.wait_for_run("again", &second, Duration::from_secs(30));
    assert_eq!(states["state"], "success", "{states:#}");
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(lines.lines().collect::<Vec<_>>(), vec!["old", "new"]);
}

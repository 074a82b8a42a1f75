//! Scanning DAG folders: discovery, the (mtime, size) cache, duplicates and lifecycle.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::SubsecRound;

use updraft_dagfile::{content_hash, DagFolder, DagFolderError, FolderScan};

fn dag(id: &str) -> String {
    format!("dag_id: {id}\ntasks:\n  - task_id: a\n    bash_command: echo {id}\n")
}

fn write(root: &Path, relative: &str, text: &str) -> PathBuf {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

/// Makes files look old, so the cache trusts their (mtime, size) without reading them.
fn age(paths: &[PathBuf]) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    for path in paths {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
}

fn ids(scan: &FolderScan) -> Vec<&str> {
    scan.dags.iter().map(|d| d.dag.dag_id.as_str()).collect()
}

fn errors(scan: &FolderScan) -> Vec<(String, &str)> {
    scan.import_errors
        .iter()
        .map(|e| {
            let name = e
                .filename
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, e.error.as_str())
        })
        .collect()
}

#[test]
fn single_files_load_outside_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", &dag("good"));
    let loaded = updraft_dagfile::load_file(&good).unwrap();
    assert_eq!(loaded.dag.dag_id, "good");
    assert_eq!(loaded.fileloc, good);
    let bad = write(dir.path(), "bad.json", "{\"tasks\": 1}");
    let error = updraft_dagfile::load_file(&bad).unwrap_err();
    assert_eq!(error.filename, bad);
    assert!(
        error
            .error
            .contains("`tasks` must be a list of tasks, found number 1"),
        "{}",
        error.error
    );
}

#[test]
fn missing_folder_is_an_empty_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut folder = DagFolder::new(dir.path().join("not-yet"));
    let scan = folder.scan().unwrap();
    assert!(scan.dags.is_empty() && scan.import_errors.is_empty());
}

#[test]
fn a_file_as_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "dags", "x");
    let error = DagFolder::new(file).scan().unwrap_err();
    assert!(
        matches!(error, DagFolderError::NotADirectory { .. }),
        "{error}"
    );
}

#[test]
fn discovers_dag_files_recursively_sorted_skipping_hidden_and_others() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "b.yaml", &dag("b"));
    write(root, "a.yml", &dag("a"));
    write(
        root,
        "sub/deeper/c.json",
        r#"{"dag_id": "c", "tasks": [{"task_id": "t", "operator": "empty"}]}"#,
    );
    write(root, "README.md", "not a dag");
    write(root, "script.py", "print()");
    write(root, ".hidden.yaml", &dag("hidden1"));
    write(root, ".git/d.yaml", &dag("hidden2"));
    let mut folder = DagFolder::new(root.to_path_buf());
    let scan = folder.scan().unwrap();
    assert_eq!(ids(&scan), ["a", "b", "c"]);
    assert!(scan.import_errors.is_empty());
    let a = &scan.dags[0];
    assert_eq!(a.fileloc, root.join("a.yml"));
    assert_eq!(a.source, dag("a"));
    assert_eq!(a.content_hash, content_hash(dag("a").as_bytes()));
    assert_eq!(a.content_hash.len(), 64);
    assert_eq!(scan.stats.files, 3);
    assert_eq!(scan.stats.parsed, 3);
}

#[test]
fn dag_id_defaults_to_the_file_stem() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "users_etl.yaml",
        "tasks:\n  - {task_id: a, operator: empty}\n",
    );
    let scan = DagFolder::new(dir.path().to_path_buf()).scan().unwrap();
    assert_eq!(ids(&scan), ["users_etl"]);
}

#[test]
fn warm_rescan_parses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..1000)
        .map(|i| {
            write(
                dir.path(),
                &format!("team{}/dag_{i:04}.yaml", i % 10),
                &dag(&format!("dag_{i:04}")),
            )
        })
        .collect();
    write(dir.path(), "broken.yaml", "tasks: [");
    let mut folder = DagFolder::new(dir.path().to_path_buf());
    let cold = folder.scan().unwrap();
    assert_eq!(cold.dags.len(), 1000);
    assert_eq!(cold.import_errors.len(), 1);
    assert_eq!(cold.stats.parsed, 1001);

    // Just-written files are read again (a coarse clock could hide a change) but their
    // content is unchanged, so nothing is parsed.
    let racy = folder.scan().unwrap();
    assert_eq!(racy.stats.parsed, 0);
    assert_eq!(racy.dags, cold.dags);

    // Files older than the racy window are not even read.
    age(&paths);
    age(&[dir.path().join("broken.yaml")]);
    folder.scan().unwrap(); // mtimes changed: read again, still not parsed
    let warm = folder.scan().unwrap();
    assert_eq!(
        (warm.stats.files, warm.stats.read, warm.stats.parsed),
        (1001, 0, 0)
    );
    assert_eq!(warm.dags, cold.dags);
    assert_eq!(warm.import_errors, cold.import_errors);
    eprintln!("warm scan of 1001 files: {:?}", warm.stats.elapsed);
}

#[test]
fn changes_fixes_and_deletions_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = write(root, "a.yaml", &dag("a"));
    let b = write(
        root,
        "b.yaml",
        "tasks:\n  - {task_id: x, bash_command: y, retires: 1}\n",
    );
    let mut folder = DagFolder::new(root.to_path_buf());
    let scan = folder.scan().unwrap();
    assert_eq!(ids(&scan), ["a"]);
    assert_eq!(errors(&scan).len(), 1);
    assert!(errors(&scan)[0]
        .1
        .contains("line 2, column 35: task `x`: unknown key `retires`"));

    // Changing a file updates its DAG; the same size does not hide the change.
    fs::write(&a, dag("a").replace("echo a", "echo z")).unwrap();
    let scan = folder.scan().unwrap();
    assert_eq!(scan.stats.parsed, 1);
    assert!(scan.dags[0].source.contains("echo z"));

    // Fixing a broken file clears its error.
    fs::write(&b, dag("b")).unwrap();
    let scan = folder.scan().unwrap();
    assert_eq!(ids(&scan), ["a", "b"]);
    assert!(scan.import_errors.is_empty());

    // Deleting a file removes its DAG.
    fs::remove_file(&a).unwrap();
    let scan = folder.scan().unwrap();
    assert_eq!(ids(&scan), ["b"]);

    // Breaking it again brings the error back.
    fs::write(&b, "tasks: []\n").unwrap();
    let scan = folder.scan().unwrap();
    assert!(scan.dags.is_empty());
    assert!(errors(&scan)[0].1.contains("`tasks` is empty"));
}

#[test]
fn a_change_with_an_old_mtime_and_same_size_is_seen_while_racy() {
    // The cache compares content hashes for recently modified files.
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", &dag("a"));
    let mut folder = DagFolder::new(dir.path().to_path_buf());
    let before = fs::metadata(&a).unwrap().modified().unwrap();
    folder.scan().unwrap();
    fs::write(&a, dag("a").replace("echo a", "echo q")).unwrap();
    fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(before)
        .unwrap();
    let scan = folder.scan().unwrap();
    assert!(scan.dags[0].source.contains("echo q"));
}

#[test]
fn duplicate_dag_id_keeps_the_first_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a/one.yaml", &dag("same"));
    write(root, "b/two.yaml", &dag("same"));
    let mut folder = DagFolder::new(root.to_path_buf());
    let scan = folder.scan().unwrap();
    assert_eq!(ids(&scan), ["same"]);
    assert_eq!(scan.dags[0].fileloc, root.join("a/one.yaml"));
    let expected = format!(
        "dag_id `same` is already defined in {}",
        root.join("a/one.yaml").display()
    );
    assert_eq!(errors(&scan), [("two.yaml".to_string(), expected.as_str())]);

    // Once the first file is gone, the second one owns the id.
    fs::remove_file(root.join("a/one.yaml")).unwrap();
    let scan = folder.scan().unwrap();
    assert_eq!(scan.dags[0].fileloc, root.join("b/two.yaml"));
    assert!(scan.import_errors.is_empty());
}

#[test]
fn big_and_non_utf8_files_are_import_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "big.yaml",
        &"#".repeat(updraft_dagfile::MAX_FILE_BYTES + 1),
    );
    let path = root.join("latin1.yaml");
    fs::write(&path, b"description: caf\xe9\ntasks: []\n").unwrap();
    let scan = DagFolder::new(root.to_path_buf()).scan().unwrap();
    assert_eq!(scan.stats.parsed, 1, "the big file is not parsed");
    let errors = errors(&scan);
    assert!(
        errors[0]
            .1
            .contains("DAG files may be at most 1048576 bytes"),
        "{errors:?}"
    );
    assert!(
        errors[1]
            .1
            .contains("not UTF-8 text (invalid byte at offset 16)"),
        "{errors:?}"
    );
}

#[test]
fn updraftignore_hides_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        ".updraftignore",
        "# drafts are not loaded\ndrafts/\n*_wip.yaml\n/vendor/*.json\n",
    );
    write(root, "keep.yaml", &dag("keep"));
    write(root, "x_wip.yaml", &dag("wip"));
    write(root, "drafts/d.yaml", &dag("draft"));
    write(root, "team/drafts/d.yaml", &dag("team_draft"));
    write(root, "team/y_wip.yaml", &dag("team_wip"));
    write(
        root,
        "vendor/v.json",
        r#"{"dag_id": "vendor", "tasks": []}"#,
    );
    write(
        root,
        "team/vendor/v.json",
        r#"{"dag_id": "team_vendor", "tasks": [{"task_id": "a", "operator": "empty"}]}"#,
    );
    write(root, "team/.updraftignore", "skip_me.yaml\n");
    write(root, "team/skip_me.yaml", &dag("skipped"));
    write(root, "skip_me.yaml", &dag("not_skipped_here"));
    let scan = DagFolder::new(root.to_path_buf()).scan().unwrap();
    assert_eq!(ids(&scan), ["keep", "not_skipped_here", "team_vendor"]);
    assert!(scan.import_errors.is_empty());
}

#[cfg(unix)]
#[test]
fn symlinked_folders_are_followed_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dags");
    write(&root, "real/a.yaml", &dag("a"));
    std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&root, root.join("real/loop")).unwrap();
    let scan = DagFolder::new(root.clone()).scan().unwrap();
    // `link` sorts first and reaches a.yaml; `real` is the same folder and is skipped.
    assert_eq!(ids(&scan), ["a"]);
    assert!(scan.import_errors.is_empty(), "{:?}", scan.import_errors);
}

// --- records: what an earlier process loaded, so that a new one skips unchanged files ---

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

/// A folder of `n` aged DAG files and one aged broken file, scanned once by another process:
/// its records.
fn recorded_folder(n: usize) -> (tempfile::TempDir, Vec<updraft_dagfile::FileRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<PathBuf> = (0..n)
        .map(|i| {
            write(
                dir.path(),
                &format!("dag_{i:03}.yaml"),
                &dag(&format!("dag_{i:03}")),
            )
        })
        .collect();
    paths.push(write(dir.path(), "broken.yaml", "tasks: ["));
    age(&paths);
    let cold = DagFolder::new(dir.path().to_path_buf()).scan().unwrap();
    assert_eq!(cold.files.len(), n + 1, "every file is recorded");
    (dir, cold.files)
}

#[test]
fn records_let_a_new_process_skip_unchanged_files() {
    let (dir, records) = recorded_folder(100);
    let cold_errors = DagFolder::new(dir.path().to_path_buf())
        .scan()
        .unwrap()
        .import_errors;

    let warm = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records.clone())
        .unwrap();
    assert_eq!(
        (
            warm.stats.files,
            warm.stats.read,
            warm.stats.parsed,
            warm.stats.unchanged
        ),
        (101, 101, 0, 101),
        "every file is read (records are not trusted on mtime and size), none parsed"
    );
    assert!(warm.dags.is_empty(), "unchanged DAGs are published already");
    assert_eq!(
        warm.import_errors, cold_errors,
        "a broken file keeps its import error"
    );
    assert_eq!(warm.files, records, "the records stay as they are");
}

#[test]
fn a_touched_file_is_read_but_not_parsed_and_its_record_renewed() {
    let (dir, records) = recorded_folder(3);
    let path = dir.path().join("dag_001.yaml");
    let touched = SystemTime::now() - Duration::from_secs(60);
    set_mtime(&path, touched);

    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records.clone())
        .unwrap();
    assert_eq!(
        (scan.stats.read, scan.stats.parsed, scan.stats.unchanged),
        (4, 0, 4)
    );
    assert!(scan.dags.is_empty(), "same content: nothing to publish");
    let renewed = scan.files.iter().find(|r| r.path == path).unwrap();
    let before = records.iter().find(|r| r.path == path).unwrap();
    assert_eq!(
        renewed.mtime,
        Some(chrono::DateTime::from(touched).trunc_subsecs(6))
    );
    assert_eq!(renewed.content_hash, before.content_hash);
    assert_eq!(renewed.outcome, before.outcome);
    assert!(renewed.recorded_at > before.recorded_at);
    let others = |files: &[updraft_dagfile::FileRecord]| -> Vec<updraft_dagfile::FileRecord> {
        files.iter().filter(|r| r.path != path).cloned().collect()
    };
    assert_eq!(others(&scan.files), others(&records));
}

#[test]
fn an_edited_file_is_parsed_and_a_fixed_one_loses_its_error() {
    let (dir, records) = recorded_folder(3);
    let edited = dir.path().join("dag_002.yaml");
    fs::write(&edited, dag("dag_002").replace("echo", "printf")).unwrap();
    let broken = write(dir.path(), "broken.yaml", &dag("fixed"));
    age(&[edited.clone(), broken]);

    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records)
        .unwrap();
    assert_eq!(
        (scan.stats.read, scan.stats.parsed, scan.stats.unchanged),
        (4, 2, 2)
    );
    assert_eq!(ids(&scan), ["fixed", "dag_002"]);
    assert!(scan.dags[1].source.contains("printf"));
    assert!(scan.import_errors.is_empty());
    let record = scan.files.iter().find(|r| r.path == edited).unwrap();
    assert_eq!(record.content_hash, scan.dags[1].content_hash);
    assert_eq!(
        record.outcome,
        updraft_dagfile::FileOutcome::Dag("dag_002".into())
    );
}

#[test]
fn a_deleted_file_is_no_longer_recorded() {
    let (dir, records) = recorded_folder(3);
    let gone = dir.path().join("dag_000.yaml");
    fs::remove_file(&gone).unwrap();
    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records.clone())
        .unwrap();
    assert!(scan.dags.is_empty());
    assert_eq!(scan.files.len(), 3);
    assert!(scan.files.iter().all(|r| r.path != gone));
}

#[test]
fn a_record_never_hides_a_change_that_keeps_mtime_and_size() {
    // A change that keeps the size and the mtime is invisible to (mtime, size), whether the
    // record was taken just after the change...
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.yaml", &dag("a"));
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let records = DagFolder::new(dir.path().to_path_buf())
        .scan()
        .unwrap()
        .files;
    fs::write(&path, dag("a").replace("echo a", "echo q")).unwrap();
    set_mtime(&path, mtime);
    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records)
        .unwrap();
    assert_eq!((scan.stats.read, scan.stats.parsed), (1, 1));
    assert!(scan.dags[0].source.contains("echo q"));

    // ...or long after it (files deployed with fixed timestamps): the content decides.
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&path, old);
    let records = DagFolder::new(dir.path().to_path_buf())
        .scan()
        .unwrap()
        .files;
    fs::write(&path, dag("a").replace("echo a", "echo z")).unwrap();
    set_mtime(&path, old);
    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records)
        .unwrap();
    assert_eq!((scan.stats.read, scan.stats.parsed), (1, 1));
    assert!(scan.dags[0].source.contains("echo z"));
}

#[test]
fn records_of_another_parser_version_are_ignored() {
    let (dir, mut records) = recorded_folder(3);
    for record in &mut records {
        record.parser_version = "0.0.0-older".into();
    }
    let scan = DagFolder::new(dir.path().to_path_buf())
        .scan_with_records(records)
        .unwrap();
    assert_eq!((scan.stats.parsed, scan.stats.unchanged), (4, 0));
    assert_eq!(scan.dags.len(), 3);
    assert!(scan
        .files
        .iter()
        .all(|r| r.parser_version == updraft_dagfile::PARSER_VERSION));
}

#[test]
fn a_recorded_file_that_repeats_an_earlier_dag_id_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let two = write(root, "b/two.yaml", &dag("same"));
    age(std::slice::from_ref(&two));
    let records = DagFolder::new(root.to_path_buf()).scan().unwrap().files;

    // A new file earlier in path order takes the dag_id; the recorded one becomes a duplicate.
    let one = write(root, "a/one.yaml", &dag("same"));
    age(std::slice::from_ref(&one));
    let scan = DagFolder::new(root.to_path_buf())
        .scan_with_records(records)
        .unwrap();
    assert_eq!(ids(&scan), ["same"]);
    assert_eq!(scan.dags[0].fileloc, one);
    assert_eq!(errors(&scan).len(), 1);
    assert_eq!(errors(&scan)[0].0, "two.yaml");
    let recorded: Vec<&Path> = scan.files.iter().map(|r| r.path.as_path()).collect();
    assert_eq!(recorded, [one.as_path()]);

    // Once the first file is gone, the second (unrecorded) one is parsed and owns the id.
    fs::remove_file(&one).unwrap();
    let scan = DagFolder::new(root.to_path_buf())
        .scan_with_records(scan.files)
        .unwrap();
    assert_eq!(scan.stats.parsed, 1);
    assert_eq!(scan.dags[0].fileloc, two);
    assert!(scan.import_errors.is_empty());
}

#[test]
fn a_long_running_folder_publishes_from_memory_when_a_record_is_dropped() {
    let (dir, records) = recorded_folder(3);
    let mut folder = DagFolder::new(dir.path().to_path_buf());
    folder.scan().unwrap();
    let scan = folder.scan_with_records(records.clone()).unwrap();
    assert_eq!((scan.stats.read, scan.stats.unchanged), (0, 4));
    assert!(scan.dags.is_empty());

    // The database no longer shows dag_001 as recorded (someone else published another
    // version): it is published again, from memory, without reading or parsing.
    let path = dir.path().join("dag_001.yaml");
    let others: Vec<_> = records.into_iter().filter(|r| r.path != path).collect();
    let scan = folder.scan_with_records(others).unwrap();
    assert_eq!((scan.stats.read, scan.stats.parsed), (0, 0));
    assert_eq!(ids(&scan), ["dag_001"]);
    assert_eq!(scan.files.len(), 4);
}

#[test]
fn a_folder_that_learned_a_file_from_its_record_parses_it_when_the_record_is_dropped() {
    let (dir, records) = recorded_folder(3);
    let mut folder = DagFolder::new(dir.path().to_path_buf());
    let scan = folder.scan_with_records(records.clone()).unwrap();
    assert_eq!((scan.stats.parsed, scan.stats.unchanged), (0, 4));
    let path = dir.path().join("dag_001.yaml");
    let others: Vec<_> = records.into_iter().filter(|r| r.path != path).collect();
    let scan = folder.scan_with_records(others).unwrap();
    assert_eq!((scan.stats.read, scan.stats.parsed), (1, 1));
    assert_eq!(ids(&scan), ["dag_001"]);
}

//! `.py` files in a DAG folder scan, run by the real parse children with a stand-in
//! `updraft._parse`: what is parsed again, what is skipped, and that a broken file stays an
//! import error of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use updraft_dagfile::DagFolder;
use updraft_python::{ParseChildren, PythonConfig};

/// Executes the file with the DAG folder importable; records every import of a module under
/// the folder, and counts each run in `<folder>/../runs.log`.
const STAND_IN: &str = r#"
import json, os, sys, traceback
path = sys.argv[1]
folder = os.path.dirname(path)
answer_to = sys.stdout
sys.stdout = sys.stderr
with open(os.path.join(folder, "..", "runs.log"), "a") as log:
    log.write(os.path.basename(path) + "\n")
before = set(sys.modules)
try:
    ns = {"__name__": "dagfile", "__file__": path}
    exec(compile(open(path).read(), path, "exec"), ns)
    imports = [getattr(sys.modules[m], "__file__", None) for m in set(sys.modules) - before]
    imports = [os.path.abspath(f) for f in imports if f and os.path.abspath(f).startswith(folder)]
    out = {"dags": ns.get("DAGS", []), "imports": imports, "error": None}
except BaseException as e:
    frames = traceback.extract_tb(e.__traceback__)
    out = {"dags": [], "imports": [], "error": {"message": "%s: %s" % (type(e).__name__, e),
           "file": path, "line": frames[-1].lineno if frames else None,
           "traceback": traceback.format_exc()}}
answer_to.write(json.dumps(out))
"#;

fn runs(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("runs.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Rewrites a file so that its (mtime, size) surely differ from before.
fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(old).unwrap();
}

#[test]
fn python_files_are_run_once_until_they_or_their_imports_change() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join("sdk");
    std::fs::create_dir_all(sdk.join("updraft")).unwrap();
    std::fs::write(sdk.join("updraft/__init__.py"), "").unwrap();
    std::fs::write(sdk.join("updraft/_parse.py"), STAND_IN).unwrap();
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    let parser = ParseChildren::new(
        PythonConfig {
            parse_timeout: Duration::from_secs(20),
            ..PythonConfig::default()
        },
        sdk,
    );
    let mut folder = DagFolder::with_python(dags.clone(), Arc::new(parser));

    rewrite(
        &dags.join("helper.py"),
        "TASKS = [{'task_id': 'one', 'operator': 'empty'}]\n",
    );
    let two = "import helper\nDAGS = [{'dag_id': 'p1', 'tasks': helper.TASKS}, {'dag_id': 'p2', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}]\n";
    rewrite(&dags.join("two.py"), two);
    rewrite(
        &dags.join("broken.py"),
        "DAG = None\nraise RuntimeError('broken on purpose')\n",
    );
    rewrite(&dags.join("plain.py"), "print('not a workflow file')\n");
    rewrite(
        &dags.join("y.yaml"),
        "tasks:\n  - {task_id: a, bash_command: 'true'}\n",
    );

    let scan = folder.scan().unwrap();
    let ids: Vec<&str> = scan.dags.iter().map(|d| d.dag.dag_id.as_str()).collect();
    assert_eq!(ids, vec!["p1", "p2", "y"], "{:?}", scan.import_errors);
    assert_eq!(scan.dags[0].dag.tasks[0].task_id, "one");
    assert_eq!(scan.dags[0].source, two);
    assert_eq!(scan.dags[0].fileloc, dags.join("two.py"));
    assert_eq!(scan.import_errors.len(), 1, "{:?}", scan.import_errors);
    assert_eq!(scan.import_errors[0].filename, dags.join("broken.py"));
    assert!(scan.import_errors[0]
        .error
        .contains("line 2: RuntimeError: broken on purpose"));
    // helper.py and plain.py do not mention DAGs: never run (safe mode).
    let mut first = runs(dir.path());
    first.sort();
    assert_eq!(first, vec!["broken.py", "two.py"]);

    // Nothing changed: nothing runs, the same DAGs are published.
    let scan = folder.scan().unwrap();
    assert_eq!(runs(dir.path()).len(), 2);
    assert_eq!(scan.dags.len(), 3);
    let version = scan.dags[0].content_hash.clone();

    // A change to the imported module runs the file that imports it, and only that one;
    // its definition changed, so its hash did too.
    rewrite(
        &dags.join("helper.py"),
        "TASKS = [{'task_id': 'one', 'operator': 'empty'}, {'task_id': 'two', 'operator': 'empty'}]\n",
    );
    let scan = folder.scan().unwrap();
    assert_eq!(runs(dir.path()).len(), 3);
    assert_eq!(runs(dir.path())[2], "two.py");
    assert_eq!(scan.dags[0].dag.tasks.len(), 2);
    assert_ne!(scan.dags[0].content_hash, version);

    // Fixing the broken file clears its error; a duplicate dag_id is an error of the
    // later file, and its other DAGs still load.
    rewrite(
        &dags.join("broken.py"),
        "DAGS = [{'dag_id': 'fixed', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}]\n",
    );
    rewrite(
        &dags.join("zdup.py"),
        "DAGS = [{'dag_id': 'p1', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}, {'dag_id': 'z', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}]\n",
    );
    let scan = folder.scan().unwrap();
    let ids: Vec<&str> = scan.dags.iter().map(|d| d.dag.dag_id.as_str()).collect();
    assert_eq!(ids, vec!["fixed", "p1", "p2", "y", "z"]);
    assert_eq!(scan.import_errors.len(), 1);
    assert_eq!(scan.import_errors[0].filename, dags.join("zdup.py"));
    assert!(scan.import_errors[0]
        .error
        .contains("dag_id `p1` is already defined"));

    // Without the Python bridge, .py files are not DAG files.
    let scan = DagFolder::new(dags.clone()).scan().unwrap();
    let ids: Vec<PathBuf> = scan.dags.iter().map(|d| d.fileloc.clone()).collect();
    assert_eq!(ids, vec![dags.join("y.yaml")]);
}

#[test]
fn another_process_trusts_the_records_of_self_contained_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join("sdk");
    std::fs::create_dir_all(sdk.join("updraft")).unwrap();
    std::fs::write(sdk.join("updraft/__init__.py"), "").unwrap();
    std::fs::write(sdk.join("updraft/_parse.py"), STAND_IN).unwrap();
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    let parser = Arc::new(ParseChildren::new(
        PythonConfig {
            parse_timeout: Duration::from_secs(20),
            ..PythonConfig::default()
        },
        sdk,
    ));
    rewrite(
        &dags.join("helper.py"),
        "TASKS = [{'task_id': 'one', 'operator': 'empty'}]\n",
    );
    rewrite(
        &dags.join("alone.py"),
        "DAGS = [{'dag_id': 'alone', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}]\n",
    );
    rewrite(
        &dags.join("raises.py"),
        "DAG = 1\nraise ValueError('always')\n",
    );
    rewrite(
        &dags.join("imports.py"),
        "import helper\nDAGS = [{'dag_id': 'imp', 'tasks': helper.TASKS}]\n",
    );
    rewrite(
        &dags.join("two.py"),
        "DAGS = [{'dag_id': 't1', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}, \
         {'dag_id': 't2', 'tasks': [{'task_id': 'e', 'operator': 'empty'}]}]\n",
    );

    let first = DagFolder::with_python(dags.clone(), parser.clone())
        .scan()
        .unwrap();
    assert_eq!(first.dags.len(), 4);
    let recorded: Vec<PathBuf> = first.files.iter().map(|r| r.path.clone()).collect();
    // Self-contained and settled: recorded. With imports or several DAGs: not.
    assert_eq!(
        recorded,
        vec![dags.join("alone.py"), dags.join("raises.py")]
    );
    let alone = first.dags.iter().find(|d| d.dag.dag_id == "alone").unwrap();
    assert_eq!(alone.content_hash, first.files[0].content_hash);
    assert_eq!(runs(dir.path()).len(), 4);

    // A new process, given those records: runs only the files they cannot vouch for, and
    // reports the recorded error again.
    let mut second = DagFolder::with_python(dags.clone(), parser.clone());
    let scan = second.scan_with_records(first.files.clone()).unwrap();
    let mut ran = runs(dir.path())[4..].to_vec();
    ran.sort();
    assert_eq!(ran, vec!["imports.py", "two.py"]);
    let ids: Vec<&str> = scan.dags.iter().map(|d| d.dag.dag_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["imp", "t1", "t2"],
        "alone is published as recorded"
    );
    assert_eq!(scan.import_errors.len(), 1);
    assert!(scan.import_errors[0].error.contains("ValueError: always"));
    assert_eq!(scan.files.len(), 2);

    // Its own cache then keeps them all; a change to the recorded file runs it.
    let _ = second.scan_with_records(scan.files.clone()).unwrap();
    assert_eq!(runs(dir.path()).len(), 6);
    rewrite(
        &dags.join("alone.py"),
        "DAGS = [{'dag_id': 'alone', 'tasks': [{'task_id': 'changed', 'operator': 'empty'}]}]\n",
    );
    let scan = second.scan_with_records(scan.files.clone()).unwrap();
    assert_eq!(runs(dir.path()).len(), 7);
    let alone = scan.dags.iter().find(|d| d.dag.dag_id == "alone").unwrap();
    assert_eq!(alone.dag.tasks[0].task_id, "changed");
}

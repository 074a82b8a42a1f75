//! The parse children, with a stand-in `updraft._parse` (the protocol's answer, from a DAG
//! file that names its documents in `DAGS`): real interpreters, real limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use updraft_dagfile::PythonParser;
use updraft_python::{ParseChildren, PythonConfig};

const STAND_IN: &str = r#"
import json, sys, traceback
path = sys.argv[1]
answer_to = sys.stdout
sys.stdout = sys.stderr
try:
    ns = {"__name__": "dagfile", "__file__": path}
    exec(compile(open(path).read(), path, "exec"), ns)
    out = {"dags": ns.get("DAGS", []), "imports": ns.get("IMPORTS", []), "error": None}
except BaseException as e:
    frames = traceback.extract_tb(e.__traceback__)
    line = getattr(e, "lineno", None) if isinstance(e, SyntaxError) else (frames[-1].lineno if frames else None)
    out = {"dags": [], "imports": [], "error": {"message": "%s: %s" % (type(e).__name__, e),
           "file": path, "line": line, "traceback": traceback.format_exc()}}
answer_to.write(json.dumps(out))
"#;

struct Setup {
    _dir: tempfile::TempDir,
    sdk: PathBuf,
    dags: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join("sdk");
    std::fs::create_dir_all(sdk.join("updraft")).unwrap();
    std::fs::write(sdk.join("updraft/__init__.py"), "").unwrap();
    std::fs::write(sdk.join("updraft/_parse.py"), STAND_IN).unwrap();
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    Setup {
        sdk,
        dags,
        _dir: dir,
    }
}

fn children(setup: &Setup, timeout: Duration) -> ParseChildren {
    ParseChildren::new(
        PythonConfig {
            parse_timeout: timeout,
            parse_memory_limit: Some(512 << 20),
            ..PythonConfig::default()
        },
        setup.sdk.clone(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn answers_errors_timeouts_memory_and_crashes_each_become_what_they_are() {
    let s = setup();
    let good = write(
        &s.dags,
        "good.py",
        "print('chatter goes to stderr')\nDAGS = [{'dag_id': 'g', 'tasks': []}]\nIMPORTS = ['/x/helper.py']\n",
    );
    let raises = write(
        &s.dags,
        "raises.py",
        "x = 1\n\nraise ValueError('no dag here')\n",
    );
    let syntax = write(&s.dags, "syntax.py", "def broken(:\n    pass\n");
    let forever = write(&s.dags, "forever.py", "while True:\n    pass\n");
    let huge = write(&s.dags, "huge.py", "data = bytearray(10 * 1024 ** 3)\n");
    let crash = write(
        &s.dags,
        "crash.py",
        "import os, sys\nsys.stderr.write('dying now\\n')\nos._exit(3)\n",
    );
    let garbage = write(
        &s.dags,
        "garbage.py",
        "import sys, os\nos.write(1, b'not json')\nos._exit(0)\n",
    );

    let files = vec![
        good.clone(),
        raises.clone(),
        syntax,
        forever,
        huge,
        crash,
        garbage,
    ];
    // Long enough for the good file to parse on a loaded machine (3 s was not, beside the rest
    // of the suite).
    let answers = children(&s, Duration::from_secs(8)).parse(&s.dags, &files);
    assert_eq!(answers.len(), files.len());

    let dags = answers[0].dags.as_ref().unwrap();
    assert_eq!(dags[0]["dag_id"], "g");
    assert_eq!(answers[0].imports, vec![PathBuf::from("/x/helper.py")]);

    let error = answers[1].dags.as_ref().unwrap_err();
    assert!(
        error.starts_with("line 3: ValueError: no dag here"),
        "{error}"
    );
    assert!(error.contains("Traceback"), "{error}");

    let error = answers[2].dags.as_ref().unwrap_err();
    assert!(error.starts_with("line 1: SyntaxError"), "{error}");

    let error = answers[3].dags.as_ref().unwrap_err();
    assert!(error.contains("took longer than 8s"), "{error}");
    assert!(error.contains("dag_file_processor_timeout"), "{error}");

    let error = answers[4].dags.as_ref().unwrap_err();
    assert!(error.contains("MemoryError"), "{error}");

    let error = answers[5].dags.as_ref().unwrap_err();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.contains("dying now"), "{error}");

    let error = answers[6].dags.as_ref().unwrap_err();
    assert!(error.contains("gave no valid answer"), "{error}");
}

#[test]
fn a_missing_interpreter_is_an_error_that_names_it() {
    let s = setup();
    let file = write(&s.dags, "a.py", "DAGS = []\n");
    let parser = ParseChildren::new(
        PythonConfig {
            interpreter: "/nonexistent/python9".into(),
            ..PythonConfig::default()
        },
        s.sdk.clone(),
    );
    let answers = parser.parse(&s.dags, &[file]);
    let error = answers[0].dags.as_ref().unwrap_err();
    assert!(error.contains("/nonexistent/python9"), "{error}");
    assert!(error.contains("core.python"), "{error}");
}

#[test]
fn an_exception_in_an_imported_module_names_that_module() {
    let s = setup();
    let helper = write(&s.dags, "helper.py", "def f():\n    raise KeyError('k')\n");
    let file = write(
        &s.dags,
        "uses.py",
        &format!(
            "import sys\nsys.path.insert(0, {:?})\nimport helper\nhelper.f()\n",
            s.dags.display().to_string()
        ),
    );
    // The stand-in names the DAG file; the real SDK names the deepest frame in the folder.
    // Here the shape of the text is what is checked: line, message, traceback with the helper.
    let answers = children(&s, Duration::from_secs(20)).parse(&s.dags, &[file]);
    let error = answers[0].dags.as_ref().unwrap_err();
    assert!(error.contains("KeyError: 'k'"), "{error}");
    assert!(error.contains(&helper.display().to_string()), "{error}");
}

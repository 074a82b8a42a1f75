"""The documents the SDK writes load in updraft itself (the real DAG file loader of the
binary), and a bash-only Python DAG runs to success with `updraft dags test`.

Needs a built binary: $UPDRAFT_BIN, else target/{debug,release}/updraft under the repository
or $CARGO_TARGET_DIR. Python tasks are checked too once the binary knows `operator: python`."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "dags"


def find_binary():
    candidates = []
    if os.environ.get("UPDRAFT_BIN"):
        candidates.append(Path(os.environ["UPDRAFT_BIN"]))
    targets = [ROOT / "target"]
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.insert(0, Path(os.environ["CARGO_TARGET_DIR"]))
    for target in targets:
        candidates += [target / "debug" / "updraft", target / "release" / "updraft"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


BINARY = find_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no updraft binary built")


def updraft(home, *args, timeout=120):
    env = dict(os.environ, UPDRAFT_HOME=str(home))
    return subprocess.run([str(BINARY), *args], env=env, capture_output=True, timeout=timeout,
                          text=True)


def load(home, documents):
    """Writes the documents as .json DAG files; (DAG ids listed, import errors)."""
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (dags / f"{document['dag_id']}.json").write_text(json.dumps(document))
    listed = updraft(home, "dags", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    errors = updraft(home, "dags", "list-import-errors", "-o", "json")
    assert errors.returncode == 0, errors.stderr
    return sorted(d["dag_id"] for d in json.loads(listed.stdout)), json.loads(errors.stdout)


def knows_python_tasks(tmp_path):
    probe = {"dag_id": "probe", "tasks": [{
        "task_id": "g.t", "operator": "python", "python_callable": "f", "python_kind": "task",
        "source_line": 1, "task_group": "g"}]}
    listed, _ = load(tmp_path / "probe", [probe])
    return listed == ["probe"]


def has_python_tasks(document):
    return any(t["operator"] == "python" or "task_group" in t for t in document["tasks"])


FEATURES = """
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo
    from updraft import (DAG, BashOperator, EmptyOperator, Param, TaskGroup, TriggerRule,
                         chain)

    with DAG("features", description="every DAG and task key", schedule="30 6 * * 1-5",
             start_date=datetime(2024, 3, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),
             end_date=datetime(2030, 1, 1), catchup=False, max_active_runs=3,
             max_active_tasks=8, tags=["a", "b"],
             params={"n": Param(2, type="integer", minimum=1, description="count"),
                     "mode": Param("x", enum=["x", "y"]), "free": {"k": [1, 2]},
                     "need": Param(type=["null", "string"])},
             default_args={"retries": 2, "retry_delay": timedelta(seconds=30),
                           "owner": "me"}):
        first = BashOperator(task_id="first", bash_command="echo {{ params.n }}",
                             env={"X": "1"}, cwd="/tmp", skip_on_exit_code=[42],
                             execution_timeout=timedelta(minutes=2), pool="default_pool",
                             queue="default", priority_weight=3, do_xcom_push=False,
                             retry_exponential_backoff=True,
                             max_retry_delay=timedelta(minutes=10))
        last = EmptyOperator(task_id="last", trigger_rule=TriggerRule.ALL_DONE)
        chain(first, [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")], last)

    with DAG("interval", schedule=timedelta(hours=4), start_date=datetime(2024, 1, 1)):
        EmptyOperator(task_id="t")
"""


def parse_all(dag_folder, files):
    documents = []
    for name in files:
        answer = dag_folder.parse(name)
        assert answer["error"] is None, (name, answer["error"])
        documents += answer["dags"]
    return documents


def test_sdk_documents_load_in_updraft(dag_folder, tmp_path):
    dag_folder.write("features.py", FEATURES)
    for example in EXAMPLES.glob("*.py"):
        dag_folder.write(example.name, example.read_text())
    names = ["features.py"] + sorted(p.name for p in EXAMPLES.glob("*.py"))
    documents = parse_all(dag_folder, names)
    if not knows_python_tasks(tmp_path):
        documents = [d for d in documents if not has_python_tasks(d)]
    assert {"features", "interval", "tutorial"} <= {d["dag_id"] for d in documents}
    listed, errors = load(tmp_path / "home", documents)
    assert errors == []
    assert listed == sorted(d["dag_id"] for d in documents)


def test_the_tutorial_runs_to_success(dag_folder, tmp_path):
    dag_folder.write("tutorial.py", (EXAMPLES / "tutorial.py").read_text())
    documents = parse_all(dag_folder, ["tutorial.py"])
    home = tmp_path / "home"
    listed, errors = load(home, documents)
    assert listed == ["tutorial"] and errors == []
    run = updraft(home, "dags", "test", "tutorial", "2024-03-01")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "of tutorial: success" in run.stdout
    for task_id in ("show_date", "pause", "report_window"):
        assert any(task_id in line and "success" in line for line in run.stdout.splitlines())


def test_python_examples_run_in_updraft(tmp_path):
    if not knows_python_tasks(tmp_path):
        pytest.skip("this updraft binary does not run Python tasks yet")
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    for example in EXAMPLES.glob("*.py"):
        (home / "dags" / example.name).write_text(example.read_text())
    errors = updraft(home, "dags", "list-import-errors", "-o", "json")
    assert json.loads(errors.stdout) == [], errors.stdout
    run = updraft(home, "dags", "test", "taskflow_etl", "2024-03-01")
    assert "of taskflow_etl: success" in run.stdout, run.stdout + run.stderr
    logs = list((home / "logs").rglob("*.log"))
    publish = [p for p in logs if "task_id=publish" in str(p)]
    assert publish and "2024-03-01: mean 15.3 C, peak 19.0 C" in publish[0].read_text()
    run = updraft(home, "dags", "test", "python_branching", "2024-03-01")
    assert "of python_branching: success" in run.stdout, run.stdout + run.stderr
    states = {line.split("┆")[0].strip("│ "): line.split("┆")[1].strip()
              for line in run.stdout.splitlines() if "┆" in line and "task_id" not in line}
    assert states == {"choose": "success", "fast_path": "success", "join": "success",
                      "thorough.check": "skipped", "thorough.process": "skipped"}

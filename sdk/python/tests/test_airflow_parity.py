"""Airflow's own example and tutorial DAGs, run on updraft, end as Airflow ends them (issue 12).

The DAG files come from the pinned Airflow wheels on the package index at test time
(tests/airflow_parity/fetch.py; nothing of Airflow is kept in this repository), and
tests/airflow_parity/expected.json holds what real Airflow did with each (`airflow dags test
DAG DATE`, recorded by tests/airflow_parity/record_airflow.py) and what updraft does:

- a file whose `updraft` is `unsupported: FEATURE` must fail to load with its `import_error`
  text (`FEATURE is not supported yet by updraft`) in the first line of its import error, so
  this test fails when support lands and the file must move;
- every other file loads without an error and each of its DAGs ends in Airflow's run state with
  Airflow's state for every task instance, unless the DAG records `updraft_differs` (why, and
  the states updraft gives), which is asserted just as strictly;
- a DAG that records `updraft_not_run` (why) is loaded but not run: Airflow itself never ended
  it (`timeout`), so there is no end state to compare.

Needs a built updraft binary (as test_updraft_loads.py) and the wheels: skipped, saying so, only
when the package index cannot be reached and the wheels are not cached yet.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_updraft_loads import BINARY, ROOT

sys.path.insert(0, str(ROOT / "tests" / "airflow_parity"))
import fetch  # noqa: E402

EXPECTED = fetch.load_expected()
UNSUPPORTED = "unsupported: "

pytestmark = pytest.mark.skipif(BINARY is None, reason="no updraft binary built")


def updraft(home, *args, timeout=300):
    env = dict(os.environ, UPDRAFT_HOME=str(home),
               # The examples import pendulum: tasks run with this suite's interpreter.
               UPDRAFT_CORE__PYTHON=sys.executable,
               # Some examples write under $AIRFLOW_HOME, which Airflow's tasks always have.
               AIRFLOW_HOME=str(home),
               # DAGs that start paused would not matter to `dags test`, but keep them plain.
               UPDRAFT_CORE__DAGS_ARE_PAUSED_AT_CREATION="false")
    return subprocess.run([str(BINARY), *args], env=env, capture_output=True, timeout=timeout,
                          text=True)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """An updraft home whose DAG folder holds Airflow's examples, parsed once."""
    home = tmp_path_factory.mktemp("parity")
    cache = Path(os.environ.get("UPDRAFT_PARITY_CACHE", fetch.DEFAULT_CACHE))
    try:
        origin = fetch.extract_examples(home / "dags", cache=cache)
    except fetch.IndexUnreachable as err:
        pytest.skip(f"Airflow parity check skipped: {err}")
    listed = updraft(home, "dags", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    errors = updraft(home, "dags", "list-import-errors", "-o", "json")
    assert errors.returncode == 0, errors.stderr
    import_errors = {Path(e["filename"]).name: e["error"] for e in json.loads(errors.stdout)}
    return {"home": home, "origin": origin, "import_errors": import_errors,
            "dag_ids": {d["dag_id"] for d in json.loads(listed.stdout)}}


def test_every_example_is_classified(examples):
    """A new example in a newer wheel (or one gone) must be recorded in expected.json."""
    files = EXPECTED["files"]
    assert sorted(examples["origin"]) == sorted(files)
    for name, origin in examples["origin"].items():
        assert files[name]["from"] == origin, name


def test_unsupported_examples_fail_naming_the_feature(examples):
    wrong = {}
    for name, entry in EXPECTED["files"].items():
        if not entry["updraft"].startswith(UNSUPPORTED):
            continue
        error = examples["import_errors"].get(name)
        first_line = error.splitlines()[0] if error else None
        if first_line is None or entry["import_error"] not in first_line:
            wrong[name] = {"expected": entry["import_error"], "import error": first_line}
    assert wrong == {}


def test_supported_examples_load(examples):
    supported = {n: e for n, e in EXPECTED["files"].items()
                 if not e["updraft"].startswith(UNSUPPORTED)}
    errors = {n: examples["import_errors"][n] for n in supported if n in examples["import_errors"]}
    assert errors == {}
    want = {dag_id for entry in supported.values() for dag_id in entry["dags"]}
    assert want - examples["dag_ids"] == set()


def _run(home, dag_id):
    done = updraft(home, "dags", "test", dag_id, EXPECTED["logical_date"], "-o", "json")
    try:
        run = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"error": done.stdout + done.stderr}
    tasks = {_key(ti): ti["state"] for ti in run["task_instances"]}
    return {"state": run["state"], "tasks": tasks}


def _key(ti):
    """A task instance as expected.json names it: mapped ones as `task_id[map_index]`."""
    map_index = ti.get("map_index", -1)
    if map_index is None or map_index < 0:
        return ti["task_id"]
    return f"{ti['task_id']}[{map_index}]"


def test_supported_examples_end_in_airflows_states(examples):
    dag_ids = sorted(dag_id for entry in EXPECTED["files"].values()
                     if not entry["updraft"].startswith(UNSUPPORTED)
                     for dag_id in entry["dags"]
                     if "updraft_not_run" not in EXPECTED["dags"][dag_id])
    # Runs share the home's database; a few at a time keep the 2-core machine busy without
    # making the runs wait on each other.
    with ThreadPoolExecutor(max_workers=3) as pool:
        got = dict(zip(dag_ids, pool.map(lambda d: _run(examples["home"], d), dag_ids)))
    mismatches = {}
    for dag_id in dag_ids:
        recorded = EXPECTED["dags"][dag_id]
        want = recorded.get("updraft_differs", recorded["airflow"])
        want = {"state": want["state"], "tasks": want["tasks"]}
        if got[dag_id] != want:
            mismatches[dag_id] = {"want": want, "got": got[dag_id]}
    assert mismatches == {}

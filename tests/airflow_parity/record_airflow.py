"""Records what real Airflow does with its own example DAGs, into expected.json's `airflow`
entries: the run's state and every task instance's state after `airflow dags test DAG DATE`.

Run it with the `python` of a virtualenv where the pinned Airflow is installed (outside this
repository; nothing here needs Airflow otherwise):

    python -m venv /tmp/airflow && /tmp/airflow/bin/pip install apache-airflow==3.3.2
    /tmp/airflow/bin/python tests/airflow_parity/record_airflow.py [DAG_ID ...]

Each DAG runs alone: its file (and the SQL templates) in a DAG folder of its own (so one file
that Airflow cannot serialize does not stop the others), in an AIRFLOW_HOME with SQLite made
fresh for the recording. A run whose process
keeps going after the run has ended (some do) is stopped once its state is final; one that
never ends (a sensor waiting for a human, another DAG, a file) is recorded as `timeout` after
RUN_LIMIT seconds with the states it had.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fetch

RUN_LIMIT = 240
LINGER = 15


def final_state(db, dag_id):
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            row = conn.execute("select state from dag_run where dag_id=? order by id desc limit 1",
                               (dag_id,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row and row[0] in ("success", "failed") else None


def states(db, dag_id):
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute("select run_id, state from dag_run where dag_id=? order by id desc "
                           "limit 1", (dag_id,)).fetchone()
        if row is None:
            return None, {}
        tasks = {}
        for task_id, map_index, state in conn.execute(
                "select task_id, map_index, state from task_instance where dag_id=? and "
                "run_id=?", (dag_id, row[0])):
            tasks[task_id if map_index < 0 else f"{task_id}[{map_index}]"] = state
    return row[1], dict(sorted(tasks.items()))


def record(airflow, work, examples, file_name, dag_id, date):
    home = work / "home"
    folder = work / "dags" / dag_id
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(examples / file_name, folder)
    if (examples / "sql").is_dir():
        shutil.copytree(examples / "sql", folder / "sql", dirs_exist_ok=True)
    db = home / "airflow.db"
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(folder),
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}")
    if not db.exists():
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    start, ended, outcome = time.time(), None, None
    with open(work / f"{dag_id}.log", "w") as log:
        proc = subprocess.Popen([airflow, "dags", "test", dag_id, date], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        while outcome is None:
            try:
                proc.wait(timeout=3)
                outcome = "exited"
            except subprocess.TimeoutExpired:
                if ended is None and final_state(db, dag_id):
                    ended = time.time()
                if (ended and time.time() - ended > LINGER) or time.time() - start > RUN_LIMIT:
                    proc.kill()
                    proc.wait()
                    outcome = "ended" if ended else "timeout"
    state, tasks = states(db, dag_id)
    entry = {"state": state if outcome != "timeout" else "timeout", "tasks": tasks}
    if state is None:
        entry["note"] = f"no run: see the log of `airflow dags test` ({outcome})"
    return entry


def main():
    airflow = str(Path(sys.executable).with_name("airflow"))
    expected = fetch.load_expected()
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        examples = work / "examples"
        fetch.extract_examples(examples)
        for file_name, entry in sorted(expected["files"].items()):
            for dag_id in entry["dags"]:
                if only and dag_id not in only:
                    continue
                result = record(airflow, work, examples, file_name, dag_id,
                                expected["logical_date"])
                expected["dags"].setdefault(dag_id, {})["airflow"] = result
                print(dag_id, json.dumps(result), flush=True)
    fetch.EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

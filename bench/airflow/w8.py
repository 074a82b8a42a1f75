#!/usr/bin/env python3
"""W8 (`python`) on Apache Airflow 3.3.2, to put beside updraft's figures in bench/RESULTS.md.

What it measures: the two DAGs of updraft's W8 (the same text as `python_chain` and
`python_fan` in bench/src/dag_folder.rs: a chain of 40 `@task`s, and start → 200 parallel
`@task`s → end, each callable returning `time.time()` taken as its first statement, which the
next task takes as its argument), run by `airflow standalone` as a user on one machine would:
AIRFLOW_HOME in a fresh temporary directory, SQLite, LocalExecutor, examples off, every other
setting Airflow's default. Both DAGs are unpaused, then each is triggered RUNS times one after
another (`airflow dags trigger`, waiting for the run to end before the next). From Airflow's
metadata database, per run:

- trigger → success: `dag_run.queued_at` → `dag_run.end_date`;
- fan task instances per second: 202 / (trigger → success);
- claimed → callable running, per task instance: the instant the callable began (its XCom
  `return_value`) minus `task_instance.start_date`. Airflow sets `start_date` when the task's
  supervisor, having forked the task process, tells the API server the try runs
  (`task_instances.start` in the Task SDK's supervisor); the child then loads the DAG file and
  calls the callable. Queued → callable (from `task_instance.queued_dttm`, set when the
  scheduler hands the try to the executor) is reported beside it, since Airflow has no row
  for the moment a LocalExecutor worker takes the try;
- the load average (/proc/loadavg) before and after each run.

Percentiles are nearest-rank, as in bench/src/stats.rs.

Usage (any Python 3 to run it; Airflow lives in a virtualenv outside the repository, created
with --python and `pip install apache-airflow==AIRFLOW_VERSION` when missing):

    python3 bench/airflow/w8.py [--venv /work/airflow-venv] [--runs 3] [--json out.json]
"""

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

AIRFLOW_VERSION = "3.3.2"
CHAIN, FAN = "python_chain40", "python_fan200"
CHAIN_LENGTH, FAN_WIDTH = 40, 200
RUN_LIMIT_S = 1800
PARSE_LIMIT_S = 600

# Same text as PYTHON_STEP, python_chain and python_fan in bench/src/dag_folder.rs.
PYTHON_STEP = '''import time
from datetime import datetime

from airflow.decorators import dag, task


@task
def step(upstream=None):
    started = time.time()
    values = upstream if isinstance(upstream, list) else [upstream]
    for value in values:
        if value is not None and not isinstance(value, float):
            raise ValueError(f"upstream returned {value!r}, expected an instant")
    return started

'''


def header(dag_id, what):
    return (PYTHON_STEP + f'@dag(dag_id="{dag_id}", description="updraft-bench, {what}", '
            f'schedule=None, start_date=datetime(2024, 1, 1))\ndef build():\n')


def python_chain(dag_id, n):
    return (header(dag_id, "a straight chain of Python tasks") + "    previous = None\n"
            f"    for i in range({n}):\n"
            '        previous = step.override(task_id=f"t{i:04d}")(previous)\n\n\nbuild()\n')


def python_fan(dag_id, width):
    return (header(dag_id, "start, a fan-out of Python tasks, end")
            + '    first = step.override(task_id="start")()\n'
            f'    middle = [step.override(task_id=f"t{{i:04d}}")(first) for i in range({width})]\n'
            '    step.override(task_id="end")(middle)\n\n\nbuild()\n')


def ensure_venv(venv, python):
    airflow = venv / "bin" / "airflow"
    if not airflow.exists():
        subprocess.run(["nice", "-n", "19", python, "-m", "venv", str(venv)], check=True)
        # No constraints file: only PyPI may be reachable (the constraints live on GitHub).
        subprocess.run(["nice", "-n", "19", str(venv / "bin" / "pip"), "install", "-q",
                        f"apache-airflow=={AIRFLOW_VERSION}"], check=True)
    version = subprocess.run([str(airflow), "version"], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
    if version != AIRFLOW_VERSION:
        sys.exit(f"{venv} holds Airflow {version}, not {AIRFLOW_VERSION}")
    return airflow


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/api/v2/monitor/health",
                                    timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def stop(proc):
    """Ends `standalone` and every process of its group (its components outlive it a while)."""
    for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace
        while time.time() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


def parse_ts(text):
    """A timestamp column as Airflow's SQLAlchemy type writes it to SQLite (UTC)."""
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def query(db, sql, args=()):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(sql, args).fetchall()


def wait_for(what, limit_s, probe, proc):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"airflow standalone exited ({proc.returncode}) while waiting for {what}")
        try:
            value = probe()
        except sqlite3.Error:
            value = None
        if value:
            return value
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")


def percentile(values, p):
    s = sorted(values)
    rank = max(1, min(len(s), -(-len(s) * p // 100)))
    return s[int(rank) - 1]


def median(values):
    s, n = sorted(values), len(values)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def measure_run(db, dag_id, run_id):
    queued, end, state = query(db, "select queued_at, end_date, state from dag_run "
                                   "where dag_id=? and run_id=?", (dag_id, run_id))[0]
    tis = query(db, "select task_id, start_date, queued_dttm, end_date, state from task_instance "
                    "where dag_id=? and run_id=? and map_index=-1", (dag_id, run_id))
    xcoms = dict(query(db, "select task_id, value from xcom where dag_id=? and run_id=? "
                           "and key='return_value' and map_index=-1", (dag_id, run_id)))
    to_callable, queued_to_callable = [], []
    by_task = {t[0]: t for t in tis}
    # As updraft's "median hop": a chain task's end → the next task's start_date.
    hops = [(parse_ts(by_task[f"t{i + 1:04d}"][1]) - parse_ts(by_task[f"t{i:04d}"][3])) * 1e3
            for i in range(CHAIN_LENGTH - 1)] if dag_id == CHAIN else []
    for task_id, start, queued_dttm, _, ti_state in tis:
        if ti_state != "success" or task_id not in xcoms:
            sys.exit(f"{dag_id} {run_id}: task {task_id} is {ti_state}, XCom "
                     f"{xcoms.get(task_id)!r}")
        value = xcoms[task_id]
        began = float(json.loads(value) if isinstance(value, (str, bytes)) else value)
        to_callable.append((began - parse_ts(start)) * 1e3)
        queued_to_callable.append((began - parse_ts(queued_dttm)) * 1e3)
    run_s = parse_ts(end) - parse_ts(queued)
    return {"run_id": run_id, "state": state, "task_instances": len(tis), "run_s": run_s, "hops_ms": hops,
            "claimed_to_callable_ms": to_callable, "queued_to_callable_ms": queued_to_callable}


def trigger_and_wait(airflow, env, db, dag_id, n, proc):
    run_id = f"w8_{dag_id}_{n}"
    before = loadavg()
    subprocess.run(["nice", "-n", "19", str(airflow), "dags", "trigger", dag_id, "--run-id",
                    run_id], env=env, check=True, capture_output=True)

    def ended():
        rows = query(db, "select state from dag_run where dag_id=? and run_id=?",
                     (dag_id, run_id))
        return rows and rows[0][0] in ("success", "failed") and rows[0][0]

    state = wait_for(f"{dag_id} run {run_id}", RUN_LIMIT_S, ended, proc)
    result = measure_run(db, dag_id, run_id) if state == "success" else {"state": state}
    result["load_before"], result["load_after"] = before, loadavg()
    print(f"{dag_id} {run_id}: {state} "
          f"{result.get('run_s', float('nan')):.2f} s, load {before} → {result['load_after']}",
          flush=True)
    return result


def summarize(results):
    rows = []

    def add(label, values, fmt):
        rows.append((label, f"{fmt(median(values))} ({fmt(min(values))}–{fmt(max(values))})"))

    s, ms = (lambda v: f"{v:.1f}"), (lambda v: f"{v:,.0f}")
    chain, fan = results[CHAIN], results[FAN]
    add("chain of 40 @tasks: trigger → success, s", [r["run_s"] for r in chain], s)
    add("chain: median hop (task end → next start_date), ms",
        [median(r["hops_ms"]) for r in chain], lambda v: f"{v:,.0f}")
    add("start → 200 @tasks → end: trigger → success, s", [r["run_s"] for r in fan], s)
    add("fan: task instances per second", [r["task_instances"] / r["run_s"] for r in fan],
        lambda v: f"{v:.2f}")
    for key, what in (("claimed_to_callable_ms", "start_date → callable"),
                      ("queued_to_callable_ms", "queued → callable")):
        for p in (50, 99):
            add(f"{what}, p{p}, chain and fan, ms",
                [percentile(c[key] + f[key], p) for c, f in zip(chain, fan)], ms)
            add(f"{what}, p{p}, chain alone, ms", [percentile(c[key], p) for c in chain], ms)
            add(f"{what}, p{p}, fan alone, ms", [percentile(f[key], p) for f in fan], ms)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get(
        "AIRFLOW_VENV", "/work/airflow-venv")))
    parser.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3",
                        help="interpreter for a new virtualenv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every run's figures here")
    parser.add_argument("--keep-home", action="store_true", help="keep AIRFLOW_HOME")
    args = parser.parse_args()
    airflow = ensure_venv(args.venv, args.python)

    home = Path(tempfile.mkdtemp(prefix="airflow-w8-"))
    dags = home / "dags"
    dags.mkdir()
    (dags / f"{CHAIN}.py").write_text(python_chain(CHAIN, CHAIN_LENGTH))
    (dags / f"{FAN}.py").write_text(python_fan(FAN, FAN_WIDTH))
    db = home / "airflow.db"
    port = free_port()
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__EXECUTOR="LocalExecutor",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}",
               AIRFLOW__API__PORT=str(port),
               # Task processes report to the api-server's execution API, which is on 8080
               # unless told otherwise; another port keeps clear of whatever runs there.
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{port}/execution/",
               # `standalone` starts its components as `airflow …` found on PATH.
               PATH=f"{airflow.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    print(f"AIRFLOW_HOME={home}, load {loadavg()}", flush=True)
    log = open(home / "standalone.log", "w")
    started = time.time()
    proc = subprocess.Popen(["nice", "-n", "19", str(airflow), "standalone"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def parsed():
            rows = query(db, "select count(*) from serialized_dag where dag_id in (?, ?)",
                         (CHAIN, FAN))
            return rows[0][0] == 2

        wait_for("both DAGs parsed", PARSE_LIMIT_S, parsed, proc)
        wait_for("the api-server", PARSE_LIMIT_S, lambda: healthy(port), proc)
        print(f"both DAGs parsed {time.time() - started:.1f} s after start", flush=True)
        for dag_id in (CHAIN, FAN):
            subprocess.run(["nice", "-n", "19", str(airflow), "dags", "unpause", dag_id],
                           env=env, check=True, capture_output=True)
        results = {dag_id: [trigger_and_wait(airflow, env, db, dag_id, n, proc)
                            for n in range(1, args.runs + 1)] for dag_id in (CHAIN, FAN)}
    finally:
        stop(proc)
        log.close()
    if args.json:
        args.json.write_text(json.dumps({"airflow": AIRFLOW_VERSION, "runs": results},
                                        indent=1) + "\n")
    failed = [r for rs in results.values() for r in rs if r["state"] != "success"]
    if failed:
        sys.exit(f"{len(failed)} runs did not succeed: see {home}/standalone.log")
    print(f"\n| figure (Airflow {AIRFLOW_VERSION}, {args.runs} runs) | median (min–max) |\n|---|---|")
    for label, value in summarize(results):
        print(f"| {label} | {value} |")
    for dag_id, rs in results.items():
        for r in rs:
            print(f"{dag_id} {r['run_id']}: {r['run_s']:.2f} s, load "
                  f"{' '.join(r['load_before'])} → {' '.join(r['load_after'])}")
    if not args.keep_home:
        import shutil
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"AIRFLOW_HOME kept: {home}")


if __name__ == "__main__":
    main()

"""`python -m updraft._callback`: a Python callback found again in its DAG file and called
with Airflow's context, as updraft's notification delivery runs it."""

import json
import subprocess
import sys

from conftest import _env

DAG_FILE = """
    import json, os
    from airflow.sdk import DAG
    from airflow.notifications.basenotifier import BaseNotifier
    from airflow.providers.standard.operators.bash import BashOperator

    OUT = os.environ["CALLBACK_OUT"]

    def record(context):
        seen = {
            "dag": context["dag"].dag_id,
            "task": context["task"].task_id if "task" in context else None,
            "ti": [context["ti"].task_id, context["ti"].try_number, context["ti"].state]
                  if "ti" in context else None,
            "run": [context["dag_run"].run_id, context["dag_run"].state],
            "ds": context["ds"],
            "params": context["params"],
            "exception": str(context.get("exception")) if "exception" in context else None,
            "exception_type": type(context["exception"]).__name__
                              if "exception" in context else None,
            "reason": context.get("reason"),
        }
        with open(OUT, "w") as f:
            json.dump(seen, f)

    def boom(context):
        raise RuntimeError("callback broke")

    class Note(BaseNotifier):
        template_fields = ("message",)

        def __init__(self, message):
            self.message = message

        def notify(self, context):
            with open(OUT, "w") as f:
                f.write(self.message)

    with DAG("cb", params={"who": "ops"}, on_failure_callback=[record, boom]):
        BashOperator(task_id="t", bash_command="exit 1",
                     on_failure_callback=[record, Note("{{ ti.task_id }} of {{ dag.dag_id }}")])
"""

TASK_EVENT = {
    "event": "task_failure", "dag_id": "cb", "run_id": "manual__1", "run_type": "manual",
    "logical_date": "2026-01-02T00:00:00+00:00", "ds": "2026-01-02",
    "ts": "2026-01-02T00:00:00+00:00", "conf": {}, "task_id": "t", "map_index": -1,
    "try_number": 2, "state": "failed", "exception": "Bash command failed (exit code 1)",
    "run_state": "running",
}


def call(dag_folder, tmp_path, request):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "updraft._callback"], input=json.dumps(request).encode(),
        env=_env(dag_folder.path, {"CALLBACK_OUT": str(out)}), capture_output=True,
        timeout=60,
    )
    return done, (out.read_text() if out.exists() else None)


def request(dag_file, **fields):
    return {"dag_file": str(dag_file), "dag_id": "cb", "task_id": "t",
            "callback": "on_failure_callback", "index": 0, "context": TASK_EVENT, **fields}


def test_a_task_callback_gets_airflows_context(dag_folder, tmp_path):
    file = dag_folder.write("cb.py", DAG_FILE)
    done, out = call(dag_folder, tmp_path, request(file))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(out) == {
        "dag": "cb", "task": "t", "ti": ["t", 2, "failed"], "run": ["manual__1", "running"],
        "ds": "2026-01-02", "params": {"who": "ops"},
        "exception": "Bash command failed (exit code 1)", "exception_type": "AirflowException",
        "reason": None,
    }


def test_a_custom_notifier_renders_its_template_fields_and_notifies(dag_folder, tmp_path):
    file = dag_folder.write("cb.py", DAG_FILE)
    done, out = call(dag_folder, tmp_path, request(file, index=1))
    assert done.returncode == 0, done.stderr.decode()
    assert out == "t of cb"


def test_a_dag_callback_gets_the_run_and_the_reason_without_a_task(dag_folder, tmp_path):
    file = dag_folder.write("cb.py", DAG_FILE)
    event = {k: v for k, v in TASK_EVENT.items()
             if k not in ("task_id", "map_index", "try_number", "exception")}
    event.update(event="dag_failure", state="failed", reason="task_failure")
    done, out = call(dag_folder, tmp_path, request(file, task_id=None, context=event))
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(out)
    assert seen["task"] is None and seen["ti"] is None
    assert seen["run"] == ["manual__1", "failed"]
    assert seen["reason"] == "task_failure"


def test_a_callback_that_raises_exits_1_with_the_error(dag_folder, tmp_path):
    file = dag_folder.write("cb.py", DAG_FILE)
    done, _ = call(dag_folder, tmp_path, request(file, task_id=None, index=1))
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last == "updraft._callback: boom raised RuntimeError: callback broke"


def test_a_callback_that_is_gone_is_named(dag_folder, tmp_path):
    file = dag_folder.write("cb.py", DAG_FILE)
    for fields, message in [
        ({"index": 5}, "on_failure_callback of task 't' has no callback at position 5"),
        ({"task_id": "gone"}, "DAG 'cb' has no task 'gone'"),
        ({"dag_id": "other"}, "the DAG file no longer defines DAG 'other'"),
    ]:
        done, _ = call(dag_folder, tmp_path, request(file, **fields))
        assert done.returncode == 1
        assert done.stderr.decode().strip().endswith(message), done.stderr.decode()

"""Branching, short-circuiting, latest-only, bash-producing and custom operators at run time:
what they return and which tasks they tell the worker to skip."""

import datetime
import os

import pytest

from conftest import FakeWorker

KINDS = """
    from updraft import (DAG, task, BranchPythonOperator, ShortCircuitOperator,
                         LatestOnlyOperator, EmptyOperator, BashOperator, BaseOperator,
                         TaskGroup, chain)

    with DAG("kinds", params={"pick": "left"}):
        @task.branch
        def choose(params=None):
            return params["pick"]

        left = EmptyOperator(task_id="left")
        right = EmptyOperator(task_id="right")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        with TaskGroup("grouped") as grouped:
            EmptyOperator(task_id="inside")
        choose() >> [left, right, join, grouped]
        left >> join

        BranchPythonOperator(task_id="bad_branch", python_callable=lambda: "nowhere")
        BranchPythonOperator(task_id="to_group", python_callable=lambda: ["grouped"]) >> [
            grouped, EmptyOperator(task_id="other")]

        @task.short_circuit
        def gate(value):
            return value

        gate(0) >> EmptyOperator(task_id="after_gate") >> EmptyOperator(task_id="further")
        gate.override(task_id="open_gate")(1) >> EmptyOperator(task_id="after_open")
        ShortCircuitOperator(task_id="direct_only", python_callable=lambda: False,
                             ignore_downstream_trigger_rules=False) >> EmptyOperator(
            task_id="d1") >> EmptyOperator(task_id="d2")

        LatestOnlyOperator(task_id="latest") >> EmptyOperator(task_id="after_latest")

        @task.bash
        def make_command(word):
            return f"echo first; echo {word} {{{{ ds }}}}"

        make_command("hello")

        @task.bash
        def exits(code):
            return f"echo about to exit; exit {code}"

        exits.override(task_id="exit_99")(99)
        exits.override(task_id="exit_3")(3)

        @task
        def produce():
            return "echo produced"

        BashOperator(task_id="from_xcom", bash_command=produce())
        BashOperator(task_id="own_params", bash_command="echo {{ params.word }}",
                     params={"word": "from params"})

        class Greeting(BaseOperator):
            template_fields = ("who",)

            def __init__(self, who, **kwargs):
                super().__init__(**kwargs)
                self.who = who

            def execute(self, context):
                print(f"hello {self.who}")
                self.log.info("logged at info level by %s", self.task_id)
                return self.who

        Greeting(task_id="custom", who="{{ ds_nodash }}")
"""


@pytest.fixture
def kinds(dag_folder, tmp_path):
    file = dag_folder.write("kinds.py", KINDS)

    def run(task_id, worker=None, **context):
        worker = worker or FakeWorker(tmp_path)
        return worker.run(file, "kinds", task_id, **context)

    return run


def test_branch_skips_the_direct_downstream_it_did_not_choose(kinds):
    code, finish, _ = kinds("choose")
    assert code == 0
    assert finish["return_value"] == "left"
    # join is downstream of the chosen task, so it stays.
    assert finish["skip"] == ["grouped.inside", "right"]
    _, finish, _ = kinds("choose", params={"pick": "grouped"})
    assert finish["skip"] == ["join", "left", "right"]


def test_branch_to_a_group_and_to_an_unknown_task(kinds):
    _, finish, _ = kinds("to_group")
    assert finish["skip"] == ["other"]
    code, finish, _ = kinds("bad_branch")
    assert code == 1
    assert finish["error"] == ("AirflowException: 'branch_task_ids' must contain only valid "
                               "task_ids. Invalid tasks found: ['nowhere'].")


def test_short_circuit(kinds):
    _, finish, _ = kinds("gate")
    assert (finish["state"], finish["skip"]) == ("success", ["after_gate", "further"])
    _, finish, _ = kinds("open_gate")
    assert (finish["state"], finish["skip"]) == ("success", [])
    _, finish, _ = kinds("direct_only")
    assert finish["skip"] == ["d1"]


def test_latest_only(kinds):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    latest = {"data_interval_start": (now - datetime.timedelta(days=1, hours=1)).isoformat(),
              "data_interval_end": (now - datetime.timedelta(hours=1)).isoformat()}
    _, finish, _ = kinds("latest", **latest)
    assert finish["skip"] == []
    _, finish, _ = kinds("latest")  # the fake worker's run is from 2024
    assert finish["skip"] == ["after_latest"]
    _, finish, _ = kinds("latest", data_interval_start="2024-03-01T00:00:00+00:00",
                         data_interval_end="2024-03-01T00:00:00+00:00")  # @once
    assert finish["skip"] == []
    _, finish, _ = kinds("latest", run_type="manual",
                         dag_run={"run_id": "manual__1", "run_type": "manual", "conf": {}})
    assert finish["skip"] == []


def test_task_bash_runs_the_rendered_command_and_returns_the_last_line(kinds):
    code, finish, log = kinds("make_command")
    assert code == 0, log
    assert finish["return_value"] == "hello 2024-03-01"
    assert "first\nhello 2024-03-01\n" in log


def test_task_bash_exit_codes(kinds):
    code, finish, log = kinds("exit_99")
    assert (code, finish["state"]) == (0, "skipped")
    assert "about to exit" in log
    code, finish, _ = kinds("exit_3")
    assert (code, finish["state"], finish["retry"]) == (1, "failed", True)
    assert finish["error"] == ("AirflowException: Bash command failed. The command returned a "
                               "non-zero exit code 3.")


def test_bash_operator_with_a_runtime_command_or_own_params(kinds, tmp_path):
    worker = FakeWorker(tmp_path, xcoms={("produce", "return_value"): "echo produced"})
    _, finish, _ = kinds("from_xcom", worker)
    assert finish["return_value"] == "produced"
    _, finish, _ = kinds("own_params")
    assert finish["return_value"] == "from params"


def test_custom_operator_renders_its_template_fields(kinds):
    code, finish, log = kinds("custom")
    assert code == 0, log
    assert finish["return_value"] == "20240301"
    assert "hello 20240301" in log
    assert "INFO - logged at info level by custom" in log


def test_without_jinja2_simple_templates_render_and_others_fail_clearly(tmp_path, dag_folder):
    blocker = tmp_path / "no_jinja"
    blocker.mkdir()
    # Shadows an installed jinja2 so the runner takes its fallback path.
    (blocker / "jinja2.py").write_text("raise ImportError('jinja2 is hidden by the test')\n")
    file = dag_folder.write("simple.py", """
        from updraft import DAG, PythonOperator

        with DAG("simple", params={"n": 3}):
            PythonOperator(task_id="ok", python_callable=lambda x: x,
                           op_args=["{{ ds }} {{params.n}} {{ dag_run.run_type }}"])
            PythonOperator(task_id="needs_jinja", python_callable=lambda x: x,
                           op_args=["{{ ds | upper }}"])
    """)
    worker = FakeWorker(tmp_path)

    def run(task_id):
        from conftest import SDK_SRC

        return worker.run(file, "simple", task_id, env={
            "PYTHONPATH": os.pathsep.join([str(blocker), str(SDK_SRC), str(file.parent)])})

    _, finish, log = run("ok")
    assert finish["return_value"] == "2024-03-01 3 scheduled", log
    _, finish, _ = run("needs_jinja")
    assert finish["state"] == "failed"
    assert "needs Jinja (install jinja2 in the task's Python)" in finish["error"]


def test_a_subclass_of_a_native_operator_with_its_own_execute_is_a_python_task(
        tmp_path, dag_folder):
    file = dag_folder.write("skipper.py", """
        from updraft import DAG, AirflowSkipException
        from airflow.operators.dummy_operator import DummyOperator
        from airflow.operators.bash import BashOperator

        class SkipOperator(DummyOperator):
            def execute(self, context):
                raise AirflowSkipException("skipping on purpose")

        class Placeholder(DummyOperator):
            ui_color = "#fff"

        with DAG("skipper"):
            SkipOperator(task_id="skip") >> Placeholder(task_id="plain")
            BashOperator(task_id="bash", bash_command="true")
    """)
    tasks = {t["task_id"]: t for t in dag_folder.dag("skipper.py")["tasks"]}
    assert (tasks["skip"]["operator"], tasks["skip"]["python_kind"]) == ("python", "task")
    assert tasks["skip"]["python_callable"] == "SkipOperator.execute"
    assert tasks["plain"]["operator"] == "empty"
    assert tasks["bash"]["operator"] == "bash"
    code, finish, log = FakeWorker(tmp_path).run(file, "skipper", "skip")
    assert (code, finish["state"]) == (0, "skipped")
    assert "skipping on purpose" in log


def test_jinja_templates_with_airflows_filters_when_jinja2_is_installed(tmp_path, dag_folder):
    pytest.importorskip("jinja2")
    file = dag_folder.write("jinja.py", """
        from updraft import DAG, PythonOperator

        with DAG("jinja", params={"items": ["a", "b"]}):
            PythonOperator(task_id="t", python_callable=lambda x: x, op_args=[
                "{{ logical_date | ds_nodash }}-{% for i in params['items'] %}{{ i }}{% endfor %}"
                "-{{ macros.ds_add(ds, 1) }}"])
            PythonOperator(task_id="undefined", python_callable=lambda x: x,
                           op_args=["{{ not_there }}"])
    """)
    _, finish, log = FakeWorker(tmp_path).run(file, "jinja", "t")
    assert finish["return_value"] == "20240301-ab-2024-03-02", log
    _, finish, _ = FakeWorker(tmp_path).run(file, "jinja", "undefined")
    assert finish["state"] == "failed"
    assert "'not_there' is undefined" in finish["error"]

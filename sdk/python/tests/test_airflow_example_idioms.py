"""Idioms of Airflow's own example DAGs (see test_airflow_parity.py) that the SDK must take:
their import paths, `@task.short_circuit` options, XComs pushed from a bash template, template
files named by `templates_exts`, `task.render_template`, bash output processors and upstream
results in a bash task's env."""

import textwrap

import pytest

from conftest import FakeWorker, tasks_by_id

IDIOMS = """
    import json
    import shlex

    from airflow.providers.common.compat.sdk import TriggerRule, timezone
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.utils.weekday import WeekDay
    from airflow.sdk import DAG, get_current_context, task
    from airflow.sdk.exceptions import AirflowSkipException

    with DAG("idioms", start_date=timezone.datetime(2024, 1, 1), schedule=None,
             params={"who": "dag"}):
        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def gate():
            return False

        gate() >> EmptyOperator(task_id="direct") >> EmptyOperator(
            task_id="later", trigger_rule=TriggerRule.ALL_DONE)

        BashOperator(task_id="push_in_template",
                     bash_command='echo "pushed {{ ti.xcom_push(key="k", value="v") }}" && '
                                  'echo last')

        @task(templates_exts=[".sql"])
        def from_file(query, missing=None):
            print(f"query: {query}")
            return query

        from_file(query="queries/q.sql")
        from_file.override(task_id="missing_file")(query="queries/none.sql")

        @task
        def renders():
            context = get_current_context()
            return context["task"].render_template(
                ["{{ ds }}", {"who": "{{ params.who }}"}, 3], context)

        renders()

        @task
        def weekend(day=None):
            if WeekDay.get_weekday_number(day) in (WeekDay.SATURDAY, WeekDay.SUNDAY):
                return "sleep"
            raise AirflowSkipException("a weekday")

        weekend(day="{{ logical_date.strftime('%A') }}")

        @task.bash(multiple_outputs=True, output_processor=json.loads)
        def stats():
            return "echo " + shlex.quote(json.dumps({"n": "3"}))

        counted = stats()

        @task.bash
        def use_env():
            return 'echo "n=$N"'

        use_env.override(env={"N": counted["n"]})()
        BashOperator(task_id="processed", bash_command="echo 7", output_processor=int)
"""


@pytest.fixture
def idioms(dag_folder, tmp_path):
    file = dag_folder.write("idioms.py", IDIOMS)
    dag_folder.write("queries/q.sql", "select * from t where day = '{{ ds }}'")

    def run(task_id, worker=None, **context):
        return (worker or FakeWorker(tmp_path)).run(file, "idioms", task_id, **context)

    return run


def test_the_examples_import_paths_load(dag_folder):
    dag_folder.write("idioms.py", IDIOMS)
    tasks = tasks_by_id(dag_folder.dag("idioms.py"))
    assert tasks["later"]["trigger_rule"] == "all_done"
    # A command that pushes XComs while rendered is rendered by the SDK (in Python).
    assert tasks["push_in_template"]["operator"] == "python"


def test_short_circuit_decorator_can_spare_the_indirect_downstream(idioms):
    code, finish, _ = idioms("gate")
    assert (code, finish["state"], finish["skip"]) == (0, "success", ["direct"])


def test_xcom_push_in_a_bash_template(idioms, tmp_path):
    worker = FakeWorker(tmp_path)
    code, finish, log = idioms("push_in_template", worker)
    assert code == 0, log
    assert worker.pushed == {"k": "v"}
    assert finish["return_value"] == "last"
    assert "pushed None" in log


def test_templates_exts_read_and_render_the_named_file(idioms):
    code, finish, log = idioms("from_file")
    assert code == 0, log
    assert finish["return_value"] == "select * from t where day = '2024-03-01'"
    code, finish, _ = idioms("missing_file")
    assert (code, finish["state"]) == (1, "failed")
    assert "template file 'queries/none.sql' not found" in finish["error"]


def test_template_files_are_found_in_the_dag_folder_the_pinned_file_came_from(tmp_path):
    # The worker runs the pinned source from a directory of its own: the template file is only
    # in the DAG folder, which the context names.
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    (pinned / "idioms.py").write_text(textwrap.dedent(IDIOMS))
    folder = tmp_path / "folder"
    (folder / "queries").mkdir(parents=True)
    (folder / "queries" / "q.sql").write_text("select {{ ds_nodash }}")
    worker = FakeWorker(tmp_path)
    code, finish, log = worker.run(pinned / "idioms.py", "idioms", "from_file",
                                   dag_folder=str(folder))
    assert code == 0, log
    assert finish["return_value"] == "select 20240301"
    code, finish, _ = worker.run(pinned / "idioms.py", "idioms", "from_file")
    assert finish["error"].endswith(f"template file 'queries/q.sql' not found in {pinned}")


def test_render_template_renders_nested_values(idioms):
    code, finish, log = idioms("renders", params={"who": "dag"})
    assert code == 0, log
    assert finish["return_value"] == ["2024-03-01", {"who": "dag"}, 3]


def test_weekday_names_and_skip_from_airflow_sdk_exceptions(idioms):
    # The fake worker's run is on Friday 2024-03-01.
    _, finish, _ = idioms("weekend")
    assert finish["state"] == "skipped"


def test_compat_names_updraft_lacks_are_refused_by_name(dag_folder):
    dag_folder.write("alias.py", """
        from airflow.providers.common.compat.sdk import AssetAlias
    """)
    error = dag_folder.parse("alias.py")["error"]
    assert error["message"] == ("NotSupportedByUpdraft: AssetAlias is not supported yet by "
                                "updraft (airflow.sdk.AssetAlias)")


def test_output_processor_turns_the_last_line_into_the_result(idioms, tmp_path):
    worker = FakeWorker(tmp_path)
    code, finish, log = idioms("stats", worker)
    assert code == 0, log
    assert finish["return_value"] == {"n": "3"}
    assert worker.pushed == {"n": "3"}
    _, finish, _ = idioms("processed")
    assert finish["return_value"] == 7


def test_an_upstream_result_in_a_bash_tasks_env(dag_folder, idioms, tmp_path):
    dag_folder.write("idioms.py", IDIOMS)
    use_env = tasks_by_id(dag_folder.dag("idioms.py"))["use_env"]
    assert use_env["dependencies"] == ["stats"]
    # Airflow's str(XComArg): the template that pulls it, which the worker renders too.
    assert use_env["env"] == {
        "N": "{{ task_instance.xcom_pull(task_ids='stats', dag_id='idioms', key='n') }}"}
    worker = FakeWorker(tmp_path, xcoms={("stats", "n"): "3"})
    code, finish, log = idioms("use_env", worker)
    assert code == 0, log
    assert finish["return_value"] == "n=3"


def test_a_task_asking_for_the_task_state_store_is_refused_by_name(dag_folder):
    dag_folder.write("store.py", """
        from airflow.sdk import DAG, task

        with DAG("store"):
            @task
            def process(table, task_state_store=None):
                return table

            process("t")
    """)
    error = dag_folder.parse("store.py")["error"]
    assert error["message"].startswith(
        "NotSupportedByUpdraft: The task_state_store context value is not supported yet")

"""Airflow's module names resolve to the SDK; what updraft lacks fails naming the feature."""

import pytest

from conftest import tasks_by_id

AIRFLOW2 = """
    from datetime import datetime, timedelta

    from airflow import DAG
    from airflow.models import Variable
    from airflow.models.baseoperator import chain
    from airflow.models.param import Param
    from airflow.operators.bash import BashOperator
    from airflow.operators.bash_operator import BashOperator as OldBash
    from airflow.operators.dummy import DummyOperator
    from airflow.operators.dummy_operator import DummyOperator as OldDummy
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.latest_only import LatestOnlyOperator
    from airflow.operators.python import BranchPythonOperator, PythonOperator
    from airflow.operators.python import ShortCircuitOperator, get_current_context
    from airflow.utils.dates import days_ago
    from airflow.utils.edgemodifier import Label
    from airflow.utils.task_group import TaskGroup
    from airflow.utils.trigger_rule import TriggerRule
    from airflow.utils.helpers import cross_downstream
    from airflow.exceptions import AirflowSkipException, AirflowFailException
    from airflow.hooks.base import BaseHook

    def pick(**kwargs):
        return "a"

    default_args = {
        "owner": "airflow", "depends_on_past": False, "email": ["x@example.com"],
        "email_on_failure": False, "email_on_retry": False, "retries": 1,
        "retry_delay": timedelta(minutes=5), "provide_context": True,
    }
    with DAG("airflow2", default_args=default_args, schedule_interval=timedelta(days=1),
             start_date=days_ago(1), catchup=False, concurrency=4,
             params={"p": Param("v", type="string")}) as dag:
        start = DummyOperator(task_id="start")
        branch = BranchPythonOperator(task_id="branch", python_callable=pick,
                                      provide_context=True)
        a = OldBash(task_id="a", bash_command="echo a")
        b = PythonOperator(task_id="b", python_callable=pick)
        with TaskGroup("grp") as grp:
            OldDummy(task_id="x")
        end = EmptyOperator(task_id="end", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        chain(start, LatestOnlyOperator(task_id="latest"), branch)
        branch >> Label("a path") >> a >> end
        branch >> [b, grp] >> end
"""

AIRFLOW3 = """
    import pendulum_or_datetime

    from airflow.sdk import DAG, dag, task, task_group, Param, chain, Label, TaskGroup
    from airflow.sdk import get_current_context, Variable, BaseOperator
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.providers.standard.operators.latest_only import LatestOnlyOperator
    from airflow.decorators import dag as dag2, task as task2

    @dag(schedule="@daily", start_date=pendulum_or_datetime.START, catchup=False,
         tags=["example"])
    def airflow3():
        @task
        def extract():
            return {"a": 1}

        @task_group
        def process(data):
            @task
            def double(d):
                return d["a"] * 2
            return double(data)

        BashOperator(task_id="show", bash_command="echo {{ ds }}") << process(extract())

    airflow3()
"""


def test_an_airflow_2_style_file_loads(dag_folder):
    dag_folder.write("airflow2.py", AIRFLOW2)
    doc = dag_folder.dag("airflow2.py")
    assert doc["schedule"] == 86400
    assert doc["catchup"] is False
    assert doc["max_active_tasks"] == 4
    tasks = tasks_by_id(doc)
    assert sorted(tasks) == ["a", "b", "branch", "end", "grp.x", "latest", "start"]
    assert tasks["branch"]["dependencies"] == ["latest"]
    assert tasks["a"]["dependencies"] == ["branch"]
    assert tasks["end"]["dependencies"] == ["a", "b", "grp.x"]
    assert tasks["end"]["trigger_rule"] == "none_failed_min_one_success"
    assert tasks["start"]["operator"] == "empty"
    assert tasks["a"]["retries"] == 1 and tasks["a"]["retry_delay"] == 300


def test_an_airflow_3_style_file_loads(dag_folder):
    dag_folder.write("pendulum_or_datetime.py", """
        try:
            import pendulum
            START = pendulum.datetime(2024, 1, 1, tz="UTC")
        except ImportError:
            import datetime
            START = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    """)
    dag_folder.write("airflow3.py", AIRFLOW3)
    doc = dag_folder.dag("airflow3.py")
    assert doc["start_date"] == "2024-01-01T00:00:00+00:00"
    tasks = tasks_by_id(doc)
    assert tasks["process.double"]["dependencies"] == ["extract"]
    assert tasks["show"]["dependencies"] == ["process.double"]


@pytest.mark.parametrize("statement, feature", [
    ("from airflow.providers.docker.operators.docker_swarm import DockerSwarmOperator",
     "DockerSwarmOperator is not supported yet by updraft"),
    ("from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
     "KubernetesPodOperator is not supported yet by updraft"),
    ("from airflow.sensors.external_task import ExternalTaskSensorLink",
     "ExternalTaskSensorLink is not supported yet by updraft"),
    ("from airflow.sensors.bash import BashSensor", "BashSensor is not supported yet"),
    ("from airflow.sensors import external_task\nexternal_task.ExternalDagLink",
     "ExternalDagLink is not supported yet"),
    ("from airflow.sensors.external_task import ExternalTaskSensor\n"
     "ExternalTaskSensor(task_id='s', external_dag_id='d', execution_date_fn=lambda d: d)",
     "ExternalTaskSensor's execution_date_fn is not supported yet by updraft (use "
     "execution_delta)"),
    ("from airflow.providers.docker.operators.docker import DockerOperator\n"
     "DockerOperator(task_id='x', image='i', xcom_all=True)",
     "DockerOperator's xcom_all is not supported yet by updraft"),
    ("from airflow.datasets import DatasetAlias", "AssetAlias is not supported yet by updraft"),
    ("from airflow.sdk import AssetAlias", "AssetAlias is not supported yet by updraft"),
    ("from airflow.timetables.interval import CronDataIntervalTimetable",
     "CronDataIntervalTimetable is not supported yet by updraft"),
    ("from airflow.operators.python import PythonVirtualenvOperator",
     "PythonVirtualenvOperator is not supported yet by updraft"),
    ("from airflow.decorators import task\n@task.virtualenv\ndef f(): pass",
     "@task.virtualenv is not supported yet by updraft"),
    ("from airflow.decorators import task\n@task\ndef f(x): pass\n"
     "r = f.expand(x=[1])\nr.map(str).concat(r)",
     "concat() of an XComArg.map() is not supported yet by updraft"),
])
def test_unsupported_airflow_features_name_themselves(dag_folder, statement, feature):
    dag_folder.write("uses_it.py", "# a dag file\n" + statement + "\n")
    error = dag_folder.parse("uses_it.py")["error"]
    assert error is not None
    assert error["message"].startswith("NotSupportedByUpdraft: " + feature), error["message"]
    assert error["file"].endswith("uses_it.py")


def test_unsupported_is_an_import_error_for_optional_fallbacks(dag_folder):
    dag_folder.write("fallback.py", """
        try:
            from airflow.providers.docker.hooks.docker import DockerHook
        except ImportError:
            DockerHook = None
        from airflow import DAG
        from airflow.operators.empty import EmptyOperator
        with DAG("fallback"):
            EmptyOperator(task_id="t")
    """)
    assert dag_folder.dag("fallback.py")["dag_id"] == "fallback"


def test_airflow_utils_timezone(dag_folder):
    dag_folder.write("tz.py", """
        from airflow import DAG
        from airflow.utils import timezone
        from airflow.operators.empty import EmptyOperator
        with DAG("tz", schedule="@hourly", start_date=timezone.datetime(2024, 5, 6, 7)):
            EmptyOperator(task_id="t")
    """)
    assert dag_folder.dag("tz.py")["start_date"] == "2024-05-06T07:00:00+00:00"


def test_old_attribute_paths_from_the_airflow_package(dag_folder):
    dag_folder.write("old.py", """
        import airflow
        from airflow import DAG
        from airflow.operators.python_operator import PythonOperator

        with DAG("old", default_args={"start_date": airflow.utils.dates.days_ago(2)}):
            PythonOperator(task_id="t", python_callable=print)
    """)
    assert dag_folder.dag("old.py")["start_date"].endswith("T00:00:00+00:00")


@pytest.mark.parametrize("statement", [
    "from airflow.sdk.bases.operator import BaseOperator, chain",
    "from airflow.sdk.bases.hook import BaseHook",
    "from airflow.sdk.definitions.context import Context, get_current_context",
    "from airflow.sdk.definitions.dag import DAG, dag",
    "from airflow.sdk.definitions.taskgroup import TaskGroup",
    "from airflow.sdk.definitions.edges import Label",
    "from airflow.sdk import Context",
    "from airflow.utils.context import Context",
    "from airflow.operators.python import task",
    "from airflow.models.taskinstance import TaskInstance",
    "from airflow.models.dagrun import DagRun",
    "from airflow.utils.state import State, DagRunState, TaskInstanceState",
])
def test_names_used_in_type_hints_and_airflow_3_paths_import(dag_folder, statement):
    dag_folder.write("names.py", statement + "\nfrom airflow import DAG\nDAG('names')\n")
    answer = dag_folder.parse("names.py")
    assert answer["error"] is None, answer["error"]


def test_pendulum_dates_and_zones_when_pendulum_is_installed(tmp_path, dag_folder):
    pytest.importorskip("pendulum")
    file = dag_folder.write("pend.py", """
        import pendulum
        from airflow.sdk import DAG, task

        with DAG("pend", schedule="0 9 * * *", catchup=False,
                 start_date=pendulum.datetime(2024, 7, 1, tz="Europe/Amsterdam"),
                 end_date=pendulum.datetime(2030, 1, 1, tz="UTC")):
            @task
            def when(logical_date=None, data_interval_end=None):
                return [type(logical_date).__module__.split(".")[0],
                        logical_date.to_date_string(),
                        (data_interval_end - logical_date).in_hours()]

            when()
    """)
    doc = dag_folder.dag("pend.py")
    assert (doc["start_date"], doc["timezone"], doc["end_date"]) == (
        "2024-07-01T00:00:00+02:00", "Europe/Amsterdam", "2030-01-01T00:00:00+00:00")
    from conftest import FakeWorker

    _, finish, log = FakeWorker(tmp_path).run(file, "pend", "when")
    assert finish["return_value"] == ["pendulum", "2024-03-01", 24], log

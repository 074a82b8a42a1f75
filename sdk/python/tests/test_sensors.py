"""Sensors in the SDK: what their documents say (the worker pokes a file or HTTP sensor itself,
the scheduler holds the time sensors, a Python sensor is poked by the SDK), and one poke at run
time (`sensor_done` false until the wait is over, a PokeReturnValue's XCom)."""

import datetime

import pytest

from conftest import FakeWorker, tasks_by_id

SENSORS_DAG = """
    import datetime
    from airflow import DAG
    from airflow.sensors.filesystem import FileSensor
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync
    from airflow.providers.standard.sensors.time import TimeSensor
    from airflow.sensors.date_time import DateTimeSensorAsync
    from airflow.providers.http.sensors.http import HttpSensor
    from airflow.sdk import BaseSensorOperator, PokeReturnValue
    from airflow.decorators import task

    class CountingSensor(BaseSensorOperator):
        def __init__(self, limit, **kwargs):
            super().__init__(**kwargs)
            self.limit = limit

        def poke(self, context):
            return int(context["params"].get("n", 0)) >= self.limit

    with DAG("sensing", start_date=datetime.datetime(2024, 1, 1), schedule=None):
        FileSensor(task_id="file", filepath="in/{{ ds }}/*.csv", fs_conn_id="landing",
                   recursive=True, poke_interval=5, timeout=datetime.timedelta(minutes=10),
                   mode="reschedule", soft_fail=True)
        PythonSensor(task_id="py", python_callable=lambda: False, poke_interval=2,
                     exponential_backoff=True, max_wait=30)
        TimeDeltaSensor(task_id="delta", delta=datetime.timedelta(minutes=90))
        TimeDeltaSensorAsync(task_id="delta_async", delta=datetime.timedelta(seconds=5))
        TimeSensor(task_id="at_time", target_time=datetime.time(6, 30))
        DateTimeSensorAsync(task_id="at_instant",
                            target_time=datetime.datetime(2026, 1, 31, 7, 0))
        HttpSensor(task_id="http", http_conn_id="api", endpoint="health",
                   request_params={"deep": 1}, mode="reschedule")
        HttpSensor(task_id="http_checked", endpoint="health",
                   response_check=lambda response: "up" in response.text)
        CountingSensor(task_id="counting", limit=3, timeout=60)

        @task.sensor(poke_interval=1, timeout=20, mode="reschedule")
        def ready(params=None):
            if params.get("n", 0) >= 2:
                return PokeReturnValue(is_done=True, xcom_value={"n": params["n"]})
            return PokeReturnValue(is_done=False)

        ready()
"""


@pytest.fixture
def sensing(dag_folder, tmp_path):
    file = dag_folder.write("sensing.py", SENSORS_DAG)

    def run(task_id, **context):
        return FakeWorker(tmp_path).run(file, "sensing", task_id, **context)

    return dag_folder, run


def test_sensor_documents_say_who_pokes(sensing):
    dag_folder, _ = sensing
    tasks = tasks_by_id(dag_folder.dag("sensing.py"))
    assert tasks["file"]["operator"] == "file_sensor"
    assert tasks["file"]["file_sensor"] == {"filepath": "in/{{ ds }}/*.csv",
                                            "fs_conn_id": "landing", "recursive": True}
    assert tasks["file"]["sensor"] == {"poke_interval": 5, "timeout": 600,
                                       "mode": "reschedule", "soft_fail": True}
    assert tasks["py"]["operator"] == "python"
    assert tasks["py"]["python_kind"] == "sensor"
    assert tasks["py"]["sensor"] == {"poke_interval": 2, "timeout": 604800, "mode": "poke",
                                     "exponential_backoff": True, "max_wait": 30}
    assert tasks["delta"] == {"task_id": "delta", "operator": "time_delta_sensor",
                              "time_delta_sensor": {"delta": 5400}, **{
                                  k: v for k, v in tasks["delta"].items()
                                  if k not in ("task_id", "operator", "time_delta_sensor")}}
    assert "sensor" not in tasks["delta"], "the scheduler holds a time sensor"
    assert tasks["delta_async"]["time_delta_sensor"] == {"delta": 5}
    assert tasks["at_time"]["time_sensor"] == {"target_time": "06:30:00"}
    assert tasks["at_instant"]["date_time_sensor"] == {
        "target_time": "2026-01-31T07:00:00+00:00"}
    assert tasks["http"]["operator"] == "http"
    assert tasks["http"]["http"] == {"http_conn_id": "api", "method": "GET",
                                     "endpoint": "health", "data": {"deep": "1"}}
    assert tasks["http"]["sensor"]["mode"] == "reschedule"
    assert tasks["http_checked"]["operator"] == "python"
    assert tasks["http_checked"]["python_kind"] == "sensor"
    assert tasks["counting"]["python_kind"] == "sensor"
    assert tasks["counting"]["sensor"]["timeout"] == 60
    assert tasks["ready"]["python_kind"] == "sensor"
    assert tasks["ready"]["sensor"] == {"poke_interval": 1, "timeout": 20,
                                        "mode": "reschedule"}


def test_a_poke_says_whether_the_wait_is_over(sensing):
    _, run = sensing
    code, finish, log = run("counting", params={"n": 1})
    assert code == 0, log
    assert finish["state"] == "success"
    assert finish["sensor_done"] is False
    assert "return_value" not in finish
    _, finish, _ = run("counting", params={"n": 3})
    assert finish.get("sensor_done", True) is True
    assert finish.get("return_value") is None, "a bool poke pushes nothing"


def test_a_poke_return_value_carries_the_xcom(sensing):
    _, run = sensing
    _, finish, _ = run("ready", params={"n": 1})
    assert finish["sensor_done"] is False
    _, finish, log = run("ready", params={"n": 2})
    assert finish.get("sensor_done", True) is True, log
    assert finish["return_value"] == {"n": 2}


def test_bad_sensor_arguments_are_import_errors(dag_folder):
    for body, message in [
        ('FileSensor(task_id="f", filepath="x", mode="sleepy")',
         "The mode must be one of ['poke', 'reschedule'],'sleepy' was given."),
        ('FileSensor(task_id="f", filepath="x", poke_interval=-1)',
         "The poke_interval must be a non-negative number"),
        ('DateTimeSensor(task_id="d", target_time="{{ data_interval_end }}")',
         "DateTimeSensor with a templated target_time is not supported yet by updraft"),
        ('FileSensor(task_id="f", filepath="x", deferrable=True)',
         "Deferrable sensors (deferrable=True) is not supported yet by updraft"),
    ]:
        dag_folder.write("bad.py", f"""
            from airflow import DAG
            from airflow.sensors.filesystem import FileSensor
            from airflow.sensors.date_time import DateTimeSensor
            with DAG("bad", schedule=None):
                {body}
        """)
        answer = dag_folder.parse("bad.py")
        assert answer["error"] is not None, body
        assert message in answer["error"]["message"], answer["error"]


def test_sensors_that_updraft_lacks_are_refused_by_name(dag_folder):
    dag_folder.write("bash.py", "from airflow.sensors.bash import BashSensor\n")
    answer = dag_folder.parse("bash.py")
    assert "BashSensor is not supported yet by updraft" in answer["error"]["message"]

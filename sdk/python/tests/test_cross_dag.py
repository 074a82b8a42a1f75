"""TriggerDagRunOperator, ExternalTaskMarker and ExternalTaskSensor: native tasks of updraft
(`operator: trigger_dagrun`, `operator: external_task_marker`, `operator: external_task_sensor`)
with Airflow's arguments, from Airflow 2's and 3's import paths."""

from conftest import tasks_by_id

CROSS_DAG = """
    from datetime import datetime, timedelta
    from airflow import DAG
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.operators.trigger_dagrun import TriggerDagRunOperator as Airflow2Trigger
    from airflow.providers.standard.sensors.external_task import ExternalTaskMarker
    from airflow.sensors.external_task import ExternalTaskMarker as Airflow2Marker
    from airflow.utils.state import DagRunState

    with DAG("parent", start_date=datetime(2024, 1, 1), schedule=None):
        TriggerDagRunOperator(
            task_id="full", trigger_dag_id="child", trigger_run_id="child_{{ ds }}",
            conf={"day": "{{ ds }}", "rows": [1, 2]}, logical_date="{{ logical_date }}",
            reset_dag_run=True, wait_for_completion=True, poke_interval=timedelta(seconds=5),
            allowed_states=[DagRunState.SUCCESS, "failed"], failed_states=[],
            skip_when_already_exists=True)
        Airflow2Trigger(task_id="plain", trigger_dag_id="child",
                        execution_date=datetime(2024, 2, 1))
        ExternalTaskMarker(task_id="mark", external_dag_id="child", external_task_id="load")
        Airflow2Marker(task_id="mark_deep", external_dag_id="child", external_task_id="load",
                       logical_date="{{ ds }}", recursion_depth=3)
"""


def test_triggers_and_markers_serialize_to_their_operators(dag_folder):
    dag_folder.write("parent.py", CROSS_DAG)
    tasks = tasks_by_id(dag_folder.dag("parent.py"))
    assert tasks["full"]["operator"] == "trigger_dagrun"
    assert tasks["full"]["trigger_dagrun"] == {
        "trigger_dag_id": "child", "trigger_run_id": "child_{{ ds }}",
        "conf": {"day": "{{ ds }}", "rows": [1, 2]}, "logical_date": "{{ logical_date }}",
        "reset_dag_run": True, "wait_for_completion": True, "skip_when_already_exists": True,
        "poke_interval": 5, "allowed_states": ["success", "failed"], "failed_states": [],
    }
    assert tasks["plain"]["trigger_dagrun"] == {
        "trigger_dag_id": "child", "logical_date": "2024-02-01T00:00:00"}
    assert tasks["mark"]["operator"] == "external_task_marker"
    assert tasks["mark"]["external_task_marker"] == {
        "external_dag_id": "child", "external_task_id": "load"}
    assert tasks["mark_deep"]["external_task_marker"] == {
        "external_dag_id": "child", "external_task_id": "load", "logical_date": "{{ ds }}",
        "recursion_depth": 3}


def test_bad_arguments_are_import_errors_that_say_why(dag_folder):
    cases = {
        "deferrable": ("TriggerDagRunOperator(task_id='t', trigger_dag_id='c', deferrable=True)",
                       "Deferrable operators (TriggerDagRunOperator(deferrable=True)) is not "
                       "supported yet by updraft"),
        "conf": ("TriggerDagRunOperator(task_id='t', trigger_dag_id='c', conf={'f': object()})",
                 "conf parameter should be JSON Serializable"),
        "state": ("TriggerDagRunOperator(task_id='t', trigger_dag_id='c', "
                  "allowed_states=['done'])", "'done' is not a valid DagRunState"),
        "depth": ("ExternalTaskMarker(task_id='m', external_dag_id='c', external_task_id='t', "
                  "recursion_depth=0)", "recursion_depth should be a positive integer"),
    }
    for name, (call, message) in cases.items():
        dag_folder.write(f"{name}.py", f"""
            from datetime import datetime
            from airflow import DAG
            from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
            from airflow.providers.standard.sensors.external_task import ExternalTaskMarker

            with DAG("{name}", start_date=datetime(2024, 1, 1), schedule=None):
                {call}
        """)
        answer = dag_folder.parse(f"{name}.py")
        assert message in answer["error"]["message"], (name, answer)


def test_external_task_sensors_serialize_with_their_sensing(dag_folder):
    dag_folder.write("waiting.py", """
        from datetime import datetime, timedelta
        from airflow import DAG
        from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
        from airflow.sensors.external_task import ExternalTaskSensor as Airflow2Sensor
        from airflow.utils.state import State, TaskInstanceState

        with DAG("waiting", start_date=datetime(2024, 1, 1), schedule=None):
            ExternalTaskSensor(task_id="one", external_dag_id="up", external_task_id="load")
            ExternalTaskSensor(
                task_id="full", external_dag_id="up", external_task_ids=["a", "b"],
                allowed_states=[TaskInstanceState.SUCCESS, "skipped"],
                failed_states=[State.FAILED], execution_delta=timedelta(hours=6),
                check_existence=True, poke_interval=10, timeout=600, mode="reschedule",
                soft_fail=True, deferrable=True)
            Airflow2Sensor(task_id="group", external_dag_id="up",
                           external_task_group_id="section", skipped_states=["skipped"])
            ExternalTaskSensor(task_id="run", external_dag_id="up",
                               failed_states=["failed"], execution_delta=timedelta(hours=-1))
    """)
    tasks = tasks_by_id(dag_folder.dag("waiting.py"))
    assert tasks["one"]["operator"] == "external_task_sensor"
    assert tasks["one"]["external_task_sensor"] == {
        "external_dag_id": "up", "external_task_ids": ["load"]}
    assert tasks["full"]["external_task_sensor"] == {
        "external_dag_id": "up", "external_task_ids": ["a", "b"],
        "allowed_states": ["success", "skipped"], "failed_states": ["failed"],
        "execution_delta": 21600, "check_existence": True}
    assert tasks["full"]["sensor"] == {"poke_interval": 10, "timeout": 600,
                                       "mode": "reschedule", "soft_fail": True}
    assert tasks["group"]["external_task_sensor"] == {
        "external_dag_id": "up", "external_task_group_id": "section",
        "skipped_states": ["skipped"]}
    assert tasks["run"]["external_task_sensor"] == {
        "external_dag_id": "up", "failed_states": ["failed"], "execution_delta": -3600}


def test_external_task_sensor_arguments_are_checked_as_airflow_checks_them(dag_folder):
    cases = {
        "both_ids": ("external_task_id='a', external_task_ids=['b']",
                     "Only one of `external_task_id` or `external_task_ids`"),
        "group_and_ids": ("external_task_ids=['a'], external_task_group_id='g'",
                          "Only one of `external_task_group_id` or `external_task_ids`"),
        "duplicates": ("external_task_id='a', allowed_states=['success'], "
                       "failed_states=['success']",
                       "Duplicate values provided across allowed_states"),
        "run_state": ("failed_states=['upstream_failed']",
                      "Valid values for `allowed_states`"),
        "same_ids": ("external_task_ids=['a', 'a']",
                     "Duplicate task_ids passed in external_task_ids parameter"),
    }
    for name, (arguments, message) in cases.items():
        dag_folder.write(f"{name}.py", f"""
            from datetime import datetime
            from airflow import DAG
            from airflow.providers.standard.sensors.external_task import ExternalTaskSensor

            with DAG("{name}", start_date=datetime(2024, 1, 1), schedule=None):
                ExternalTaskSensor(task_id="s", external_dag_id="up", {arguments})
        """)
        answer = dag_folder.parse(f"{name}.py")
        assert message in answer["error"]["message"], (name, answer)

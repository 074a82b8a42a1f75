"""TriggerDagRunOperator and ExternalTaskMarker: native tasks of updraft's worker
(`operator: trigger_dagrun`, `operator: external_task_marker`) with Airflow's arguments, from
Airflow 2's and 3's import paths."""

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


def test_the_sensor_beside_the_marker_is_still_refused_by_name(dag_folder):
    dag_folder.write("sensing.py", """
        from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    """)
    answer = dag_folder.parse("sensing.py")
    assert "ExternalTaskSensor is not supported yet by updraft" in answer["error"]["message"]

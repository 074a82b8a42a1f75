"""Branching and skipping in Python: a branch picks a path from a param, a short circuit stops
a path, a task group cleans up, and a join runs after whichever path ran."""

from datetime import datetime

from airflow.decorators import task, task_group
from airflow.models.dag import DAG
from airflow.models.param import Param
from airflow.operators.empty import EmptyOperator
from airflow.utils.edgemodifier import Label
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    "python_branching",
    description="A branch, a short circuit and a join",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    params={
        "path": Param("fast", enum=["fast", "thorough"], description="Which path to take"),
        "rows": Param(10, type="integer", minimum=0, description="Rows to process"),
    },
    tags=["example", "python"],
):

    @task.branch
    def choose(params=None):
        return "fast_path" if params["path"] == "fast" else "thorough.check"

    fast_path = EmptyOperator(task_id="fast_path")

    @task_group
    def thorough():
        @task.short_circuit
        def check(params=None):
            return params["rows"] > 0

        @task.bash
        def process(params=None):
            return f"echo processing {params['rows']} rows"

        check() >> process()

    join = EmptyOperator(task_id="join", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)

    decision = choose()
    decision >> Label("fast") >> fast_path >> join
    decision >> Label("thorough") >> thorough() >> join

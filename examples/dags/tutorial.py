"""The shape of Airflow's first tutorial, as a Python DAG file for updraft: three bash tasks,
default_args shared by all of them, a templated command and documentation on the DAG."""

import textwrap
from datetime import datetime, timedelta

from airflow.models.dag import DAG
from airflow.operators.bash import BashOperator

default_args = {
    "owner": "data-team",
    "depends_on_past": False,
    "email_on_failure": False,
    "retries": 1,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    "tutorial",
    default_args=default_args,
    description="Print the date, wait, then run a templated command",
    schedule=timedelta(days=1),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "python"],
) as dag:
    dag.doc_md = "Written like Airflow's tutorial; runs unchanged on updraft."

    print_date = BashOperator(task_id="print_date", bash_command="date")

    wait = BashOperator(
        task_id="wait",
        bash_command="sleep 1",
        retries=3,
        execution_timeout=timedelta(minutes=1),
    )

    templated_command = textwrap.dedent(
        """
        {% for offset in range(3) %}
            echo "run {{ ds }}, {{ offset }} days later: {{ macros.ds_add(ds, offset) }}"
        {% endfor %}
        """
    )
    templated = BashOperator(task_id="templated", bash_command=templated_command)

    print_date >> [wait, templated]

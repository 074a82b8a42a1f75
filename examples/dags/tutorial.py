"""A first Python DAG for updraft in the shape of Airflow's classic tutorial: three bash tasks,
default_args shared by all of them, a templated command and documentation."""

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
    description="Show the host's clock, pause, then describe the run's window",
    schedule=timedelta(days=1),
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "python"],
) as dag:
    dag.doc_md = "Three bash tasks; the last one's command is a Jinja template."

    show_date = BashOperator(task_id="show_date", bash_command="date -u")

    pause = BashOperator(
        task_id="pause",
        bash_command="sleep 1",
        retries=3,
        execution_timeout=timedelta(minutes=1),
    )

    window_command = textwrap.dedent(
        """
        echo "run {{ run_id }} covers {{ data_interval_start }} to {{ data_interval_end }}"
        {% for back in [1, 7] %}
            echo "{{ back }} day(s) before {{ ds }}: {{ macros.ds_add(ds, -back) }}"
        {% endfor %}
        """
    )
    report_window = BashOperator(task_id="report_window", bash_command=window_command)

    show_date >> [pause, report_window]

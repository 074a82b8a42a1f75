"""Airflow 2's `airflow.decorators`."""

from updraft import dag, task, task_group  # noqa: F401
from updraft.compat import refusing_decorator as _refusing

setup = _refusing("Setup and teardown tasks (@setup)")
teardown = _refusing("Setup and teardown tasks (@teardown)")

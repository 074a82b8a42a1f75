"""Airflow 2's `airflow.decorators`."""

from updraft import dag, setup, task, task_group, teardown  # noqa: F401

"""Airflow 3 `airflow.sdk.definitions.taskgroup`."""

from updraft import TaskGroup, task_group  # noqa: F401

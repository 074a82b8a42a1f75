"""Airflow's `airflow.models.taskinstance`."""

from updraft.context import TaskInstance  # noqa: F401

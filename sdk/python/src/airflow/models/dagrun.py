"""Airflow's `airflow.models.dagrun`."""

from updraft.context import DagRun  # noqa: F401

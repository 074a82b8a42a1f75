"""Airflow's `airflow.models.dag`."""

from updraft import DAG, dag  # noqa: F401

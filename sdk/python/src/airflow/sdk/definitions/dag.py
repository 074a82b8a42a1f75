"""Airflow 3 `airflow.sdk.definitions.dag`."""

from updraft import DAG, dag  # noqa: F401

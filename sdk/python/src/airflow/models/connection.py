"""Airflow's `airflow.models.connection`."""

from updraft import Connection  # noqa: F401

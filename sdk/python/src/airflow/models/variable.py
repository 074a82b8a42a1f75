"""Airflow's `airflow.models.variable`."""

from updraft import Variable  # noqa: F401

"""Airflow's `airflow.models.xcom_arg`."""

from updraft import XComArg  # noqa: F401

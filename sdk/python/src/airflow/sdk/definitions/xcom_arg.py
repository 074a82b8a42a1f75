"""Airflow 3 `airflow.sdk.definitions.xcom_arg`."""

from updraft import XComArg  # noqa: F401

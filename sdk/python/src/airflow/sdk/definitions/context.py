"""Airflow 3 `airflow.sdk.definitions.context`."""

from updraft import get_current_context  # noqa: F401

Context = dict

"""Airflow 3 `airflow.sdk.bases.hook`."""

from updraft import BaseHook  # noqa: F401

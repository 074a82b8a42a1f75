"""BaseHook (Airflow 1 module name)."""

from updraft import BaseHook  # noqa: F401

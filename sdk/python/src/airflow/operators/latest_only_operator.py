"""LatestOnlyOperator (Airflow 1 module name)."""

from updraft import LatestOnlyOperator  # noqa: F401

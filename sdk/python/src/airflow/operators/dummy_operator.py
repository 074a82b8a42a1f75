"""DummyOperator (Airflow 1 module name)."""

from updraft import DummyOperator  # noqa: F401

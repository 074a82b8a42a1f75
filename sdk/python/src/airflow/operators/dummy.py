"""DummyOperator (Airflow 2)."""

from updraft import DummyOperator, EmptyOperator  # noqa: F401

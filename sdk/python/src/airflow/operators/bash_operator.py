"""BashOperator (Airflow 1 module name)."""

from updraft import BashOperator  # noqa: F401

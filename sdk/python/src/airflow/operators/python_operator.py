"""The Python operators (Airflow 1 module name)."""

from updraft import BranchPythonOperator, PythonOperator, ShortCircuitOperator  # noqa: F401

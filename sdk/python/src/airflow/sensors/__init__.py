"""Airflow 2's sensors (`airflow.sensors.*`), served by updraft's SDK."""

from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401

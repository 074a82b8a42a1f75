"""`airflow.sensors.base`."""

from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401

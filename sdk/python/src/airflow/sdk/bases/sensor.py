"""`airflow.sdk.bases.sensor`."""

from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401

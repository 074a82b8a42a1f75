"""Airflow 1's module of `BaseSensorOperator`."""

from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401

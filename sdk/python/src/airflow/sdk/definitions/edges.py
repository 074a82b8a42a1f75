"""Airflow 3 `airflow.sdk.definitions.edges`."""

from updraft.nodes import EdgeModifier, Label  # noqa: F401

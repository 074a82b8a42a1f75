"""Airflow 3 `airflow.sdk.bases.operator`."""

from updraft import BaseOperator, chain, chain_linear, cross_downstream  # noqa: F401

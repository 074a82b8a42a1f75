"""Airflow's `airflow.models.baseoperator`."""

from updraft import BaseOperator, chain, chain_linear, cross_downstream  # noqa: F401

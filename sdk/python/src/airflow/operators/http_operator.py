"""Airflow 1.10/2's path of SimpleHttpOperator."""

from updraft.http import HttpOperator, SimpleHttpOperator  # noqa: F401

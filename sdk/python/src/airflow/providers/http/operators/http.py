"""`airflow.providers.http.operators.http`: updraft's HttpOperator."""

from updraft.http import HttpOperator, SimpleHttpOperator

__all__ = ["HttpOperator", "SimpleHttpOperator"]

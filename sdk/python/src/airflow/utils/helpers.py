"""chain and cross_downstream (Airflow 2's old location)."""

from updraft import chain, cross_downstream  # noqa: F401

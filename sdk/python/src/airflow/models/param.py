"""Airflow's `airflow.models.param`."""

from updraft.param import Param, ParamsDict  # noqa: F401

"""Airflow 3 `airflow.sdk.definitions.param`."""

from updraft.param import Param, ParamsDict  # noqa: F401

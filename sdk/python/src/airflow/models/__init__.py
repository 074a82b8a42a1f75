"""Airflow's `airflow.models`: the names DAG files use."""

from updraft import DAG, BaseOperator, Connection, Param, Variable, XComArg  # noqa: F401
from updraft.context import DagRun, TaskInstance  # noqa: F401
from updraft.param import ParamsDict  # noqa: F401
from updraft.compat import refuse_names as _refuse_names

__getattr__ = _refuse_names(__name__, {
    "DagBag": "DagBag", "DagModel": "DagModel", "XCom": "Direct XCom table access",
    "Pool": "Pool models", "MappedOperator": "Dynamic task mapping",
    "SlaMiss": "SLAs", "Log": "Airflow's log table",
})

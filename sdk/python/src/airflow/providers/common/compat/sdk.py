"""`airflow.providers.common.compat.sdk`: the names of `airflow.sdk` (and its exceptions and
`timezone`) under the compatibility provider's path. Names updraft lacks are refused, naming
them, as `airflow.sdk` refuses them."""

from airflow import sdk as _sdk
from airflow.exceptions import (  # noqa: F401
    AirflowException, AirflowFailException, AirflowNotFoundException, AirflowSkipException,
    AirflowTaskTimeout, ParamValidationError, XComNotFound,
)
from airflow.sdk import (  # noqa: F401
    DAG, Asset, AssetAll, AssetAny, BaseHook, BaseOperator, Connection, Context, Label, Param, TaskGroup, TriggerRule,
    Variable, XComArg, chain, chain_linear, cross_downstream, dag, get_current_context, task,
    task_group,
)
from airflow.utils import timezone  # noqa: F401
from airflow.utils.state import DagRunState, TaskInstanceState  # noqa: F401
from updraft import BaseBranchOperator  # noqa: F401
from updraft.exceptions import NotSupportedByUpdraft as _NotSupported


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    # airflow.sdk refuses the names it knows updraft lacks, naming the feature.
    getattr(_sdk, name)
    raise _NotSupported(name, f"{__name__}.{name}")

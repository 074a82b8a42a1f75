"""Airflow 3's authoring API (`airflow.sdk`), served by updraft."""

from updraft import (  # noqa: F401
    DAG, BaseHook, BaseOperator, Connection, Label, Param, ParamsDict, TaskGroup, TriggerRule,
    Variable, XComArg, chain, chain_linear, cross_downstream, dag, get_current_context, setup,
    task, task_group, teardown,
)
from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401
from updraft.assets import (  # noqa: F401
    Asset, AssetAll, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, Dataset,
)
from updraft.context import DagRun, TaskInstance  # noqa: F401
from updraft.notifications import BaseNotifier  # noqa: F401
from updraft.compat import refuse_names as _refuse_names

Context = dict

__getattr__ = _refuse_names(__name__, {
    "AssetAlias": "AssetAlias", "AssetWatcher": "AssetWatcher", "Metadata": "Asset metadata",
    "asset": "The @asset decorator", "AssetAccessControl": "Asset access control (teams)",
    "CronPartitionTimetable": "Asset partitions", "PartitionedAssetTimetable": "Asset partitions",
    "AllowedKeyMapper": "Asset partitions", "PartitionedAtRuntime": "Asset partitions",
    "ObjectStoragePath": "ObjectStoragePath",
    "EdgeModifier": None, "Trigger": "Deferrable operators (triggers)",
    "RetryAction": "Retry policies", "RetryRule": "Retry policies",
    "ExceptionRetryPolicy": "Retry policies", "RetryPolicy": "Retry policies",
})

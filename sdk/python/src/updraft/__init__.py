"""updraft's Python SDK: write DAGs and Python tasks with Airflow's API.

DAG files import from here (`from updraft import DAG, task`) or from Airflow's module names,
which updraft maps to this package (`from airflow.decorators import dag, task`).
"""

from .assets import Asset, AssetAll, AssetAny, AssetOrTimeSchedule, Dataset
from .baseoperator import BaseOperator
from .context import get_current_context
from .cross_dag import ExternalTaskMarker, ExternalTaskSensor, TriggerDagRunOperator
from .dag import DAG, dag, days_ago
from .exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSkipException,
    NotSupportedByUpdraft,
)
from .models import BaseHook, Connection, Variable
from .nodes import Label, XComArg, chain, chain_linear, cross_downstream
from .notifications import (
    AsyncCallback, BaseNotifier, DeadlineAlert, DeadlineReference, SlackWebhookNotifier,
    SmtpNotifier, WebhookNotifier,
)
from .operators import (
    BashOperator,
    BaseBranchOperator,
    BranchExternalPythonOperator,
    BranchPythonOperator,
    DummyOperator,
    ExternalPythonOperator,
    EmptyOperator,
    LatestOnlyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from .param import Param, ParamsDict
from .sensors import (
    BaseSensorOperator,
    DateTimeSensor,
    DateTimeSensorAsync,
    FileSensor,
    HttpSensor,
    PokeReturnValue,
    PythonSensor,
    TimeDeltaSensor,
    TimeDeltaSensorAsync,
    TimeSensor,
    TimeSensorAsync,
    WaitSensor,
)
from .setup_teardown import setup, teardown
from .task_group import TaskGroup, task_group
from .taskflow import task
from .trigger_rule import TriggerRule

__version__ = "0.1.0"

__all__ = [
    "DAG", "dag", "task", "task_group", "TaskGroup", "BaseOperator", "BashOperator",
    "PythonOperator", "BranchPythonOperator", "ShortCircuitOperator", "EmptyOperator",
    "DummyOperator", "LatestOnlyOperator", "ExternalPythonOperator",
    "BranchExternalPythonOperator", "BaseBranchOperator", "TriggerDagRunOperator",
    "ExternalTaskMarker", "ExternalTaskSensor", "Label", "XComArg", "chain",
    "chain_linear", "cross_downstream", "Param", "ParamsDict", "TriggerRule", "Variable",
    "Connection", "BaseHook", "get_current_context", "days_ago", "AirflowException",
    "AirflowSkipException", "AirflowFailException", "AirflowNotFoundException",
    "NotSupportedByUpdraft", "setup", "teardown", "Asset", "AssetAll", "AssetAny",
    "AssetOrTimeSchedule", "Dataset", "BaseNotifier", "SlackWebhookNotifier",
    "SmtpNotifier", "WebhookNotifier", "DeadlineAlert", "DeadlineReference", "AsyncCallback",
    "NotSupportedByUpdraft", "setup", "teardown", "BaseSensorOperator", "PokeReturnValue",
    "PythonSensor", "FileSensor", "HttpSensor", "TimeDeltaSensor", "TimeDeltaSensorAsync",
    "TimeSensor", "TimeSensorAsync", "DateTimeSensor", "DateTimeSensorAsync", "WaitSensor",
]

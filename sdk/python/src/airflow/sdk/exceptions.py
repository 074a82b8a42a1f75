"""Airflow 3's `airflow.sdk.exceptions`."""

from updraft.exceptions import (  # noqa: F401
    AirflowException, AirflowFailException, AirflowNotFoundException, AirflowSkipException,
    AirflowTaskTimeout, DuplicateTaskIdFound, ParamValidationError, TaskNotFound, XComNotFound,
)

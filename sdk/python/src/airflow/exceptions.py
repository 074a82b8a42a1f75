"""Airflow's exceptions."""

from updraft.exceptions import (  # noqa: F401
    AirflowException, AirflowFailException, AirflowNotFoundException, AirflowSkipException,
    AirflowTaskTimeout, DuplicateTaskIdFound, NotSupportedByUpdraft, ParamValidationError,
    TaskNotFound, XComNotFound,
)

"""`airflow.sdk.definitions.deadline`: Airflow 3.1's deadline alerts, served by updraft."""

from updraft.notifications import AsyncCallback, DeadlineAlert, DeadlineReference, SyncCallback

__all__ = ["AsyncCallback", "DeadlineAlert", "DeadlineReference", "SyncCallback"]

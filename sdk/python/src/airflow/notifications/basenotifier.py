"""`airflow.notifications.basenotifier`: updraft's BaseNotifier."""

from updraft.notifications import BaseNotifier

__all__ = ["BaseNotifier"]

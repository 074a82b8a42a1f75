"""`airflow.providers.common.compat.notifier`: updraft's BaseNotifier."""

from updraft.notifications import BaseNotifier

__all__ = ["BaseNotifier"]

"""TaskGroup."""

from updraft import TaskGroup, task_group  # noqa: F401

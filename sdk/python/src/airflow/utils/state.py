"""Task and run states as strings."""

import enum


class TaskInstanceState(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    RUNNING = "running"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    UP_FOR_RETRY = "up_for_retry"
    REMOVED = "removed"


class DagRunState(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    RUNNING = "running"
    QUEUED = "queued"


State = TaskInstanceState

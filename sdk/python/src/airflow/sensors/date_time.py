"""`DateTimeSensor` (waits in the scheduler, without a process)."""

from updraft.sensors import DateTimeSensor, DateTimeSensorAsync  # noqa: F401

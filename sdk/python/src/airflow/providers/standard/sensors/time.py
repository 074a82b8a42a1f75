"""`TimeSensor` (waits in the scheduler, without a process)."""

from updraft.sensors import TimeSensor, TimeSensorAsync  # noqa: F401

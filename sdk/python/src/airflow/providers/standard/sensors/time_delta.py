"""`TimeDeltaSensor` (waits in the scheduler, without a process)."""

from updraft.sensors import TimeDeltaSensor, TimeDeltaSensorAsync, WaitSensor  # noqa: F401

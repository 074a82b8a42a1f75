"""`FileSensor`."""

from updraft.sensors import FileSensor  # noqa: F401

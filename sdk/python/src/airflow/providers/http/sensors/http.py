"""`HttpSensor`."""

from updraft.sensors import HttpSensor  # noqa: F401

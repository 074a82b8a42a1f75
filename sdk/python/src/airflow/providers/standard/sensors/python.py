"""`PythonSensor`."""

from updraft.sensors import PokeReturnValue, PythonSensor  # noqa: F401

"""The module of ExternalTaskMarker and ExternalTaskSensor (its extra links are refused by
name)."""

from updraft.compat import refuse_names as _refuse_names
from updraft.cross_dag import ExternalTaskMarker, ExternalTaskSensor

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]

__getattr__ = _refuse_names(__name__, {
    "ExternalDagLink": None, "ExternalTaskSensorLink": None,
})

"""The module of ExternalTaskMarker (and ExternalTaskSensor, refused by name until updraft has
it)."""

from updraft.compat import refuse_names as _refuse_names
from updraft.cross_dag import ExternalTaskMarker

__all__ = ["ExternalTaskMarker"]

__getattr__ = _refuse_names(__name__, {
    "ExternalTaskSensor": "ExternalTaskSensor", "ExternalDagLink": None,
    "ExternalTaskSensorLink": None,
})

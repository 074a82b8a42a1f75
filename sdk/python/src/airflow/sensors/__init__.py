"""Airflow 2's sensors (`airflow.sensors.*`), served by updraft's SDK; a sensor class updraft
does not have (`ExternalTaskSensor`, say) is refused with its name."""

from updraft.exceptions import NotSupportedByUpdraft as _NotSupported
from updraft.sensors import BaseSensorOperator, PokeReturnValue  # noqa: F401


def __getattr__(name):
    # Lower-case names are submodules: Python imports them when this says there is none.
    if not name[:1].isupper():
        raise AttributeError(name)
    raise _NotSupported(name, f"{__name__}.{name}")

"""updraft's stand-in for the `airflow` package: Airflow's module names mapped to the updraft SDK
(put on the path by updraft; see docs/python-protocol.md)."""

from updraft import DAG, XComArg  # noqa: F401
from updraft.compat import install_finder as _install_finder

__version__ = "3.0.0+updraft"

_install_finder()

# Airflow's package imports these itself; old files reach them as attributes of `airflow`
# (`airflow.utils.dates.days_ago`).
import airflow.utils.dates  # noqa: E402,F401

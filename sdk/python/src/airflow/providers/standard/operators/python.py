"""The Python operators."""

from updraft import (  # noqa: F401
    BranchExternalPythonOperator, BranchPythonOperator, ExternalPythonOperator, PythonOperator,
    ShortCircuitOperator, get_current_context,
)
from updraft.compat import refuse_names as _refuse_names


def is_venv_installed():
    """updraft has no virtualenv operators: files that check for them skip those DAGs."""
    return False


__getattr__ = _refuse_names(__name__, {
    "PythonVirtualenvOperator": "PythonVirtualenvOperator",
    "BranchPythonVirtualenvOperator": "BranchPythonVirtualenvOperator",
})

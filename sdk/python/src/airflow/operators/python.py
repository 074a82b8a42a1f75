"""The Python operators."""

from updraft import (  # noqa: F401
    BranchPythonOperator, PythonOperator, ShortCircuitOperator, get_current_context,
)
from updraft.compat import refuse_names as _refuse_names

__getattr__ = _refuse_names(__name__, {
    "PythonVirtualenvOperator": "PythonVirtualenvOperator",
    "ExternalPythonOperator": "ExternalPythonOperator",
    "BranchPythonVirtualenvOperator": "BranchPythonVirtualenvOperator",
    "BranchExternalPythonOperator": "BranchExternalPythonOperator",
})

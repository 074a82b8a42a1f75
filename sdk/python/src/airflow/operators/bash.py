"""BashOperator."""

from updraft import BashOperator  # noqa: F401

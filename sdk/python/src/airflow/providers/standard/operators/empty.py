"""EmptyOperator."""

from updraft import EmptyOperator  # noqa: F401

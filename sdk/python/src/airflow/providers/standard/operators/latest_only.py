"""LatestOnlyOperator."""

from updraft import LatestOnlyOperator  # noqa: F401

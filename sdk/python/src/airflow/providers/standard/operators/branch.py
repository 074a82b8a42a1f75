"""BaseBranchOperator."""

from updraft import BaseBranchOperator  # noqa: F401

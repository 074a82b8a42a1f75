"""The task context type."""

from updraft import get_current_context  # noqa: F401

Context = dict

"""BaseHook."""

from updraft import BaseHook  # noqa: F401

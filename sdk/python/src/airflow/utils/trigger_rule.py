"""TriggerRule."""

from updraft import TriggerRule  # noqa: F401

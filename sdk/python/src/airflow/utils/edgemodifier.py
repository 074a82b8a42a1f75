"""Label."""

from updraft.nodes import EdgeModifier, Label  # noqa: F401

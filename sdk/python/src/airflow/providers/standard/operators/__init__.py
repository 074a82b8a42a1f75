"""The standard provider's operators."""


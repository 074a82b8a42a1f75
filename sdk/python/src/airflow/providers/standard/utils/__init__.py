"""The standard provider's helpers."""

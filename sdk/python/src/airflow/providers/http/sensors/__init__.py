"""The http provider's sensors."""

"""The standard provider's sensors, served by updraft's SDK."""

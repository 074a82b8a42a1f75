"""Airflow providers: only the standard provider's operators exist in updraft."""


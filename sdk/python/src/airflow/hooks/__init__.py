"""Airflow's hooks: only BaseHook.get_connection."""


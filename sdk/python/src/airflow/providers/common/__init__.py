"""Airflow's `common` providers: only `common.compat` (the import paths provider code and
Airflow's own examples use for the SDK's names) exists in updraft."""

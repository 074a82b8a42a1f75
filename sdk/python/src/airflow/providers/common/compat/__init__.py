"""Airflow's `common.compat` provider: stable import paths for the SDK's names."""

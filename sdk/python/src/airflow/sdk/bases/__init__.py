"""Airflow 3 `airflow.sdk.bases`."""


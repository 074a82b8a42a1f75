"""Airflow 3 `airflow.sdk.definitions`."""


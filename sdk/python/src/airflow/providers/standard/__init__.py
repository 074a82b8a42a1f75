"""Airflow 3's standard provider."""


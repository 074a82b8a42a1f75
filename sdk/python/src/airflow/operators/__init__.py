"""Airflow 2's operators."""


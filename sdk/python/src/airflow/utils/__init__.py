"""Airflow's `airflow.utils` modules DAG files import."""


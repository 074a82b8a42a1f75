"""days_ago (Airflow 2)."""

from updraft import days_ago  # noqa: F401

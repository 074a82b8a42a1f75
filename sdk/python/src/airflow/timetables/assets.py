"""`airflow.timetables.assets`: a time schedule or assets, whichever comes first."""

from updraft.assets import AssetOrTimeSchedule  # noqa: F401

"""`airflow.timetables.trigger`: `CronTriggerTimetable`, what updraft's cron schedules are."""

from updraft.assets import CronTriggerTimetable  # noqa: F401
from updraft.compat import refuse_names as _refuse_names

__getattr__ = _refuse_names(__name__, {
    "DeltaTriggerTimetable": "DeltaTriggerTimetable", "MultipleCronTriggerTimetable": "MultipleCronTriggerTimetable",
})

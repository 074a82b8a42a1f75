"""`airflow.timetables`: the cron trigger timetable and `AssetOrTimeSchedule`; other
timetables are refused by name."""

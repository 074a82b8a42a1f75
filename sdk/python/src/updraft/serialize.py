"""A DAG as the JSON document updraft's DAG file loader (`crates/dagfile`) reads: dates as
ISO-8601 with offset, durations in seconds, schedules as cron, preset or seconds."""

import datetime
import json

from . import assets, notifications
from .exceptions import NotSupportedByUpdraft
from .operators import callable_name
from .param import serialize_params

SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly",
                    "@yearly")
PRESET_ALIASES = {"@annually": "@yearly", "@midnight": "@daily"}


def timezone_name(tzinfo):
    """The IANA name of a tzinfo (zoneinfo, pendulum, dateutil), or None for a fixed offset."""
    if tzinfo is None:
        return None
    for attribute in ("key", "name", "zone"):
        name = getattr(tzinfo, attribute, None)
        if isinstance(name, str) and name and name[0] not in "+-":
            return name
    if tzinfo is datetime.timezone.utc:
        return "UTC"
    return None


def _instant(key, value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"{key} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # Airflow reads a naive datetime in its default time zone, UTC.
        value = value.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.isoformat(value)


def schedule_text(schedule):
    if schedule is None:
        return None
    if isinstance(schedule, datetime.timedelta):
        seconds = schedule.total_seconds()
        if seconds <= 0 or seconds != int(seconds):
            raise ValueError(f"a timedelta schedule must be whole positive seconds: {schedule}")
        return int(seconds)
    if isinstance(schedule, str):
        text = schedule.strip()
        text = PRESET_ALIASES.get(text.lower(), text)
        if text.lower() == "@continuous":
            raise NotSupportedByUpdraft("The @continuous schedule")
        return text
    if isinstance(schedule, assets.AssetOrTimeSchedule):
        return schedule.to_document(_timetable_text)
    if assets.is_asset_schedule(schedule) or isinstance(schedule, (list, tuple)):
        return assets.condition_document(schedule)
    if isinstance(schedule, assets.CronTriggerTimetable):
        return _timetable_text(schedule)
    if type(schedule).__name__ == "relativedelta":
        raise NotSupportedByUpdraft("A relativedelta schedule", "use a cron expression")
    raise NotSupportedByUpdraft(f"A {type(schedule).__name__} schedule",
                                "use a cron expression, a preset, a timedelta or None")


def _timetable_text(timetable):
    """The time part of an `AssetOrTimeSchedule`: a cron text, a preset, a timedelta or a
    `CronTriggerTimetable`."""
    if isinstance(timetable, assets.CronTriggerTimetable):
        return schedule_text(timetable.cron)
    text = schedule_text(timetable)
    if text is None or isinstance(text, (dict, list)):
        raise ValueError("AssetOrTimeSchedule needs a time schedule as its timetable")
    return str(text)


def _json_number(seconds):
    return int(seconds) if float(seconds).is_integer() else seconds


def _kind(task):
    """How updraft runs the task. A subclass of a natively run operator that brings its own
    `execute` (a DummyOperator that raises AirflowSkipException) is a Python task."""
    from .cross_dag import ExternalTaskMarker, ExternalTaskSensor, TriggerDagRunOperator
    from .docker import DockerOperator
    from .http import HttpOperator
    from .operators import BashOperator, EmptyOperator
    from .sensors import (DateTimeSensor, FileSensor, HttpSensor, TimeDeltaSensor,
                          TimeSensor)

    kind = task._updraft_kind
    native = {"bash": BashOperator, "empty": EmptyOperator, "http": HttpOperator,
              "docker": DockerOperator, "trigger_dagrun": TriggerDagRunOperator,
              "external_task_marker": ExternalTaskMarker,
              "external_task_sensor": ExternalTaskSensor, "file_sensor": FileSensor,
              "time_delta_sensor": TimeDeltaSensor, "time_sensor": TimeSensor,
              "date_time_sensor": DateTimeSensor}.get(kind)
    if kind == "http" and isinstance(task, HttpSensor):
        native = HttpSensor
    if native is not None and (type(task).execute is not native.execute
                               or getattr(type(task), "poke", None)
                               is not getattr(native, "poke", None)):
        # A subclass that pokes (or runs) its own way: a Python sensor (or task).
        return "python"
    return kind


def python_kind(task):
    """What the SDK does with a Python task's result (the same at parse and at run time)."""
    if task._updraft_kind == "python":
        return task._python_kind
    # A natively poked sensor's subclass with its own `poke` runs as a Python sensor.
    return "sensor" if getattr(task, "_sensing", None) is not None else "task"


# Task settings whose neutral value is left out of the document (the loader's default), so
# that a DAG that does not use them reads as before; written when the DAG's default_args set
# them otherwise, since the loader applies those to every task.
NEUTRAL_SETTINGS = {
    "depends_on_past": False, "wait_for_downstream": False,
    "ignore_first_depends_on_past": True, "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
}


def _neutral(key, value):
    return key in NEUTRAL_SETTINGS and value == NEUTRAL_SETTINGS[key]


def task_document(task):
    doc = {"task_id": task.task_id}
    kind = _kind(task)
    mapping = getattr(task, "_mapping", None)
    if kind == "bash":
        doc["operator"] = "bash"
        # A mapped command comes from each instance's arguments.
        if task.bash_command:
            doc["bash_command"] = task.bash_command
    elif kind == "empty":
        doc["operator"] = "empty"
    elif kind == "http":
        doc["operator"] = "http"
        doc["http"] = task.http_document()
    elif kind == "docker":
        doc["operator"] = "docker"
        doc["docker"] = task.docker_document()
    elif kind in ("file_sensor", "time_delta_sensor", "time_sensor", "date_time_sensor"):
        doc["operator"] = kind
        doc[kind] = task.operator_document()
    elif kind == "trigger_dagrun":
        doc["operator"] = "trigger_dagrun"
        doc["trigger_dagrun"] = task.trigger_dagrun_document()
    elif kind == "external_task_marker":
        doc["operator"] = "external_task_marker"
        doc["external_task_marker"] = task.external_task_marker_document()
    elif kind == "external_task_sensor":
        doc["operator"] = "external_task_sensor"
        doc["external_task_sensor"] = task.external_task_sensor_document()
    else:
        doc["operator"] = "python"
        function = getattr(task, "python_callable", None)
        if function is not None:
            doc["python_callable"] = callable_name(function)
        else:
            doc["python_callable"] = f"{type(task).__qualname__}.execute"
        doc["python_kind"] = python_kind(task)
        if getattr(task, "python_executable", None):
            doc["python_executable"] = task.python_executable
        if task._source_line is not None:
            doc["source_line"] = task._source_line
    sensing = getattr(task, "_sensing", None)
    if sensing is not None and (kind in ("file_sensor", "http", "external_task_sensor")
                                or doc.get("python_kind") == "sensor"):
        doc["sensor"] = dict(sensing)
    if task.upstream_task_ids:
        doc["dependencies"] = sorted(task.upstream_task_ids)
    dag_defaults = getattr(task.dag, "default_args", None) or {}
    for key, value in task.settings.items():
        if key in ("env", "cwd") and value is None:
            continue
        if _neutral(key, value) and _neutral(key, dag_defaults.get(key, NEUTRAL_SETTINGS[key])):
            continue
        if key == "skip_on_exit_code" and kind not in ("bash", "docker") and doc.get(
                "python_kind") != "bash":
            continue
        if key in ("retry_delay", "max_retry_delay", "execution_timeout") and value is not None:
            value = _json_number(value)
        doc[key] = value
    for key, documents in getattr(task, "_asset_documents", {}).items():
        if documents:
            doc[key] = documents
    for key, value in getattr(task, "notify", {}).items():
        # Airflow's defaults (no callback, e-mails on) are left out.
        if value == [] or (key.startswith("email_on_") and value is True):
            continue
        if key in notifications.CALLBACK_KEYS:
            # A Python callback names its task as it is now (a TaskFlow call may have been
            # renamed, e.g. `add__1`, after its arguments were read).
            value = [dict(d, task_id=task.task_id) if d.get("kind") == "python" else d
                     for d in value]
        doc[key] = value
    if task.task_group is not None:
        doc["task_group"] = task.task_group.group_id
    if task.is_setup:
        doc["setup"] = True
    if task.is_teardown:
        doc["teardown"] = True
        if task.on_failure_fail_dagrun:
            doc["on_failure_fail_dagrun"] = True
    if mapping:
        doc.update(mapping)
        if getattr(task, "_map_group_id", None) is not None:
            doc["map_group"] = task._map_group_id
    return doc


def default_args_document(default_args):
    """The DAG's `default_args` that updraft stores (shown with the DAG); every task already
    carries the values it inherited, so this changes no task."""
    from .baseoperator import SETTING_KEYS, check_setting

    out = {}
    for key, value in default_args.items():
        if key not in SETTING_KEYS:
            continue
        value = check_setting(key, value)
        if value is None or _neutral(key, value):
            continue
        if key in ("retry_delay", "max_retry_delay", "execution_timeout"):
            value = _json_number(value)
        out[key] = value
    return out


def dag_document(dag):
    """The DAG document, or an exception saying what cannot be expressed."""
    doc = {"dag_id": dag.dag_id}
    if dag.description is not None:
        doc["description"] = dag.description
    schedule = schedule_text(dag.schedule)
    if schedule is not None:
        doc["schedule"] = schedule
    start = _instant("start_date", dag.start_date)
    if start is not None:
        doc["start_date"] = start
        zone = timezone_name(getattr(dag.start_date, "tzinfo", None))
        if zone is not None and zone not in ("UTC", "Etc/UTC"):
            doc["timezone"] = zone
    end = _instant("end_date", dag.end_date)
    if end is not None:
        doc["end_date"] = end
    if dag.catchup is not None:
        doc["catchup"] = bool(dag.catchup)
    if dag.max_active_runs is not None:
        doc["max_active_runs"] = dag.max_active_runs
    if dag.max_active_tasks is not None:
        doc["max_active_tasks"] = dag.max_active_tasks
    if dag.dagrun_timeout is not None and dag.dagrun_timeout.total_seconds() > 0:
        doc["dagrun_timeout"] = _json_number(dag.dagrun_timeout.total_seconds())
    if dag.max_consecutive_failed_dag_runs:
        doc["max_consecutive_failed_dag_runs"] = dag.max_consecutive_failed_dag_runs
    if dag.tags:
        doc["tags"] = sorted(dag.tags) if isinstance(dag.tags, (set, frozenset)) else [
            str(tag) for tag in dag.tags]
    if dag.params:
        doc["params"] = serialize_params(dag.params)
    for key in ("on_success_callback", "on_failure_callback"):
        if dag.callbacks.get(key):
            doc[key] = dag.callbacks[key]
    if dag.deadline:
        doc["deadline"] = dag.deadline
    defaults = default_args_document(dag.default_args)
    if defaults:
        doc["default_args"] = defaults
    doc["tasks"] = [task_document(task) for task in dag.tasks]
    try:
        json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"DAG {dag.dag_id!r} cannot be stored as JSON: {err}") from None
    return doc

"""Operators that reach another DAG: `TriggerDagRunOperator` (a run of another DAG, started
by updraft's worker through its task-execution API: `operator: trigger_dagrun`) and
`ExternalTaskMarker` (runs nothing; clearing it clears a task of another DAG:
`operator: external_task_marker`) and `ExternalTaskSensor` (waits for another DAG's tasks or
run, poked by the scheduler: `operator: external_task_sensor`)."""

import datetime
import json

from .baseoperator import BaseOperator
from .exceptions import AirflowException, NotSupportedByUpdraft

_RUN_STATES = ("queued", "running", "success", "failed")


def _state_names(states, argument):
    names = []
    for state in states:
        name = getattr(state, "value", state)
        if name not in _RUN_STATES:
            raise ValueError(f"{argument}: {state!r} is not a valid DagRunState")
        names.append(name)
    return names


def _seconds(value):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    return int(value) if float(value).is_integer() else float(value)


class TriggerDagRunOperator(BaseOperator):
    """Triggers a run of `trigger_dag_id`; see updraft's README (Triggering other DAGs)."""

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf",
                       "wait_for_completion", "skip_when_already_exists")
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"
    _updraft_kind = "trigger_dagrun"

    def __init__(self, *, trigger_dag_id, trigger_run_id=None, conf=None, logical_date=None,
                 reset_dag_run=False, wait_for_completion=False, poke_interval=60,
                 allowed_states=None, failed_states=None, skip_when_already_exists=False,
                 fail_when_dag_is_paused=False, deferrable=False, execution_date=None,
                 **kwargs):
        if deferrable:
            raise NotSupportedByUpdraft(
                "Deferrable operators (TriggerDagRunOperator(deferrable=True))",
                "wait_for_completion polls without it")
        if fail_when_dag_is_paused:
            raise NotSupportedByUpdraft("TriggerDagRunOperator's fail_when_dag_is_paused")
        super().__init__(**kwargs)
        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise ValueError("trigger_dag_id must be a non-empty string")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        if conf is not None and not isinstance(conf, dict):
            raise NotSupportedByUpdraft(
                f"A TriggerDagRunOperator conf that is a {type(conf).__name__}", "use a dict")
        try:
            json.dumps(conf)
        except TypeError:
            raise ValueError("conf parameter should be JSON Serializable") from None
        self.conf = conf
        # Airflow 2 called it execution_date.
        if logical_date is None and execution_date is not None:
            logical_date = execution_date
        if logical_date is not None and not isinstance(logical_date, (str, datetime.datetime)):
            raise TypeError("Expected str, datetime.datetime, or None for parameter "
                            f"'logical_date'. Got {type(logical_date).__name__}")
        self.logical_date = logical_date
        self.reset_dag_run = bool(reset_dag_run)
        if not isinstance(wait_for_completion, bool):
            raise NotSupportedByUpdraft("A templated wait_for_completion", "use True or False")
        if not isinstance(skip_when_already_exists, bool):
            raise NotSupportedByUpdraft("A templated skip_when_already_exists",
                                        "use True or False")
        self.wait_for_completion = wait_for_completion
        self.poke_interval = poke_interval
        self.allowed_states = (_state_names(allowed_states, "allowed_states")
                               if allowed_states else ["success"])
        self.failed_states = (_state_names(failed_states, "failed_states")
                              if failed_states is not None else ["failed"])
        self.skip_when_already_exists = skip_when_already_exists

    def trigger_dagrun_document(self):
        """The `trigger_dagrun:` of the task's document (`operator: trigger_dagrun`)."""
        doc = {"trigger_dag_id": self.trigger_dag_id}
        if self.trigger_run_id:
            doc["trigger_run_id"] = str(self.trigger_run_id)
        if self.conf:
            doc["conf"] = self.conf
        if isinstance(self.logical_date, datetime.datetime):
            doc["logical_date"] = self.logical_date.isoformat()
        elif self.logical_date:
            doc["logical_date"] = self.logical_date
        for key in ("reset_dag_run", "wait_for_completion", "skip_when_already_exists"):
            if getattr(self, key):
                doc[key] = True
        if _seconds(self.poke_interval) != 60:
            doc["poke_interval"] = _seconds(self.poke_interval)
        if self.allowed_states != ["success"]:
            doc["allowed_states"] = self.allowed_states
        if self.failed_states != ["failed"]:
            doc["failed_states"] = self.failed_states
        return doc

    def execute(self, context):
        raise NotSupportedByUpdraft("Running a TriggerDagRunOperator outside updraft's worker")


class ExternalTaskMarker(BaseOperator):
    """Marks `external_task_id` of `external_dag_id` as depending on this task: clearing this
    task with its downstream clears that task (and its downstream) in the run of
    `logical_date`, recursively up to `recursion_depth` markers deep."""

    template_fields = ("external_dag_id", "external_task_id", "logical_date")
    ui_color = "#4db7db"
    _updraft_kind = "external_task_marker"

    def __init__(self, *, external_dag_id, external_task_id,
                 logical_date="{{ logical_date.isoformat() }}", recursion_depth=10,
                 execution_date=None, **kwargs):
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        if execution_date is not None:
            logical_date = execution_date
        if isinstance(logical_date, datetime.datetime):
            logical_date = logical_date.isoformat()
        if not isinstance(logical_date, str):
            raise TypeError("Expected str or datetime.datetime type for logical_date. Got "
                            f"{type(logical_date)}")
        self.logical_date = logical_date
        if not isinstance(recursion_depth, int) or recursion_depth <= 0:
            raise ValueError("recursion_depth should be a positive integer")
        self.recursion_depth = recursion_depth

    def external_task_marker_document(self):
        """The `external_task_marker:` of the task's document."""
        doc = {"external_dag_id": self.external_dag_id,
               "external_task_id": self.external_task_id}
        if self.logical_date != "{{ logical_date.isoformat() }}":
            doc["logical_date"] = self.logical_date
        if self.recursion_depth != 10:
            doc["recursion_depth"] = self.recursion_depth
        return doc

    def execute(self, context):
        return None


_TASK_STATES = ("none", "scheduled", "queued", "running", "success", "restarting", "failed",
                "up_for_retry", "up_for_reschedule", "upstream_failed", "skipped", "removed",
                "deferred")


class ExternalTaskSensor(BaseOperator):
    """Waits until `external_task_id` (or `external_task_ids`, or the tasks of
    `external_task_group_id`, or, with none of them, the whole run) of `external_dag_id` is in
    one of `allowed_states`, in the run of the same logical date (minus `execution_delta`).
    The scheduler pokes it from its database every `poke_interval`: no process and no worker
    slot while it waits, whatever the `mode` (`deferrable=True` is the same wait)."""

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids",
                       "external_task_group_id")
    ui_color = "#4db7db"
    _updraft_kind = "external_task_sensor"

    def __init__(self, *, external_dag_id, external_task_id=None, external_task_ids=None,
                 external_task_group_id=None, allowed_states=None, skipped_states=None,
                 failed_states=None, execution_delta=None, execution_date_fn=None,
                 check_existence=False, poll_interval=None, deferrable=False, **kwargs):
        from .sensors import pop_sensor_arguments

        if execution_delta is not None and execution_date_fn is not None:
            raise ValueError("Only one of `execution_delta` or `execution_date_fn` may be "
                             "provided to ExternalTaskSensor; not both.")
        if execution_date_fn is not None:
            raise NotSupportedByUpdraft("ExternalTaskSensor's execution_date_fn",
                                        "use execution_delta")
        if poll_interval is not None:
            kwargs.setdefault("poke_interval", poll_interval)
        for name in ("start_from_trigger", "end_from_trigger"):
            kwargs.pop(name, None)
        self._sensing = pop_sensor_arguments(kwargs)
        super().__init__(**kwargs)
        allowed = [getattr(s, "value", s) for s in (allowed_states or ["success"])]
        skipped = [getattr(s, "value", s) for s in (skipped_states or [])]
        failed = [getattr(s, "value", s) for s in (failed_states or [])]
        if len(set(allowed + skipped + failed)) != len(allowed) + len(skipped) + len(failed):
            raise AirflowException("Duplicate values provided across allowed_states, "
                                   "skipped_states and failed_states.")
        if not external_task_ids:
            external_task_ids = None
        if external_task_id is not None and external_task_ids is not None:
            raise ValueError("Only one of `external_task_id` or `external_task_ids` may be "
                             "provided to ExternalTaskSensor; use external_task_id or "
                             "external_task_ids or external_task_group_id.")
        if external_task_id is not None:
            external_task_ids = [external_task_id]
        if external_task_group_id is not None and external_task_ids is not None:
            raise ValueError("Only one of `external_task_group_id` or `external_task_ids` may "
                             "be provided to ExternalTaskSensor; use external_task_id or "
                             "external_task_ids or external_task_group_id.")
        valid = _TASK_STATES if (external_task_ids or external_task_group_id) else _RUN_STATES
        for state in allowed + skipped + failed:
            if state not in valid:
                raise ValueError("Valid values for `allowed_states`, `skipped_states` and "
                                 f"`failed_states` here: {list(valid)}; not {state!r}")
        if external_task_ids is not None and len(set(external_task_ids)) != len(
                list(external_task_ids)):
            raise ValueError("Duplicate task_ids passed in external_task_ids parameter")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = list(external_task_ids) if external_task_ids else None
        self.external_task_group_id = external_task_group_id
        self.allowed_states = allowed
        self.skipped_states = skipped
        self.failed_states = failed
        self.execution_delta = execution_delta
        self.check_existence = check_existence
        self.deferrable = deferrable

    def external_task_sensor_document(self):
        """The `external_task_sensor:` of the task's document."""
        doc = {"external_dag_id": self.external_dag_id}
        if self.external_task_ids:
            doc["external_task_ids"] = list(self.external_task_ids)
        elif self.external_task_group_id is not None:
            doc["external_task_group_id"] = self.external_task_group_id
        if self.allowed_states != ["success"]:
            doc["allowed_states"] = self.allowed_states
        if self.failed_states:
            doc["failed_states"] = self.failed_states
        if self.skipped_states:
            doc["skipped_states"] = self.skipped_states
        if self.execution_delta is not None:
            doc["execution_delta"] = int(_seconds(self.execution_delta))
        if self.check_existence:
            doc["check_existence"] = True
        return doc

    def execute(self, context):
        return None

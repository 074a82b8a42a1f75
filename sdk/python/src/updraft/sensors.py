"""Sensors: `BaseSensorOperator` and the sensors updraft has. updraft runs the waiting: a
sensor's task calls `poke` once per poke (`python_kind: sensor`), and the worker sleeps between
pokes (`mode="poke"`) or frees its slot until the next one (`mode="reschedule"`), ending the
wait at `timeout` (counted from the first poke of the try). `FileSensor` and an `HttpSensor`
without `response_check` are poked by the worker itself; the time sensors wait in the
scheduler, with no process at all."""

import datetime

from .baseoperator import BaseOperator
from .exceptions import AirflowException, NotSupportedByUpdraft

# BaseSensorOperator's arguments, as the task's `sensor:` document names them.
SENSOR_ARGUMENTS = ("poke_interval", "timeout", "mode", "soft_fail", "exponential_backoff",
                    "max_wait")
DEFAULT_POKE_INTERVAL = 60
DEFAULT_TIMEOUT = 60 * 60 * 24 * 7
VALID_MODES = ("poke", "reschedule")


class PokeReturnValue:
    """What a poke may return instead of a bool: whether the wait is over, and the XCom the
    sensor pushes when it is."""

    def __init__(self, is_done, xcom_value=None):
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self):
        return bool(self.is_done)

    def __repr__(self):
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


def _seconds(name, value):
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AirflowException(f"The {name} must be a number of seconds or a timedelta, "
                               f"not {value!r}")
    if value < 0:
        raise AirflowException(f"The {name} must be a non-negative number, not {value!r}")
    return int(value) if float(value).is_integer() else value


def sensing_document(poke_interval=DEFAULT_POKE_INTERVAL, timeout=DEFAULT_TIMEOUT, mode="poke",
                     soft_fail=False, exponential_backoff=False, max_wait=None):
    """The task's `sensor:` document, checked as Airflow checks the arguments."""
    if mode not in VALID_MODES:
        raise AirflowException(f"The mode must be one of {list(VALID_MODES)},"
                               f"'{mode}' was given.")
    doc = {"poke_interval": _seconds("poke_interval", poke_interval),
           "timeout": _seconds("timeout", timeout), "mode": mode}
    if soft_fail:
        doc["soft_fail"] = True
    if exponential_backoff:
        doc["exponential_backoff"] = True
    if max_wait is not None:
        doc["max_wait"] = _seconds("max_wait", max_wait)
    return doc


def pop_sensor_arguments(kwargs):
    """Takes BaseSensorOperator's arguments out of `kwargs`: the `sensor:` document. Airflow's
    `silent_fail` and `never_fail` are refused by name; `deferrable` too."""
    for name in ("silent_fail", "never_fail"):
        if kwargs.pop(name, False):
            raise NotSupportedByUpdraft(f"A sensor's {name}")
    if kwargs.pop("deferrable", False):
        raise NotSupportedByUpdraft("Deferrable sensors (deferrable=True)",
                                    "updraft's time sensors already wait without a process")
    kwargs.pop("start_from_trigger", None)
    return sensing_document(**{k: kwargs.pop(k) for k in SENSOR_ARGUMENTS if k in kwargs})


class BaseSensorOperator(BaseOperator):
    """A task that waits: `poke(context)` answers whether what it waits for is there."""

    ui_color = "#e6f1f2"
    _updraft_kind = "python"
    _python_kind = "sensor"

    def __init__(self, **kwargs):
        self._sensing = pop_sensor_arguments(kwargs)
        super().__init__(**kwargs)

    @property
    def poke_interval(self):
        return self._sensing["poke_interval"]

    @property
    def timeout(self):
        return self._sensing["timeout"]

    @property
    def mode(self):
        return self._sensing["mode"]

    @property
    def soft_fail(self):
        return self._sensing.get("soft_fail", False)

    @property
    def reschedule(self):
        return self.mode == "reschedule"

    def poke(self, context):
        raise AirflowException("Override me.")

    def execute(self, context):
        # One poke: updraft's worker pokes again (or reschedules) while it answers False.
        return self.poke(context)


class PythonSensor(BaseSensorOperator):
    """Waits for `python_callable` to return something truthy (or a done PokeReturnValue)."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(self, *, python_callable, op_args=None, op_kwargs=None, templates_dict=None,
                 **kwargs):
        if not callable(python_callable):
            raise AirflowException("`python_callable` param must be callable")
        super().__init__(**kwargs)
        from .operators import _depend_on_references, callable_line

        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        self._source_line = callable_line(python_callable)
        _depend_on_references(self, self.op_args, self.op_kwargs, templates_dict)

    def poke(self, context):
        from .context import call_with_context

        context["templates_dict"] = self.templates_dict
        return call_with_context(self.python_callable, self.op_args, self.op_kwargs, context)


class FileSensor(BaseSensorOperator):
    """Waits for a file, or a directory holding a file, to match `filepath` (a glob; joined to
    the `path` extra of the `fs_conn_id` connection)."""

    template_fields = ("filepath",)
    ui_color = "#91818a"
    _updraft_kind = "file_sensor"

    def __init__(self, *, filepath, fs_conn_id="fs_default", recursive=False, **kwargs):
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def operator_document(self):
        if not isinstance(self.filepath, str):
            raise TypeError(f"FileSensor filepath must be a str, not "
                            f"{type(self.filepath).__name__}")
        doc = {"filepath": self.filepath, "fs_conn_id": self.fs_conn_id}
        if self.recursive:
            doc["recursive"] = True
        return doc

    def poke(self, context):
        import glob
        import json
        import os

        from .models import BaseHook

        base = ""
        try:
            extra = BaseHook.get_connection(self.fs_conn_id).extra or "{}"
            base = json.loads(extra).get("path", "")
        except Exception:  # noqa: BLE001 - fs_default may be left undefined, as in the worker
            if self.fs_conn_id != "fs_default":
                raise
        for path in glob.glob(os.path.join(base, self.filepath), recursive=self.recursive):
            if os.path.isfile(path):
                return True
            for _, _, files in os.walk(path):
                if files:
                    return True
        return False


class _TimeWait(BaseOperator):
    """A wait on time alone: the scheduler holds it (state `deferred`) until its instant, then
    it succeeds; no process runs for it."""

    ui_color = "#e6f1f2"

    def __init__(self, **kwargs):
        for name in SENSOR_ARGUMENTS + ("deferrable", "start_from_trigger", "end_from_trigger",
                                        "silent_fail", "never_fail"):
            kwargs.pop(name, None)
        super().__init__(**kwargs)

    def execute(self, context):
        return None


class TimeDeltaSensor(_TimeWait):
    """Waits until the run's data interval end plus `delta`."""

    _updraft_kind = "time_delta_sensor"

    def __init__(self, *, delta, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(delta, datetime.timedelta):
            raise TypeError(f"TimeDeltaSensor delta must be a timedelta, not "
                            f"{type(delta).__name__}")
        self.delta = delta

    def operator_document(self):
        return {"delta": _seconds("delta", self.delta)}


class TimeSensor(_TimeWait):
    """Waits until `target_time` of the day (the DAG's time zone)."""

    _updraft_kind = "time_sensor"

    def __init__(self, *, target_time, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(target_time, datetime.time):
            raise TypeError(f"TimeSensor target_time must be a datetime.time, not "
                            f"{type(target_time).__name__}")
        self.target_time = target_time

    def operator_document(self):
        return {"target_time": self.target_time.replace(tzinfo=None).isoformat()}


class DateTimeSensor(_TimeWait):
    """Waits until `target_time`, a datetime (naive: UTC) or its ISO text."""

    template_fields = ("target_time",)
    _updraft_kind = "date_time_sensor"

    def __init__(self, *, target_time, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_time, str) and "{{" in target_time:
            raise NotSupportedByUpdraft("DateTimeSensor with a templated target_time",
                                        "give a datetime, or use TimeDeltaSensor")
        if isinstance(target_time, str):
            try:
                target_time = datetime.datetime.fromisoformat(target_time)
            except ValueError:
                raise TypeError(f"DateTimeSensor target_time {target_time!r} is not an ISO "
                                f"datetime") from None
        if not isinstance(target_time, datetime.datetime):
            raise TypeError(f"DateTimeSensor target_time must be a datetime or a str, not "
                            f"{type(target_time).__name__}")
        if target_time.tzinfo is None or target_time.utcoffset() is None:
            target_time = target_time.replace(tzinfo=datetime.timezone.utc)
        self.target_time = target_time

    def operator_document(self):
        return {"target_time": self.target_time.isoformat()}


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """Airflow's deferrable name: the same wait, already without a process in updraft."""


class TimeSensorAsync(TimeSensor):
    """Airflow's deferrable name: the same wait, already without a process in updraft."""


class DateTimeSensorAsync(DateTimeSensor):
    """Airflow's deferrable name: the same wait, already without a process in updraft."""


class WaitSensor(TimeDeltaSensor):
    """Airflow's `WaitSensor(time_to_wait=…)`: waits that long after the data interval end."""

    def __init__(self, *, time_to_wait, **kwargs):
        if not isinstance(time_to_wait, datetime.timedelta):
            time_to_wait = datetime.timedelta(seconds=time_to_wait)
        super().__init__(delta=time_to_wait, **kwargs)


class HttpSensor(BaseSensorOperator):
    """Pokes `endpoint` of the `http_conn_id` connection until it answers (a 404 is "not yet",
    another error fails the try) and `response_check`, if given, returns True. Without
    `response_check` the worker makes the requests itself."""

    template_fields = ("endpoint", "request_params", "headers")

    def __init__(self, *, endpoint, http_conn_id="http_default", method="GET",
                 request_params=None, request_kwargs=None, headers=None, response_check=None,
                 extra_options=None, tcp_keep_alive=True, tcp_keep_alive_idle=120,
                 tcp_keep_alive_count=20, tcp_keep_alive_interval=30,
                 response_error_codes_allowlist=None, **kwargs):
        if request_kwargs:
            raise NotSupportedByUpdraft("HttpSensor's request_kwargs")
        if response_error_codes_allowlist not in (None, ["404"], ("404",)):
            raise NotSupportedByUpdraft("HttpSensor's response_error_codes_allowlist",
                                        "404 is the only status that means not yet")
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.http_conn_id = http_conn_id
        self.method = (method or "GET").upper()
        self.request_params = request_params or {}
        self.headers = headers or {}
        self.response_check = response_check
        self.extra_options = extra_options or {}
        self._updraft_kind = "python" if response_check is not None else "http"

    def http_document(self):
        doc = {"http_conn_id": self.http_conn_id, "method": self.method,
               "endpoint": self.endpoint}
        if self.request_params:
            doc["data"] = {str(k): str(v) for k, v in self.request_params.items()}
        if self.headers:
            doc["headers"] = {str(k): str(v) for k, v in self.headers.items()}
        return doc

    def poke(self, context):
        from .http import call

        print(f"Poking: {self.endpoint}", flush=True)
        options = {**self.extra_options, "check_response": False}
        response = call(self.http_conn_id, self.method, self.endpoint,
                        self.request_params or None, self.headers, options)
        if response.status_code == 404:
            return False
        response.raise_for_status()
        if self.response_check is not None:
            from .context import call_with_context

            return call_with_context(self.response_check, [response], {}, context)
        return True

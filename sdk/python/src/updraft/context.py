"""What a running Python task sees: the context (Airflow's names: `ds`, `logical_date`,
`params`, `ti`, `dag_run`, `conf`, `var`, `conn`, ...), `get_current_context()`, and the
calling convention that hands a callable the context values its signature names."""

import datetime
import importlib
import inspect
import json

from . import supervisor
from .assets import triggering_asset_events
from .exceptions import AirflowException, NotSupportedByUpdraft
from .models import Connection, Variable

_stack = []

try:  # pragma: no cover - depends on the environment
    import pendulum
except ImportError:  # pragma: no cover
    pendulum = None


def get_current_context():
    """The running task's context (inside a task only)."""
    if not _stack:
        raise AirflowException(
            "Current context was requested but no context was found! Are you running within "
            "an updraft task?"
        )
    return _stack[-1]


def parse_time(text):
    """An ISO-8601 time from the worker, as a pendulum DateTime when pendulum is installed."""
    if text is None:
        return None
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    if pendulum is not None:
        return pendulum.instance(value)
    return value


def _json_value(value, what):
    try:
        json.dumps(value, allow_nan=False)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None
    except TypeError as err:
        raise TypeError(f"{what}: {err}") from None


class TaskInstance:
    """The running try of a task: ids, `xcom_push`, `xcom_pull`."""

    def __init__(self, info, task):
        self.dag_id = info.get("dag_id")
        self.task_id = info.get("task_id")
        self.run_id = info.get("run_id")
        self.try_number = info.get("try_number")
        self.map_index = info.get("map_index", -1)
        self.task = task
        self.state = "running"
        self.hostname = None
        # What the direct upstream tasks pushed, sent with the context: final by now.
        self._upstream_xcoms = info.get("upstream_xcoms") or {}

    def xcom_push(self, key, value, execution_date=None):
        _json_value(value, f"XCom {key!r}")
        supervisor.current().request("xcom_push", key=key, value=value)

    def xcom_pull(self, task_ids=None, dag_id=None, key="return_value",
                  include_prior_dates=False, map_indexes=None, default=None, run_id=None):
        if include_prior_dates:
            raise NotSupportedByUpdraft("xcom_pull(include_prior_dates=True)")
        if key is None:
            raise NotSupportedByUpdraft("xcom_pull(key=None) (the latest XCom of any key)",
                                        "name the key")
        if isinstance(task_ids, str) and map_indexes is None:
            # An upstream of the same mapped task group: the value of this instance's index.
            from .nodes import NOT_SAME_INDEX, same_index_value

            value = same_index_value(self.task, task_ids, key)
            if value is not NOT_SAME_INDEX:
                return default if value is None else value
        single = (task_ids is None or isinstance(task_ids, str)) and (
            map_indexes is None or isinstance(map_indexes, int))
        if task_ids is None:
            ids = [self.task_id]
        elif isinstance(task_ids, str):
            ids = [task_ids]
        else:
            ids = list(task_ids)
        if (map_indexes is None and dag_id in (None, self.dag_id)
                and run_id in (None, self.run_id)
                and all(i in self._upstream_xcoms for i in ids)):
            values = [self._upstream_xcoms[i].get(key) for i in ids]
            values = [default if v is None else v for v in values]
            return values[0] if single else values
        if map_indexes is not None and not isinstance(map_indexes, int):
            map_indexes = list(map_indexes)
            if not all(isinstance(i, int) for i in map_indexes):
                raise TypeError("xcom_pull(map_indexes=...) takes a map index or a list of them")
        reply = supervisor.current().request(
            "xcom_pull", dag_id=dag_id, task_ids=ids, key=key, run_id=run_id,
            map_indexes=map_indexes,
        )
        values = [default if v is None else v for v in reply.get("values", [])]
        if single:
            return values[0] if values else default
        return values

    def __repr__(self):
        return f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id} [{self.state}]>"


class DagRun:
    def __init__(self, info, dag_id):
        run = info.get("dag_run") or {}
        self.dag_id = dag_id
        self.run_id = run.get("run_id", info.get("run_id"))
        self.run_type = run.get("run_type", info.get("run_type"))
        self.conf = run.get("conf", info.get("conf")) or {}
        self.logical_date = parse_time(run.get("logical_date", info.get("logical_date")))
        self.execution_date = self.logical_date
        self.start_date = parse_time(run.get("start_date"))
        self.data_interval_start = parse_time(info.get("data_interval_start"))
        self.data_interval_end = parse_time(info.get("data_interval_end"))
        self.external_trigger = self.run_type == "manual"

    def __repr__(self):
        return f"<DagRun {self.dag_id} @ {self.logical_date}: {self.run_id}>"


class _VariableAccessor:
    """`var.value.name` / `var.json.name` in templates and the context."""

    def __init__(self, deserialize_json):
        self._json = deserialize_json

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._json)

    def get(self, key, default_var=None):
        return Variable.get(key, default_var=default_var, deserialize_json=self._json)


class _ConnectionAccessor:
    def __getattr__(self, conn_id):
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return Connection.get_connection_from_secrets(conn_id)

    def get(self, conn_id, default=None):
        try:
            return Connection.get_connection_from_secrets(conn_id)
        except Exception:  # noqa: BLE001 - Airflow's accessor answers the default
            return default


def _ds_add(ds, days):
    day = datetime.datetime.strptime(ds, "%Y-%m-%d") + datetime.timedelta(days=days)
    return day.strftime("%Y-%m-%d")


def _ds_format(ds, input_format, output_format):
    return datetime.datetime.strptime(str(ds), input_format).strftime(output_format)


class _Macros:
    """Airflow's `macros`: the date helpers, and modules imported on first use (a task that does
    not use them does not pay for their import)."""

    ds_add = staticmethod(_ds_add)
    ds_format = staticmethod(_ds_format)
    timedelta = datetime.timedelta
    datetime = datetime.datetime
    json = json

    def __getattr__(self, name):
        if name in ("time", "uuid", "dateutil"):
            return importlib.import_module(name)
        if name == "random":
            return importlib.import_module("random").random
        raise AttributeError(f"macros has no {name!r}")


macros = _Macros()


def build_context(info, dag, task):
    """The context of the running task from the worker's `start` answer."""
    logical_date = parse_time(info.get("logical_date"))
    ti = TaskInstance(info, task)
    ti.dag_run = DagRun(info, info.get("dag_id"))
    params = dict(info.get("params") or {})
    # The worker sends the run's params; defaults of the DAG and the task fill any gap.
    if task is not None:
        for key, value in (task.params or {}).items():
            params.setdefault(key, getattr(value, "value", value))
    if dag is not None:
        for key in dag.params:
            params.setdefault(key, dag.params[key])
    ts = info.get("ts")
    context = {
        "dag": dag,
        "task": task,
        "ti": ti,
        "task_instance": ti,
        "run_id": info.get("run_id"),
        "ds": info.get("ds"),
        "ds_nodash": info.get("ds_nodash"),
        "ts": ts,
        "logical_date": logical_date,
        "execution_date": logical_date,
        "data_interval_start": parse_time(info.get("data_interval_start")),
        "data_interval_end": parse_time(info.get("data_interval_end")),
        "params": params,
        "dag_run": ti.dag_run,
        "conf": info.get("conf") or {},
        "var": {"value": _VariableAccessor(False), "json": _VariableAccessor(True)},
        "conn": _ConnectionAccessor(),
        "macros": macros,
        "map_index": info.get("map_index", -1),
        "test_mode": False,
        "inlets": [],
        "outlets": [],
        "templates_dict": None,
        "task_instance_key_str": f"{info.get('dag_id')}__{info.get('task_id')}__"
                                 f"{info.get('ds_nodash')}",
        "try_number": info.get("try_number"),
        "triggering_asset_events": triggering_asset_events(info.get("triggering_asset_events")),
    }
    if logical_date is not None:
        context["ts_nodash"] = logical_date.strftime("%Y%m%dT%H%M%S")
        context["ts_nodash_with_tz"] = logical_date.strftime("%Y%m%dT%H%M%S%z")
    return context


def call_with_context(function, args, kwargs, context):
    """Calls `function(*args, **kwargs)` plus the context values it asks for: by parameter name,
    or all of them when it has `**kwargs` (Airflow's convention)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function(*args, **kwargs)
    parameters = signature.parameters
    merged = dict(context)
    merged.update(kwargs)
    positional = []
    for param in parameters.values():
        if len(positional) == len(args):
            break
        if param.kind == param.VAR_POSITIONAL:
            break
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional.append(param.name)
    for name in positional:
        if name in kwargs:
            raise ValueError(f"The key {name!r} in args is a part of kwargs and therefore "
                             f"reserved.")
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        call_kwargs = {k: v for k, v in merged.items() if k not in positional}
    else:
        call_kwargs = {
            name: merged[name]
            for name, param in parameters.items()
            if name in merged and name not in positional
            and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        }
    return function(*args, **call_kwargs)

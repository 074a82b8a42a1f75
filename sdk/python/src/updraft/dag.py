"""`DAG` (a context manager) and `@dag`: a DAG's settings, its tasks, and the registry the parser
collects DAGs from."""

import datetime
import functools
import inspect
import sys

from . import _registry, notifications
from .baseoperator import check_id
from .exceptions import DuplicateTaskIdFound, NotSupportedByUpdraft, TaskNotFound
from .param import NOTSET, Param, ParamsDict

# DAG arguments that only describe the DAG or tune Airflow's UI: accepted, not stored.
INFORMATIONAL_ARGS = ("doc_md", "owner_links", "dag_display_name", "default_view",
                      "orientation", "auto_register", "full_filepath", "fileloc")
# DAG arguments with behaviour updraft does not have: refused unless neutral.
UNSUPPORTED_ARGS = {
    "sla_miss_callback": "SLA callbacks",
    "user_defined_macros": "user_defined_macros",
    "user_defined_filters": "user_defined_filters",
    "template_searchpath": "template_searchpath",
    "template_undefined": "template_undefined",
    "render_template_as_native_obj": "render_template_as_native_obj",
    "jinja_environment_kwargs": "jinja_environment_kwargs",
    "access_control": "access_control",
    "is_paused_upon_creation": "is_paused_upon_creation",
    "timetable": "Custom timetables",
    "fail_stop": "fail_stop",
    "fail_fast": "fail_fast",
}


def _caller_location():
    """The file and line of the DAG file's code that created the object."""
    frame = sys._getframe(2)
    sdk_dir = __file__.rsplit("/", 1)[0]
    while frame is not None and frame.f_code.co_filename.startswith(sdk_dir):
        frame = frame.f_back
    if frame is None:
        return None, None
    return frame.f_code.co_filename, frame.f_lineno


class DAG:
    def __init__(self, dag_id=None, description=None, schedule=NOTSET,
                 schedule_interval=NOTSET, start_date=None, end_date=None, default_args=None,
                 catchup=None, max_active_runs=None, max_active_tasks=None, concurrency=None,
                 tags=None, params=None, dagrun_timeout=None,
                 max_consecutive_failed_dag_runs=None, on_success_callback=None,
                 on_failure_callback=None, deadline=None, **kwargs):
        self.dag_id = check_id("dag_id", dag_id)
        # As notifier documents (an unsupported callback is refused here, naming it).
        self.callbacks = {
            "on_success_callback": notifications.callback_documents(
                "on_success_callback", on_success_callback),
            "on_failure_callback": notifications.callback_documents(
                "on_failure_callback", on_failure_callback),
        }
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.deadline = notifications.deadline_documents(deadline)
        self.fileloc, self.lineno = _caller_location()
        for key, value in kwargs.items():
            if key in UNSUPPORTED_ARGS:
                if value not in (None, False, {}, [], ()):
                    raise NotSupportedByUpdraft(UNSUPPORTED_ARGS[key], f"{key}= of DAG")
            elif key not in INFORMATIONAL_ARGS:
                raise TypeError(f"DAG.__init__() got an unexpected keyword argument {key!r}")
        self.doc_md = kwargs.get("doc_md")
        self.description = description
        self.default_args = dict(default_args or {})
        if schedule is not NOTSET and schedule_interval is not NOTSET:
            raise ValueError("give either schedule or schedule_interval, not both")
        # Airflow 3's default: no schedule (Airflow 2 ran daily without one).
        self.schedule = schedule_interval if schedule is NOTSET else schedule
        if self.schedule is NOTSET:
            self.schedule = None
        self.schedule_interval = self.schedule
        self.start_date = start_date if start_date is not None else self.default_args.get(
            "start_date")
        self.end_date = end_date if end_date is not None else self.default_args.get("end_date")
        self.catchup = catchup
        self.max_active_runs = max_active_runs
        self.max_active_tasks = max_active_tasks if max_active_tasks is not None else concurrency
        if dagrun_timeout is not None and not isinstance(dagrun_timeout, datetime.timedelta):
            raise TypeError(
                f"dagrun_timeout must be a datetime.timedelta, not {type(dagrun_timeout).__name__}")
        self.dagrun_timeout = dagrun_timeout
        if max_consecutive_failed_dag_runs is not None and (
                isinstance(max_consecutive_failed_dag_runs, bool)
                or not isinstance(max_consecutive_failed_dag_runs, int)
                or max_consecutive_failed_dag_runs < 0):
            raise ValueError("max_consecutive_failed_dag_runs must be a whole number of at least "
                             f"0, not {max_consecutive_failed_dag_runs!r}")
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs or 0
        self.tags = list(tags or [])
        self.params = ParamsDict(params)
        self.task_dict = {}
        self.task_group_dict = {}
        _registry.created_dags.append(self)

    def __enter__(self):
        _registry.dag_stack.append(self)
        return self

    def __exit__(self, *exc):
        _registry.dag_stack.pop()
        return False

    @property
    def tasks(self):
        return list(self.task_dict.values())

    @property
    def task_ids(self):
        return list(self.task_dict)

    @property
    def task_group_ids(self):
        return set(self.task_group_dict)

    @property
    def task_count(self):
        return len(self.task_dict)

    def add_task(self, task):
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DuplicateTaskIdFound(
                f"Task id {task.task_id!r} has already been added to the DAG"
            )
        task.dag = self
        self.task_dict[task.task_id] = task

    def add_tasks(self, tasks):
        for task in tasks:
            self.add_task(task)

    def has_task(self, task_id):
        return task_id in self.task_dict

    def get_task(self, task_id):
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(f"Task {task_id} not found") from None

    @property
    def roots(self):
        return [t for t in self.tasks if not t.upstream_task_ids]

    @property
    def leaves(self):
        return [t for t in self.tasks if not t.downstream_task_ids]

    def unique_task_id(self, task_id):
        """`task_id`, or `task_id__N` when taken (as Airflow names reused TaskFlow tasks)."""
        if task_id not in self.task_dict:
            return task_id
        base = task_id.split("__")[0] if task_id.rsplit("__", 1)[-1].isdigit() else task_id
        number = 1
        while f"{base}__{number}" in self.task_dict:
            number += 1
        return f"{base}__{number}"

    def to_document(self):
        from .serialize import dag_document

        return dag_document(self)

    def test(self, *args, **kwargs):
        raise NotSupportedByUpdraft("DAG.test()", "run `updraft dags test DAG_ID` instead")

    def __repr__(self):
        return f"<DAG: {self.dag_id}>"


class DagParam:
    """A `@dag` function's argument: the run's value of the param of that name."""

    def __init__(self, name, default=NOTSET):
        self.name = name
        self.default = default

    def resolve(self, context):
        params = context.get("params") or {}
        if self.name in params:
            return params[self.name]
        return None if self.default is NOTSET else self.default


def dag(dag_id_or_function=None, **dag_kwargs):
    """`@dag` / `@dag(schedule=..., ...)`: calling the function creates the DAG (named after the
    function) with the tasks the function makes. Its arguments become DAG params."""

    def wrap(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def factory(*args, **kwargs):
            options = dict(dag_kwargs)
            dag_id = options.pop("dag_id", None) or function.__name__
            bound = signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            params = ParamsDict(options.pop("params", None))
            for name, value in bound.arguments.items():
                kind = signature.parameters[name].kind
                if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    continue
                if name not in params:
                    params[name] = value if isinstance(value, Param) else Param(value)
            if "doc_md" not in options and function.__doc__:
                options["doc_md"] = inspect.cleandoc(function.__doc__)
            new_dag = DAG(dag_id, params=params, **options)
            new_dag.fileloc, new_dag.lineno = _caller_location()
            with new_dag:
                call_args = {
                    name: DagParam(name, params.get_param(name).value)
                    for name in bound.arguments
                    if name in params
                }
                function(**call_args)
            return new_dag

        factory.function = function
        return factory

    if callable(dag_id_or_function):
        return wrap(dag_id_or_function)
    if dag_id_or_function is not None:
        dag_kwargs["dag_id"] = dag_id_or_function
    return wrap


def days_ago(n, hour=0, minute=0, second=0, microsecond=0):
    """Midnight (UTC) `n` days ago, as Airflow 2's `airflow.utils.dates.days_ago`."""
    today = datetime.datetime.now(datetime.timezone.utc).replace(
        hour=hour, minute=minute, second=second, microsecond=microsecond
    )
    return today - datetime.timedelta(days=n)

"""TaskFlow: `@task` and its kinds (`@task.bash`, `@task.branch`, `@task.short_circuit`). Calling
a decorated function inside a DAG creates a task and gives an XComArg for its result; passing
that to another task makes the dependency and, at run time, the value."""

import collections.abc
import inspect
import typing

from . import _registry
from .exceptions import NotSupportedByUpdraft
from .nodes import XComArg
from .operators import PythonOperator

# Names Airflow's context has: a TaskFlow parameter of one of these names may be left out of the
# call (it is filled from the context at run time).
KNOWN_CONTEXT_KEYS = frozenset((
    "conf", "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds",
    "ds_nodash", "execution_date", "expanded_ti_count", "exception", "inlets",
    "inlet_events", "logical_date", "macros", "map_index_template", "next_ds",
    "next_ds_nodash", "next_execution_date", "outlets", "outlet_events", "params",
    "prev_data_interval_start_success", "prev_data_interval_end_success", "prev_ds",
    "prev_ds_nodash", "prev_execution_date", "prev_execution_date_success",
    "prev_start_date_success", "prev_end_date_success", "run_id", "task", "task_instance",
    "task_instance_key_str", "test_mode", "templates_dict", "ti", "tomorrow_ds",
    "tomorrow_ds_nodash", "triggering_dataset_events", "triggering_asset_events", "ts",
    "ts_nodash", "ts_nodash_with_tz", "var", "yesterday_ds", "yesterday_ds_nodash",
    "start_date", "task_reschedule_count",
))

# Context values of Airflow's that updraft does not provide yet.
UNSUPPORTED_CONTEXT_KEYS = ("task_state_store", "inlet_events", "outlet_events",
                            "asset_state_store")


def infer_multiple_outputs(function):
    """True when the function is annotated to return a mapping (Airflow's rule)."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - an unresolvable annotation means "no"
        return False
    returned = hints.get("return")
    origin = typing.get_origin(returned) or returned
    return isinstance(origin, type) and issubclass(origin, collections.abc.Mapping)


class DecoratedPythonOperator(PythonOperator):
    """The task a `@task` call creates."""

    def __init__(self, *, python_kind="task", multiple_outputs=False,
                 ignore_downstream_trigger_rules=None, output_processor=None, **kwargs):
        self._python_kind = python_kind
        self.multiple_outputs = multiple_outputs
        super().__init__(**kwargs)
        if output_processor is not None and python_kind != "bash":
            raise TypeError("output_processor is an argument of @task.bash only")
        # BashOperator's argument: turns the command's last line into the result.
        self.output_processor = output_processor
        if ignore_downstream_trigger_rules is not None:
            # ShortCircuitOperator's argument, which `@task.short_circuit(...)` passes on.
            if python_kind != "short_circuit":
                raise TypeError("ignore_downstream_trigger_rules is an argument of "
                                "@task.short_circuit only")
            self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules


def _check_call(function, args, kwargs):
    """A call that cannot bind to the function fails where it is written, as in Airflow;
    parameters named like context keys may be left out."""
    signature = inspect.signature(function)
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{function.__name__}(): {err}") from None
    empty = inspect.Parameter.empty
    for param in signature.parameters.values():
        if (param.default is empty and param.name not in bound.arguments
                and param.name not in KNOWN_CONTEXT_KEYS
                and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)):
            raise TypeError(f"{function.__name__}(): missing a required argument: "
                            f"{param.name!r}")


class TaskDecorator:
    """A function made a task factory by `@task`."""

    def __init__(self, function, python_kind, options):
        # A context value updraft does not have would be None at run time: refuse it here.
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            parameters = {}
        for name in UNSUPPORTED_CONTEXT_KEYS:
            if name in parameters:
                raise NotSupportedByUpdraft(f"The {name} context value")
        self.function = function
        self.python_kind = python_kind
        self.options = options
        self.__name__ = getattr(function, "__name__", "task")
        self.__doc__ = getattr(function, "__doc__", None)
        self.__wrapped__ = function

    def __call__(self, *args, **kwargs):
        return XComArg(self._create(args, kwargs))

    def _create(self, args, kwargs, mapped_names=()):
        """The task of a call; `mapped_names`: the arguments each mapped instance brings
        (`None`: not known before run time, from `expand_kwargs`)."""
        options = dict(self.options)
        if mapped_names is None:
            signature = inspect.signature(self.function)
            try:
                signature.bind_partial(*args, **kwargs)
            except TypeError as err:
                raise TypeError(f"{self.function.__name__}(): {err}") from None
        else:
            _check_call(self.function, args,
                        {**kwargs, **{name: None for name in mapped_names}})
        label = options.pop("task_id", None) or self.function.__name__
        dag = options.get("dag") or _registry.current_dag()
        group = options.get("task_group")
        if group is None and dag is not None:
            group = _registry.current_group(dag)
        if dag is not None:
            full_id = group.child_id(label) if group is not None else label
            unique = dag.unique_task_id(full_id)
            if unique != full_id:
                label = label + unique[len(full_id):]
        multiple_outputs = options.pop("multiple_outputs", None)
        if multiple_outputs is None:
            multiple_outputs = infer_multiple_outputs(self.function)
        if self.function.__doc__ and "doc_md" not in options:
            options["doc_md"] = self.function.__doc__
        sensing = None
        if self.python_kind == "sensor":
            from .sensors import pop_sensor_arguments

            sensing = pop_sensor_arguments(options)
        operator = DecoratedPythonOperator(
            task_id=label, python_callable=self.function, op_args=args, op_kwargs=kwargs,
            python_kind=self.python_kind, multiple_outputs=bool(multiple_outputs), **options,
        )
        if sensing is not None:
            operator._sensing = sensing
        return operator

    def override(self, **options):
        return TaskDecorator(self.function, self.python_kind, {**self.options, **options})

    def partial(self, **kwargs):
        from .mapping import PartialTask

        return PartialTask(self, kwargs)

    def expand(self, **mapped):
        return self.partial().expand(**mapped)

    def expand_kwargs(self, value):
        return self.partial().expand_kwargs(value)


def _decorator(python_kind):
    def decorate(python_callable=None, multiple_outputs=None, **options):
        if multiple_outputs is not None:
            options["multiple_outputs"] = multiple_outputs

        def wrap(function):
            return TaskDecorator(function, python_kind, options)

        if python_callable is not None:
            if not callable(python_callable):
                raise TypeError("@task takes a function")
            return wrap(python_callable)
        return wrap

    return decorate


def _external_decorator(python_kind):
    """`@task.external_python(python=...)`: a TaskFlow task run by another interpreter."""

    def decorate(python_callable=None, python=None, multiple_outputs=None, **options):
        if python is None:
            raise TypeError("@task.external_python needs python=<path of the interpreter>")
        options.pop("use_dill", None)
        options.pop("expect_airflow", None)
        options["python_executable"] = python
        return _decorator(python_kind)(python_callable, multiple_outputs, **options)

    return decorate


UNSUPPORTED_KINDS = {
    "virtualenv": "@task.virtualenv",
    "branch_virtualenv": "@task.branch_virtualenv", "docker": "@task.docker",
    "kubernetes": "@task.kubernetes", "kubernetes_cmd": "@task.kubernetes_cmd",
    "pyspark": "@task.pyspark", "sql": "@task.sql",
    "run_if": "@task.run_if", "skip_if": "@task.skip_if", "snowpark": "@task.snowpark",
}


class _TaskNamespace:
    """`task`, `task.python`, `task.bash`, `task.branch`, `task.short_circuit`,
    `task.sensor`."""

    def __init__(self):
        self._plain = _decorator("task")
        self.python = self._plain
        self.bash = _decorator("bash")
        self.branch = _decorator("branch")
        self.short_circuit = _decorator("short_circuit")
        # Each call of the function is one poke (a PythonSensor's).
        self.sensor = _decorator("sensor")
        self.external_python = _external_decorator("task")
        self.branch_external_python = _external_decorator("branch")

    def __call__(self, python_callable=None, multiple_outputs=None, **options):
        return self._plain(python_callable, multiple_outputs, **options)

    def __getattr__(self, name):
        if name in UNSUPPORTED_KINDS:
            raise NotSupportedByUpdraft(UNSUPPORTED_KINDS[name])
        raise AttributeError(f"task has no attribute {name!r}")


task = _TaskNamespace()

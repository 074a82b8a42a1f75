"""Dynamic task mapping: `Operator.partial(...).expand(...)`, `.expand_kwargs(...)` and the
same on `@task`. A mapped task is one task of the DAG document with an `expand` (or
`expand_kwargs`) key; updraft runs one task instance per value and gives each its own
arguments (`map_kwargs` in the run context), which `apply_map_kwargs` puts in place before the
task runs. See docs/python-protocol.md."""

from .exceptions import NotSupportedByUpdraft
from .nodes import XCOM_RETURN_KEY, XComArg
from .xcom_transforms import final_item, needs_python

# What a BashOperator maps over when updraft runs it natively (without Python).
BASH_NATIVE_ARGUMENTS = ("bash_command", "env")


# Reserved `map_kwargs` entries (docs/python-protocol.md): what a task of a mapped group's
# direct upstream pushed at the same map index, and an `expand_kwargs` item still to be turned
# into a dict by the callables of an `XComArg.map`.
SAME_INDEX_XCOMS = "__same_index_xcoms__"
MAP_ITEM = "__map_item__"


def source_document(name, value):
    """How a value to map over is written in the DAG document: `{"xcom": task_id}` for a task's
    result, a list for a literal (a dict as its [key, value] pairs, as Airflow maps over a
    dict's items), `{"zip"|"concat"|"map": ...}` for a derived value (xcom_transforms.py)."""
    from .xcom_transforms import _DerivedXComArg
    from .xcom_transforms import source_document as derived_document

    if isinstance(value, _DerivedXComArg):
        return derived_document(value)
    if isinstance(value, XComArg):
        if value.key != XCOM_RETURN_KEY:
            raise NotSupportedByUpdraft("Mapping over an XCom other than a task's return value",
                                        f"{name}={value!r}")
        return {"xcom": value.operator.task_id}
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, dict):
        return [[key, item] for key, item in value.items()]
    raise ValueError(f"Cannot map over {type(value).__name__} for argument {name!r}: expand() "
                     f"takes a list, a dict or a task's result")


def _kwargs_source(value):
    if isinstance(value, XComArg):
        return source_document("expand_kwargs", value)
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expand_kwargs() takes a list of dicts or a task's result, not "
                         f"{type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"expand_kwargs() item {index} must be a dict of arguments, not "
                             f"{type(item).__name__}")
    return list(value)


def attach(task, mapping, references, sources=None):
    """Marks `task` mapped (`mapping`: {"expand": {...}} or {"expand_kwargs": ...}) and makes
    the tasks whose results it maps over upstream of it. `sources`: the values mapped over by
    name (`MAP_ITEM` for expand_kwargs), whose derived ones turn each instance's item."""
    task._mapping = mapping
    task._map_sources = dict(sources or {})
    for reference in references:
        reference >> task
    return task


def _native_bash(task, mapped_names):
    """A BashOperator mapped only over its command and environment runs natively, as an
    unmapped one does."""
    from .operators import BashOperator

    if not isinstance(task, BashOperator) or type(task).execute is not BashOperator.execute:
        return
    if any(needs_python(v) for v in getattr(task, "_map_sources", {}).values()):
        return
    if task.params or not set(mapped_names) <= set(BASH_NATIVE_ARGUMENTS):
        return
    if task.bash_command is not None and not isinstance(task.bash_command, str):
        return
    task._updraft_kind = "bash"
    if task.bash_command is None:
        task.bash_command = ""


class PartialOperator:
    """`SomeOperator.partial(**kwargs)`: the arguments every mapped instance shares."""

    def __init__(self, operator_class, kwargs):
        if "task_id" not in kwargs:
            raise TypeError(f"{operator_class.__name__}.partial() needs a task_id")
        self.operator_class = operator_class
        self.kwargs = kwargs

    def _build(self, mapped_names):
        from .operators import BashOperator

        kwargs = dict(self.kwargs)
        for name in mapped_names:
            kwargs.setdefault(name, None)
        if issubclass(self.operator_class, BashOperator):
            kwargs.setdefault("bash_command", None)
        return self.operator_class(**kwargs)

    def expand(self, **mapped):
        if not mapped:
            raise TypeError("expand() needs at least one argument to map over")
        sources = {name: source_document(name, value) for name, value in mapped.items()}
        for name in mapped:
            if name in self.kwargs:
                raise TypeError(f"{name!r} is given to both partial() and expand()")
        task = self._build(mapped)
        refs = [v for v in mapped.values() if isinstance(v, XComArg)]
        attach(task, {"expand": sources}, refs, mapped)
        _native_bash(task, mapped)
        return task

    def expand_kwargs(self, value):
        source = _kwargs_source(value)
        names = set()
        if isinstance(source, list):
            names = {name for item in source for name in item}
        task = self._build(())
        refs = [value] if isinstance(value, XComArg) else []
        attach(task, {"expand_kwargs": source}, refs, {MAP_ITEM: value})
        _native_bash(task, names or BASH_NATIVE_ARGUMENTS)
        return task


class PartialTask:
    """`@task`-function`.partial(**kwargs)`: the arguments every mapped call shares."""

    def __init__(self, decorator, kwargs):
        self.decorator = decorator
        self.kwargs = kwargs

    def expand(self, **mapped):
        if not mapped:
            raise TypeError("expand() needs at least one argument to map over")
        for name in mapped:
            if name in self.kwargs:
                raise TypeError(f"{name!r} is given to both partial() and expand()")
        sources = {name: source_document(name, value) for name, value in mapped.items()}
        task = self.decorator._create((), self.kwargs, mapped_names=tuple(mapped))
        refs = [v for v in mapped.values() if isinstance(v, XComArg)]
        attach(task, {"expand": sources}, refs, mapped)
        return XComArg(task)

    def expand_kwargs(self, value):
        source = _kwargs_source(value)
        task = self.decorator._create((), self.kwargs, mapped_names=None)
        refs = [value] if isinstance(value, XComArg) else []
        attach(task, {"expand_kwargs": source}, refs, {MAP_ITEM: value})
        return XComArg(task)


def final_arguments(task, map_kwargs):
    """An instance's arguments as the task takes them: the items updraft gave, turned by the
    callables of any `XComArg.map` mapped over; the reserved entries taken out."""
    arguments = dict(map_kwargs)
    task._same_index_xcoms = arguments.pop(SAME_INDEX_XCOMS, None)
    sources = getattr(task, "_map_sources", None) or {}
    if MAP_ITEM in arguments:
        kwargs = final_item(sources.get(MAP_ITEM), arguments.pop(MAP_ITEM))
        if not isinstance(kwargs, dict):
            raise ValueError(f"expand_kwargs() needs a dict of arguments per instance, but "
                             f"the mapped value is {type(kwargs).__name__}")
        arguments.update(kwargs)
        return arguments
    for name, source in sources.items():
        if name in arguments:
            arguments[name] = final_item(source, arguments[name])
    return arguments


def apply_map_kwargs(task, map_kwargs):
    """Puts a mapped instance's own arguments in place: a `@task`'s become arguments of the
    call, an operator's its attributes (a mapped argument replaces its partial value); in a
    mapped task group, the group's arguments replace the `MappedArgument`s the task holds."""
    from .taskflow import DecoratedPythonOperator

    if not map_kwargs:
        return
    arguments = final_arguments(task, map_kwargs)
    if getattr(task, "_map_group_id", None) is not None:
        from .mapped_task_group import put_group_arguments

        put_group_arguments(task, arguments)
        return
    if isinstance(task, DecoratedPythonOperator):
        task.op_kwargs = {**task.op_kwargs, **arguments}
        return
    for name, value in arguments.items():
        setattr(task, name, value)

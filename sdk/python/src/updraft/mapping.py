"""Dynamic task mapping: `Operator.partial(...).expand(...)`, `.expand_kwargs(...)` and the
same on `@task`. A mapped task is one task of the DAG document with an `expand` (or
`expand_kwargs`) key; updraft runs one task instance per value and gives each its own
arguments (`map_kwargs` in the run context), which `apply_map_kwargs` puts in place before the
task runs. See docs/python-protocol.md."""

from .exceptions import NotSupportedByUpdraft
from .nodes import XCOM_RETURN_KEY, XComArg

# What a BashOperator maps over when updraft runs it natively (without Python).
BASH_NATIVE_ARGUMENTS = ("bash_command", "env")


def source_document(name, value):
    """How a value to map over is written in the DAG document: `{"xcom": task_id}` for a task's
    result, a list for a literal (a dict as its [key, value] pairs, as Airflow maps over a
    dict's items)."""
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


def attach(task, mapping, references):
    """Marks `task` mapped (`mapping`: {"expand": {...}} or {"expand_kwargs": ...}) and makes
    the tasks whose results it maps over upstream of it."""
    task._mapping = mapping
    for reference in references:
        reference.operator >> task
    return task


def _native_bash(task, mapped_names):
    """A BashOperator mapped only over its command and environment runs natively, as an
    unmapped one does."""
    from .operators import BashOperator

    if not isinstance(task, BashOperator) or type(task).execute is not BashOperator.execute:
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
        _native_bash(task, mapped)
        refs = [v for v in mapped.values() if isinstance(v, XComArg)]
        return attach(task, {"expand": sources}, refs)

    def expand_kwargs(self, value):
        source = _kwargs_source(value)
        names = set()
        if isinstance(source, list):
            names = {name for item in source for name in item}
        task = self._build(())
        _native_bash(task, names or BASH_NATIVE_ARGUMENTS)
        refs = [value] if isinstance(value, XComArg) else []
        return attach(task, {"expand_kwargs": source}, refs)


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
        attach(task, {"expand": sources}, refs)
        return XComArg(task)

    def expand_kwargs(self, value):
        source = _kwargs_source(value)
        task = self.decorator._create((), self.kwargs, mapped_names=None)
        refs = [value] if isinstance(value, XComArg) else []
        attach(task, {"expand_kwargs": source}, refs)
        return XComArg(task)


def apply_map_kwargs(task, map_kwargs):
    """Puts a mapped instance's own arguments in place: a `@task`'s become arguments of the
    call, an operator's its attributes (a mapped argument replaces its partial value)."""
    from .taskflow import DecoratedPythonOperator

    if not map_kwargs:
        return
    if isinstance(task, DecoratedPythonOperator):
        task.op_kwargs = {**task.op_kwargs, **map_kwargs}
        return
    for name, value in map_kwargs.items():
        setattr(task, name, value)

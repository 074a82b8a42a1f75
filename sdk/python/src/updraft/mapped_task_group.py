"""Mapped task groups: a `@task_group` function called with `.expand(...)`,
`.partial(...).expand(...)` or `.expand_kwargs(...)`. The function runs once, at parse time,
with a `MappedArgument` in place of each mapped parameter; every task it creates is mapped over
the group's values (the same `expand` on each, with `map_group` naming the group), so each
expands to the same instances. At run time instance i of a task gets the group's arguments of
index i, and the result of index i of the group's tasks upstream of it (updraft's scheduler
makes instance i wait only for those); a task outside the group sees the list of all. See
docs/python-protocol.md."""

import inspect

from .exceptions import NotSupportedByUpdraft
from .nodes import XComArg


class MappedArgument:
    """A mapped parameter of a mapped task group, as the group's function sees it: replaced by
    the instance's value wherever a task of the group holds it."""

    def __init__(self, group, name):
        self.group = group
        self.name = name

    def __repr__(self):
        return f"MappedArgument({self.group.group_id!r}, {self.name!r})"

    def __str__(self):
        raise TypeError(f"the mapped argument {self.name!r} of task group "
                        f"{self.group.group_id!r} has no value before it runs; pass it to a "
                        f"task as an argument instead of formatting it into a string")


def expand_group(make_group, function, partial_kwargs, mapped=None, kwargs_value=None):
    """Creates the group (`make_group()`, a TaskGroup) and its tasks, mapped over `mapped`
    (expand) or `kwargs_value` (expand_kwargs). Returns what the function returned, or the
    group."""
    from .mapping import MAP_ITEM, _kwargs_source, source_document

    if mapped is not None:
        if not mapped:
            raise TypeError("expand() needs at least one argument to map over")
        for name in mapped:
            if name in partial_kwargs:
                raise TypeError(f"{name!r} is given to both partial() and expand()")
        document = {"expand": {name: source_document(name, v) for name, v in mapped.items()}}
        sources = dict(mapped)
        names = list(mapped)
        references = [v for v in mapped.values() if isinstance(v, XComArg)]
    else:
        document = {"expand_kwargs": _kwargs_source(kwargs_value)}
        sources = {MAP_ITEM: kwargs_value}
        names = [
            p.name for p in inspect.signature(function).parameters.values()
            if p.name not in partial_kwargs
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        references = [kwargs_value] if isinstance(kwargs_value, XComArg) else []
    with make_group() as group:
        arguments = dict(partial_kwargs)
        for name in names:
            arguments[name] = MappedArgument(group, name)
        result = function(**arguments)
    tasks = list(group._tasks())
    for task in tasks:
        _mark(task, group, document, sources)
    # As in Airflow, what the group maps over comes before the group's first tasks (the others
    # follow them); updraft's loader leaves it out of the later tasks' dependencies as well.
    ids = {task.task_id for task in tasks}
    roots = [task for task in tasks if not (task.upstream_task_ids & ids)]
    for reference in references:
        for task in roots:
            if task not in reference._leaves():
                reference >> task
    return group if result is None else result


def _mark(task, group, document, sources):
    from .operators import BashOperator

    if getattr(task, "_map_group_id", None) is not None:
        raise NotSupportedByUpdraft("A mapped task group inside a mapped task group")
    if task._mapping is not None:
        raise NotSupportedByUpdraft("A mapped task inside a mapped task group")
    if _holds_argument(task.settings):
        raise NotSupportedByUpdraft("A task setting (env, pool, ...) taken from a mapped task "
                                    "group's argument")
    if isinstance(task, BashOperator) and _holds_argument(task.bash_command):
        # The command exists only at run time: the SDK runs it (as for an upstream result).
        task._updraft_kind = "python"
        task._python_kind = "bash"
    task._mapping = document
    task._map_group_id = group.group_id
    task._map_sources = dict(sources)


def _holds_argument(value):
    return _replace(value, {}, probe=True)[1]


def _replace(value, arguments, probe=False):
    """`value` with every MappedArgument replaced by its value in `arguments`; and whether
    one was found."""
    if isinstance(value, MappedArgument):
        if probe:
            return value, True
        if value.name not in arguments:
            raise KeyError(f"the mapped task group {value.group.group_id!r} got no value for "
                           f"its argument {value.name!r}")
        return arguments[value.name], True
    if isinstance(value, dict):
        found = False
        out = {}
        for key, item in value.items():
            out[key], hit = _replace(item, arguments, probe)
            found |= hit
        return (out if found else value), found
    if isinstance(value, (list, tuple)):
        items = [_replace(item, arguments, probe) for item in value]
        found = any(hit for _, hit in items)
        if not found:
            return value, False
        values = [item for item, _ in items]
        if isinstance(value, tuple):
            values = type(value)(*values) if hasattr(value, "_fields") else type(value)(values)
        return values, True
    return value, False


def put_group_arguments(task, arguments):
    """Replaces the MappedArguments a task of a mapped group holds (its call's arguments, its
    attributes) by the instance's values."""
    for name, value in list(vars(task).items()):
        if name.startswith("__"):
            continue
        replaced, found = _replace(value, arguments)
        if found:
            setattr(task, name, replaced)

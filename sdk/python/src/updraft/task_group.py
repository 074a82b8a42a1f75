"""`TaskGroup` and `@task_group`: tasks grouped under a prefix (`group.task`), with their own
`default_args`, usable as one node in `>>`."""

import functools

from . import _registry
from .baseoperator import check_id
from .nodes import DependencyMixin


class TaskGroup(DependencyMixin):
    def __init__(self, group_id, prefix_group_id=True, parent_group=None, dag=None,
                 default_args=None, tooltip="", ui_color="CornflowerBlue", ui_fgcolor="#000",
                 add_suffix_on_collision=False, group_display_name=None):
        dag = dag if dag is not None else _registry.current_dag()
        if dag is None:
            raise RuntimeError(f"TaskGroup {group_id!r} must be created inside a DAG")
        if parent_group is None:
            parent_group = _registry.current_group(dag)
        self.dag = dag
        self.parent_group = parent_group
        self.prefix_group_id = prefix_group_id
        self.default_args = dict(default_args or {})
        self.tooltip = tooltip
        self.children = {}
        check_id("group_id", group_id)
        full_id = parent_group.child_id(group_id) if parent_group is not None else group_id
        if add_suffix_on_collision and full_id in dag.task_group_dict:
            suffix = 1
            while f"{full_id}__{suffix}" in dag.task_group_dict:
                suffix += 1
            full_id = f"{full_id}__{suffix}"
        elif full_id in dag.task_group_dict:
            raise ValueError(f"group_id {full_id!r} has already been added to the DAG")
        self.group_id = full_id
        dag.task_group_dict[full_id] = self
        if parent_group is not None:
            parent_group.children[full_id] = self

    def child_id(self, label):
        return f"{self.group_id}.{label}" if self.prefix_group_id else label

    def __enter__(self):
        _registry.group_stack.append(self)
        return self

    def __exit__(self, *exc):
        _registry.group_stack.pop()
        return False

    def _tasks(self):
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child._tasks()
            else:
                yield child

    def _roots(self):
        ids = {t.task_id for t in self._tasks()}
        return [t for t in self._tasks() if not (t.upstream_task_ids & ids)]

    def _leaves(self):
        # As Airflow's: a teardown is no leaf of its group; the work before it stands in for
        # it (not its setups), so `group >> x` does not wait on the clean-up.
        tasks = {t.task_id: t for t in self._tasks()}
        leaves = []

        def before_teardown(teardown):
            for upstream_id in sorted(teardown.upstream_task_ids & tasks.keys()):
                upstream = tasks[upstream_id]
                if upstream.is_teardown:
                    before_teardown(upstream)
                elif not upstream.is_setup and upstream not in leaves:
                    leaves.append(upstream)

        for t in tasks.values():
            if t.downstream_task_ids & tasks.keys():
                continue
            if t.is_teardown:
                before_teardown(t)
            elif t not in leaves:
                leaves.append(t)
        return leaves

    def get_roots(self):
        return self._roots()

    def get_leaves(self):
        return self._leaves()

    def __repr__(self):
        return f"<TaskGroup: {self.group_id}>"


def task_group(python_callable=None, **group_kwargs):
    """`@task_group` / `@task_group(group_id=..., default_args=...)`: calling the function
    creates a group named after it (suffixed `__1`, `__2` on reuse) holding the tasks it makes.
    The call gives what the function returns, or the group when that is None."""

    def wrap(function):
        def make_group():
            options = dict(group_kwargs)
            group_id = options.pop("group_id", None) or function.__name__
            options.setdefault("add_suffix_on_collision", True)
            if "tooltip" not in options and function.__doc__:
                options["tooltip"] = function.__doc__.strip()
            return TaskGroup(group_id, **options)

        @functools.wraps(function)
        def factory(*args, **kwargs):
            with make_group() as group:
                result = function(*args, **kwargs)
            return group if result is None else result

        def override(**more):
            return task_group(function, **{**group_kwargs, **more})

        def partial(**partial_kwargs):
            return _PartialGroup(make_group, function, partial_kwargs)

        factory.override = override
        factory.partial = partial
        factory.expand = lambda **mapped: partial().expand(**mapped)
        factory.expand_kwargs = lambda value: partial().expand_kwargs(value)
        factory.function = function
        return factory

    if python_callable is not None and callable(python_callable):
        return wrap(python_callable)
    return wrap


class _PartialGroup:
    """`@task_group` function`.partial(**kwargs)`: the arguments every mapped instance of the
    group shares (mapped_task_group.py)."""

    def __init__(self, make_group, function, kwargs):
        self.make_group = make_group
        self.function = function
        self.kwargs = kwargs

    def expand(self, **mapped):
        from .mapped_task_group import expand_group

        return expand_group(self.make_group, self.function, self.kwargs, mapped=mapped)

    def expand_kwargs(self, value):
        from .mapped_task_group import expand_group

        return expand_group(self.make_group, self.function, self.kwargs, kwargs_value=value)

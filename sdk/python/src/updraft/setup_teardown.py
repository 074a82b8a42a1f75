"""Setup and teardown tasks, as Airflow 2.7+ has them: `as_setup()`, `as_teardown(setups=...)`,
the `@setup`/`@teardown` decorators, and `with setup >> teardown:` blocks whose tasks become
the work between them. The document marks the roles (`setup`, `teardown`,
`on_failure_fail_dagrun`); the scheduler applies Airflow's rules to them."""

from .exceptions import AirflowException
from .trigger_rule import TriggerRule


def _operator(node):
    """The operator behind a task or an XComArg (what `@task` calls return)."""
    return getattr(node, "operator", node)


def mark_setup(task):
    task = _operator(task)
    if task.is_teardown:
        raise AirflowException(f"task {task.task_id!r} is a teardown; it cannot be a setup")
    task.is_setup = True


def mark_teardown(task, setups=None, on_failure_fail_dagrun=None):
    """Airflow's `as_teardown`: the trigger rule becomes `all_done_setup_success`, and each of
    `setups` a setup upstream of it."""
    task = _operator(task)
    if task.is_setup:
        raise AirflowException(f"task {task.task_id!r} is a setup; it cannot be a teardown")
    task.is_teardown = True
    task.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS.value
    if on_failure_fail_dagrun is not None:
        task.on_failure_fail_dagrun = bool(on_failure_fail_dagrun)
    if setups is not None:
        if not isinstance(setups, (list, tuple, set)):
            setups = [setups]
        for setup in setups:
            mark_setup(setup)
            setup >> task


def check_fail_dagrun(task, value):
    if value and not task.is_teardown:
        raise ValueError(f"Cannot set task on_failure_fail_dagrun for {task.task_id!r} "
                         "because it is not a teardown task.")


# The `with` blocks open now, innermost last: each holds its setups, its teardowns and the
# ids of the DAG's tasks before it opened.
_open_blocks = []


def enter(node):
    task = _operator(node)
    if not task.is_setup and not task.is_teardown:
        raise RuntimeError("Only setup/teardown tasks can be used as context managers.")
    dag = task.dag
    if dag is None:
        raise AirflowException(f"task {task.task_id!r} is in no DAG")
    if task.is_teardown:
        setups = [t for t in task.upstream_list if t.is_setup]
        teardowns = [task]
    else:
        setups = [task]
        teardowns = [t for t in task.downstream_list if t.is_teardown]
    _open_blocks.append((dag, setups, teardowns, set(dag.task_dict)))
    return node


def exit_block():
    """The tasks made inside the block become its work: its setups upstream of the roots,
    its teardowns downstream of the leaves."""
    dag, setups, teardowns, before = _open_blocks.pop()
    own = {t.task_id for t in setups + teardowns}
    new = [t for t in dag.tasks if t.task_id not in before and t.task_id not in own]
    ids = {t.task_id for t in new}
    roots = [t for t in new if not (t.upstream_task_ids & ids)]
    leaves = [t for t in new if not (t.downstream_task_ids & ids)]
    for setup in setups:
        for root in roots:
            if root.task_id not in setup.upstream_task_ids:
                setup >> root
    for teardown in teardowns:
        for leaf in leaves:
            if leaf.task_id not in teardown.downstream_task_ids:
                leaf >> teardown


class _RoleDecorator:
    """`@setup` / `@teardown(on_failure_fail_dagrun=...)` over a function or a `@task`
    (`@task.bash`, ...): each call makes a task with that role."""

    def __init__(self, decorated, role, on_failure_fail_dagrun=None):
        from .taskflow import TaskDecorator, task

        if not isinstance(decorated, TaskDecorator):
            if not callable(decorated):
                raise TypeError(f"@{role} takes a function or a @task")
            decorated = task(decorated)
        self.decorated = decorated
        self.role = role
        self.on_failure_fail_dagrun = on_failure_fail_dagrun
        self.__name__ = decorated.__name__
        self.__doc__ = decorated.__doc__
        self.__wrapped__ = decorated

    def __call__(self, *args, **kwargs):
        made = self.decorated(*args, **kwargs)
        if self.role == "setup":
            mark_setup(made)
        else:
            mark_teardown(made, on_failure_fail_dagrun=self.on_failure_fail_dagrun)
        return made

    def override(self, **options):
        return _RoleDecorator(self.decorated.override(**options), self.role,
                              self.on_failure_fail_dagrun)


def setup(func):
    """`@setup`: every call of the function makes a setup task."""
    return _RoleDecorator(func, "setup")


def teardown(_func=None, *, on_failure_fail_dagrun=None):
    """`@teardown` or `@teardown(on_failure_fail_dagrun=True)`."""
    if _func is not None:
        return _RoleDecorator(_func, "teardown", on_failure_fail_dagrun)
    return lambda func: _RoleDecorator(func, "teardown", on_failure_fail_dagrun)

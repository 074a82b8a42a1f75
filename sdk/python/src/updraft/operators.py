"""The operators updraft has: Bash, Python (plain, branch, short-circuit), Empty and LatestOnly.
`BashOperator` and `EmptyOperator` run natively in updraft; the others are Python tasks, run by
`updraft._run`."""

import inspect

from .baseoperator import BaseOperator
from .exceptions import AirflowException
from .nodes import XComArg
from .runtime_values import find_references


def _depend_on_references(task, *values):
    """An XComArg among the arguments makes its task upstream, as in Airflow."""
    for reference in find_references(values):
        if isinstance(reference, XComArg):
            reference >> task


def callable_name(function):
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    # A function defined inside a @dag function reads `outer.inner`, not `outer.<locals>.inner`.
    return name.replace(".<locals>", "") if name else type(function).__name__


def callable_line(function):
    code = getattr(inspect.unwrap(function), "__code__", None)
    return code.co_firstlineno if code is not None else None


class EmptyOperator(BaseOperator):
    """Does nothing; useful as a join or a placeholder."""

    ui_color = "#e8f7e4"
    _updraft_kind = "empty"

    def execute(self, context):
        return None


class DummyOperator(EmptyOperator):
    """Airflow 2's name of EmptyOperator."""


class BashOperator(BaseOperator):
    """Runs `bash_command` with bash. Templates in it are rendered by updraft."""

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"
    _updraft_kind = "bash"

    def __init__(self, *, bash_command, env=None, append_env=False, output_encoding="utf-8",
                 skip_exit_code=None, skip_on_exit_code=99, cwd=None, output_processor=None,
                 **kwargs):
        if skip_exit_code is not None:
            skip_on_exit_code = skip_exit_code
        super().__init__(env=env, cwd=cwd, skip_on_exit_code=skip_on_exit_code, **kwargs)
        self.bash_command = bash_command
        self.append_env = append_env
        self.output_processor = output_processor
        _depend_on_references(self, bash_command, env)
        # A command that only exists at run time (an upstream result), that reads the task's
        # own params or that pushes XComs while it is rendered (`{{ ti.xcom_push(...) }}`) is
        # produced by the SDK and then run with bash.
        # So is one whose output a Python function turns into the result (`output_processor`).
        if (not isinstance(bash_command, str) or self.params or "xcom_push" in bash_command
                or output_processor is not None):
            self._updraft_kind = "python"
            self._python_kind = "bash"

    def execute(self, context):
        return self.bash_command


class PythonOperator(BaseOperator):
    """Calls `python_callable(*op_args, **op_kwargs)`, adding the context values its
    signature asks for."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")
    ui_color = "#ffefeb"
    _updraft_kind = "python"
    _python_kind = "task"

    def __init__(self, *, python_callable, op_args=None, op_kwargs=None, templates_dict=None,
                 templates_exts=None, show_return_value_in_logs=True, python_executable=None,
                 **kwargs):
        if not callable(python_callable):
            raise AirflowException("`python_callable` param must be callable")
        env = kwargs.get("env")
        super().__init__(**kwargs)
        # Another interpreter for this task (updraft's extension, and ExternalPythonOperator's
        # `python`); `default_args` may give it for every Python task.
        if python_executable is None:
            for defaults in self._default_args_chain(self.dag, self.task_group):
                python_executable = defaults.get("python_executable", python_executable)
        if python_executable is not None and (
                not isinstance(python_executable, str) or not python_executable.strip()):
            raise ValueError(f"python_executable must be a path, not {python_executable!r}")
        self.python_executable = python_executable
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        if templates_exts:
            # Values of the templated fields ending in one of these name template files.
            self.template_ext = tuple(templates_exts)
        self._source_line = callable_line(python_callable)
        _depend_on_references(self, self.op_args, self.op_kwargs, templates_dict, env)

    def execute(self, context):
        from .context import call_with_context

        context["templates_dict"] = self.templates_dict
        return call_with_context(self.python_callable, self.op_args, self.op_kwargs, context)


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id (or ids) to follow; the other direct downstream tasks
    are skipped."""

    _python_kind = "branch"


class ShortCircuitOperator(PythonOperator):
    """A falsy result skips the downstream tasks (all of them, transitively, unless
    `ignore_downstream_trigger_rules=False`: then only the direct ones)."""

    _python_kind = "short_circuit"

    def __init__(self, *, ignore_downstream_trigger_rules=True, **kwargs):
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules


class ExternalPythonOperator(PythonOperator):
    """Runs the callable with another interpreter (`python`, e.g. a virtualenv's). updraft runs
    the DAG file again in that interpreter, so its top-level imports must resolve there."""

    def __init__(self, *, python, use_dill=False, expect_airflow=True, expect_pendulum=False,
                 string_args=None, skip_on_exit_code=None, **kwargs):
        if string_args:
            from .exceptions import NotSupportedByUpdraft

            raise NotSupportedByUpdraft("string_args of ExternalPythonOperator")
        super().__init__(python_executable=python, **kwargs)


class BranchExternalPythonOperator(ExternalPythonOperator):
    """A branch whose callable runs with another interpreter."""

    _python_kind = "branch"


class BaseBranchOperator(BaseOperator):
    """Subclass it and implement `choose_branch(context)`."""

    _updraft_kind = "python"
    _python_kind = "branch"

    def choose_branch(self, context):
        raise NotImplementedError

    def execute(self, context):
        return self.choose_branch(context)


class LatestOnlyOperator(BaseOperator):
    """Skips its direct downstream tasks unless the run is the latest scheduled one (manual
    runs always go ahead)."""

    ui_color = "#e9ffdb"
    _updraft_kind = "python"
    _python_kind = "latest_only"

    def execute(self, context):
        return None

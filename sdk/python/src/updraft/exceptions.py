"""Exceptions a DAG file or a task raises, with Airflow's names and meanings."""


class AirflowException(Exception):
    """The base of updraft's task and DAG errors (Airflow's name, so `except` clauses match)."""


class AirflowSkipException(AirflowException):
    """Raised in a task: the task ends `skipped` instead of failing."""


class AirflowFailException(AirflowException):
    """Raised in a task: the task fails without using its remaining retries."""


class AirflowNotFoundException(AirflowException):
    """A connection or variable that does not exist."""


class AirflowTaskTimeout(AirflowException):
    """A task ran past its execution_timeout."""


class DuplicateTaskIdFound(AirflowException):
    """Two tasks of one DAG have the same task_id."""


class TaskNotFound(AirflowException):
    """A task id that the DAG does not have."""


class ParamValidationError(AirflowException):
    """A param's value does not fit its spec."""


class XComNotFound(AirflowException):
    """An XComArg whose upstream did not push the key it reads."""


class NotSupportedByUpdraft(AirflowException, ImportError):
    """A feature of Airflow that updraft does not have yet.

    It is an ImportError too, so that `try: import ... except ImportError` fallbacks written for
    optional Airflow providers keep working.
    """

    def __init__(self, name, hint=""):
        message = f"{name} is not supported yet by updraft"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.feature = name


def unsupported(name, hint=""):
    """A stand-in for a class or function updraft lacks: importing it works, using it raises."""

    class _Unsupported:
        def __init__(self, *args, **kwargs):
            raise NotSupportedByUpdraft(name, hint)

        def __init_subclass__(cls, **kwargs):
            raise NotSupportedByUpdraft(name, hint)

    _Unsupported.__name__ = name
    _Unsupported.__qualname__ = name
    return _Unsupported

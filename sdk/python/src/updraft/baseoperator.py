"""`BaseOperator`: a task of a DAG, its settings (from arguments, the task group's and the DAG's
`default_args`) and its place in the graph. Concrete operators live in `operators.py`; a user's
own subclass with an `execute(self, context)` method runs as a Python task."""

import datetime
import re

from . import _registry, assets, notifications, setup_teardown
from .exceptions import AirflowException, NotSupportedByUpdraft
from .nodes import DependencyMixin, XComArg
from .trigger_rule import normalize as normalize_trigger_rule

TASK_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")
MAX_ID_LENGTH = 250

# Settings updraft stores per task (the keys of a DAG document's task), with a check each.
SETTING_KEYS = (
    "trigger_rule", "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay",
    "execution_timeout", "pool", "queue", "priority_weight", "do_xcom_push", "env", "cwd",
    "skip_on_exit_code", "depends_on_past", "wait_for_downstream", "ignore_first_depends_on_past",
    "max_active_tis_per_dag", "max_active_tis_per_dagrun",
)
# Arguments Airflow accepts that only describe the task (or are Airflow 2 leftovers with no
# effect): accepted and not stored.
INFORMATIONAL_KEYS = (
    "owner", "doc", "doc_md", "doc_rst", "doc_json", "doc_yaml", "task_display_name",
    "provide_context", "start_date", "end_date", "weight_rule", "ui_color",
    "ui_fgcolor", "label", "show_return_value_in_logs", "multiple_outputs", "append_env",
    "output_encoding", "executor",
)
# Arguments that change behaviour updraft does not have: refused when set to anything but
# their neutral value, so nothing is silently dropped.
UNSUPPORTED_KEYS = {
    "sla": "SLAs",
    "wait_for_past_depends_before_skipping": "wait_for_past_depends_before_skipping",
    "run_as_user": "run_as_user",
    "executor_config": "executor_config",
    "resources": "resources",
    "task_concurrency": "task_concurrency",
    "retry_delay_multiplier": None,
    "pool_slots": "pool_slots other than 1",
}


def check_id(kind, value):
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_ID_LENGTH or not TASK_ID_PATTERN.match(value):
        raise ValueError(
            f"The {kind} {value!r} has to be made of alphanumeric characters, dashes, dots and "
            f"underscores exclusively, 1 to {MAX_ID_LENGTH} characters"
        )
    return value


def _seconds(key, value):
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    raise TypeError(f"{key} must be a datetime.timedelta or seconds, not {value!r}")


def check_setting(key, value):
    """The setting's value as updraft stores it, or an error naming the key."""
    if key == "trigger_rule":
        return normalize_trigger_rule(value)
    if key == "retries":
        if value is None:
            return 0
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # Airflow accepts "3" (with a warning)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"retries must be a whole number of at least 0, not {value!r}")
        return value
    if key in ("retry_delay", "max_retry_delay", "execution_timeout"):
        return _seconds(key, value)
    if key in ("retry_exponential_backoff", "do_xcom_push", "depends_on_past",
               "wait_for_downstream", "ignore_first_depends_on_past"):
        return bool(value)
    if key in ("max_active_tis_per_dag", "max_active_tis_per_dagrun"):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a whole number of at least 1 or None, not {value!r}")
        return value
    if key in ("pool", "queue"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key} must be a non-empty string, not {value!r}")
        return value
    if key == "priority_weight":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"priority_weight must be a whole number, not {value!r}")
        return value
    if key == "env":
        if value is None:
            return None
        if not isinstance(value, dict):
            raise TypeError(f"env must be a dict of strings, not {type(value).__name__}")
        return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
    if key == "cwd":
        if value is not None and not isinstance(value, str):
            raise TypeError(f"cwd must be a string, not {type(value).__name__}")
        return value
    if key == "skip_on_exit_code":
        if value is None:
            return []
        codes = [value] if isinstance(value, int) else list(value)
        for code in codes:
            if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
                raise ValueError(f"skip_on_exit_code must hold exit codes 0-255, not {code!r}")
        return codes
    raise KeyError(key)


# Callbacks and Airflow's e-mail keys: stored as notifier documents (see `notifications`).
NOTIFY_KEYS = notifications.CALLBACK_KEYS + ("email", "email_on_failure", "email_on_retry")


def _notify_setting(key, value, task_id):
    """A callback or e-mail key's value as the DAG document stores it."""
    if key in notifications.CALLBACK_KEYS:
        return notifications.callback_documents(key, value, task_id)
    if key == "email":
        return notifications._addresses(key, value)
    return bool(value)


def _refuse_unsupported(key, value, where):
    if key not in UNSUPPORTED_KEYS:
        return
    neutral = value is None or value is False or value == [] or value == () or value == 0 or (
        key == "pool_slots" and value == 1)
    if not neutral:
        name = UNSUPPORTED_KEYS[key] or key
        raise NotSupportedByUpdraft(name, f"{key}= in {where}")


class BaseOperator(DependencyMixin):
    """A task. Subclasses take their own arguments and pass the rest here."""

    template_fields = ()
    template_ext = ()
    ui_color = "#fff"
    # How updraft runs it: "bash" and "empty" natively, "python" by the SDK, as a Python task of
    # `_python_kind` ("task", "branch", "short_circuit", "bash", "latest_only").
    _updraft_kind = "python"
    _python_kind = "task"

    def __init__(self, task_id=None, dag=None, task_group=None, default_args=None,
                 params=None, **kwargs):
        if task_id is None:
            raise TypeError(f"{type(self).__name__} needs a task_id")
        dag = dag if dag is not None else _registry.current_dag()
        if task_group is None and dag is not None:
            task_group = _registry.current_group(dag)
        self.task_group = task_group
        self.dag = None
        self.upstream_task_ids = set()
        self.downstream_task_ids = set()
        self.task_id = check_id("task_id", self._prefixed(task_id))
        self.settings = {}
        # Callbacks and e-mail keys as notifier documents, by key (see NOTIFY_KEYS).
        self.notify = {}
        self.params = dict(params or {})
        self._source_line = None
        self._mapping = None

        merged = {}
        for source in self._default_args_chain(dag, task_group) + [default_args or {}]:
            merged.update(source)
        where = f"task {self.task_id!r}"
        for key, value in merged.items():
            # default_args may hold keys for other operator kinds: only ours are applied.
            if key in SETTING_KEYS and key in self._accepted_settings():
                self.settings[key] = check_setting(key, value)
            elif key in NOTIFY_KEYS:
                self.notify[key] = _notify_setting(key, value, self.task_id)
                setattr(self, key, value)
            else:
                _refuse_unsupported(key, value, f"default_args of {where}")
        # Assets the task updates (an event each when it succeeds) and reads.
        self.outlets = kwargs.pop("outlets", None) or []
        self.inlets = kwargs.pop("inlets", None) or []
        self._asset_documents = {
            key: assets.outlet_documents(key, getattr(self, key), where)
            for key in ("outlets", "inlets")
        }
        unknown = {}
        for key, value in kwargs.items():
            if key in SETTING_KEYS and key in self._accepted_settings():
                self.settings[key] = check_setting(key, value)
            elif key in NOTIFY_KEYS:
                self.notify[key] = _notify_setting(key, value, self.task_id)
                setattr(self, key, value)
            elif key in UNSUPPORTED_KEYS:
                _refuse_unsupported(key, value, where)
            elif key in INFORMATIONAL_KEYS:
                continue
            else:
                unknown[key] = value
        if unknown:
            raise AirflowException(
                f"Invalid arguments were passed to {type(self).__name__} (task_id: "
                f"{self.task_id}). Invalid arguments were: **kwargs: {unknown}"
            )
        self.doc_md = kwargs.get("doc_md")
        if dag is not None:
            dag.add_task(self)
        if task_group is not None:
            task_group.children[self.task_id] = self

    def _accepted_settings(self):
        return SETTING_KEYS

    def _prefixed(self, task_id):
        group = self.task_group
        return group.child_id(task_id) if group is not None else task_id

    @staticmethod
    def _default_args_chain(dag, group):
        chain = []
        while group is not None:
            chain.append(group.default_args)
            group = group.parent_group
        if dag is not None:
            chain.append(dag.default_args)
        return list(reversed(chain))

    # The graph.
    def _roots(self):
        return [self]

    def _leaves(self):
        return [self]

    @property
    def upstream_list(self):
        return [self.dag.get_task(t) for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self):
        return [self.dag.get_task(t) for t in sorted(self.downstream_task_ids)]

    def get_direct_relative_ids(self, upstream=False):
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def get_flat_relative_ids(self, upstream=False):
        seen, todo = set(), list(self.get_direct_relative_ids(upstream))
        while todo:
            task_id = todo.pop()
            if task_id not in seen:
                seen.add(task_id)
                todo.extend(self.dag.get_task(task_id).get_direct_relative_ids(upstream))
        return seen

    @property
    def log(self):
        import logging

        return logging.getLogger(f"airflow.task.operators.{type(self).__module__}."
                                 f"{type(self).__name__}")

    @property
    def output(self):
        return XComArg(self)

    # Settings read and written like Airflow's attributes (`task.retries = 3` after creation).
    def __setattr__(self, name, value):
        if name in SETTING_KEYS and "settings" in self.__dict__:
            self.settings[name] = check_setting(name, value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        if name in SETTING_KEYS:
            return self.__dict__.get("settings", {}).get(name, _SETTING_DEFAULTS.get(name))
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def label(self):
        group = self.task_group
        if group is not None and group.prefix_group_id and self.task_id.startswith(
            group.group_id + "."
        ):
            return self.task_id[len(group.group_id) + 1:]
        return self.task_id

    def execute(self, context):
        raise NotImplementedError(f"{type(self).__name__} has no execute() method")

    def render_template(self, content, context, jinja_env=None, seen_oids=None):
        """Renders `content` with the context as the task's templated fields are: strings
        as templates, lists, tuples, sets and dict values one by one, anything else as is."""
        from .templates import render

        if isinstance(content, str):
            return render(content, context)
        if isinstance(content, (list, tuple, set)):
            return type(content)(self.render_template(v, context) for v in content)
        if isinstance(content, dict):
            return {k: self.render_template(v, context) for k, v in content.items()}
        return content

    # Dynamic task mapping (see mapping.py).
    @classmethod
    def partial(cls, **kwargs):
        from .mapping import PartialOperator

        return PartialOperator(cls, kwargs)

    # Setup and teardown (`setup_teardown.py`).
    is_setup = False
    is_teardown = False
    _on_failure_fail_dagrun = False

    @property
    def on_failure_fail_dagrun(self):
        return self._on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value):
        setup_teardown.check_fail_dagrun(self, value)
        self._on_failure_fail_dagrun = bool(value)

    def as_setup(self):
        setup_teardown.mark_setup(self)
        return self

    def as_teardown(self, *, setups=None, on_failure_fail_dagrun=None):
        setup_teardown.mark_teardown(self, setups, on_failure_fail_dagrun)
        return self

    def __enter__(self):
        return setup_teardown.enter(self)

    def __exit__(self, exc_type, exc_value, traceback):
        setup_teardown.exit_block()

    def __repr__(self):
        return f"<Task({type(self).__name__}): {self.task_id}>"


_SETTING_DEFAULTS = {
    "trigger_rule": "all_success", "retries": 0, "retry_delay": 300.0,
    "retry_exponential_backoff": False, "max_retry_delay": None, "execution_timeout": None,
    "pool": "default_pool", "queue": "default", "priority_weight": 1, "do_xcom_push": True,
    "env": None, "cwd": None, "skip_on_exit_code": [99], "depends_on_past": False,
    "wait_for_downstream": False, "ignore_first_depends_on_past": True,
    "max_active_tis_per_dag": None, "max_active_tis_per_dagrun": None,
}

"""The dependency graph: `>>`/`<<` between tasks, lists, task groups, XComArgs and Labels, plus
Airflow's `chain` and `cross_downstream` helpers."""

from .exceptions import AirflowException

XCOM_RETURN_KEY = "return_value"


class DependencyMixin:
    """`a >> b`, `a << b`, `[a, b] >> c`, `a >> [b, c]` for every node kind."""

    def _roots(self):
        """Operators that a `x >> self` attaches to."""
        raise NotImplementedError

    def _leaves(self):
        """Operators that a `self >> x` starts from."""
        raise NotImplementedError

    def set_downstream(self, other, edge_modifier=None):
        for upstream in self._leaves():
            for downstream in _roots_of(other):
                _link(upstream, downstream)

    def set_upstream(self, other, edge_modifier=None):
        for upstream in _leaves_of(other):
            for downstream in self._roots():
                _link(upstream, downstream)

    def __rshift__(self, other):
        if isinstance(other, Label):
            other._upstream.append(self)
            return other
        self.set_downstream(other)
        return other

    def __lshift__(self, other):
        if isinstance(other, Label):
            other._pending_downstream.append(self)
            return other
        self.set_upstream(other)
        return other

    def __rrshift__(self, other):
        # `[a, b] >> self`
        self.set_upstream(other)
        return self

    def __rlshift__(self, other):
        # `[a, b] << self`
        self.set_downstream(other)
        return self


def _roots_of(node):
    if isinstance(node, (list, tuple, set)):
        return [op for item in node for op in _roots_of(item)]
    if isinstance(node, DependencyMixin):
        return node._roots()
    raise TypeError(f"cannot set a dependency on {type(node).__name__} {node!r}")


def _leaves_of(node):
    if isinstance(node, (list, tuple, set)):
        return [op for item in node for op in _leaves_of(item)]
    if isinstance(node, DependencyMixin):
        return node._leaves()
    raise TypeError(f"cannot set a dependency on {type(node).__name__} {node!r}")


def _link(upstream, downstream):
    if upstream is downstream:
        raise AirflowException(f"task {upstream.task_id!r} cannot depend on itself")
    if upstream.dag is None and downstream.dag is not None:
        downstream.dag.add_task(upstream)
    elif downstream.dag is None and upstream.dag is not None:
        upstream.dag.add_task(downstream)
    elif upstream.dag is not None and upstream.dag is not downstream.dag:
        raise AirflowException(
            f"tasks {upstream.task_id!r} and {downstream.task_id!r} are in different DAGs "
            f"({upstream.dag.dag_id!r} and {downstream.dag.dag_id!r})"
        )
    downstream.upstream_task_ids.add(upstream.task_id)
    upstream.downstream_task_ids.add(downstream.task_id)


NOT_SAME_INDEX = object()


def same_index_value(task, upstream_id, key):
    """In a task of a mapped task group, what an upstream task of the same group pushed at the
    task's own map index (as Airflow pulls it); `NOT_SAME_INDEX` for any other pull."""
    pushed = getattr(task, "_same_index_xcoms", None)
    group = getattr(task, "_map_group_id", None)
    if pushed is None or group is None or task.dag is None:
        return NOT_SAME_INDEX
    upstream = task.dag.task_dict.get(upstream_id)
    if upstream is None or getattr(upstream, "_map_group_id", None) != group:
        return NOT_SAME_INDEX
    return (pushed.get(upstream_id) or {}).get(key)


class XComArg(DependencyMixin):
    """A reference to an XCom of a task (by default its return value). Passed to a task, it
    makes that task downstream and is replaced by the value at run time."""

    def __init__(self, operator, key=XCOM_RETURN_KEY):
        self.operator = operator
        self.key = key

    def __getitem__(self, key):
        return XComArg(self.operator, key)

    def __iter__(self):
        raise TypeError("an XComArg is not iterable; index it with a key of multiple_outputs")

    def _roots(self):
        return [self.operator]

    def _leaves(self):
        return [self.operator]

    def resolve(self, context):
        same_index = same_index_value(context.get("task"), self.operator.task_id, self.key)
        if same_index is not NOT_SAME_INDEX:
            value = same_index
        else:
            values = context["ti"].xcom_pull(task_ids=[self.operator.task_id], key=self.key)
            value = values[0] if values else None
        if value is None and self.key != XCOM_RETURN_KEY:
            from .exceptions import XComNotFound

            raise XComNotFound(
                f"XComArg result from {self.operator.task_id} at {self.operator.dag.dag_id} "
                f"with key={self.key!r} is not found"
            )
        return value

    def __repr__(self):
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __str__(self):
        # As in Airflow: the template that pulls the value, for use inside templated strings
        # (`env={"X": str(task.output)}`, f-strings of bash commands).
        dag_id = self.operator.dag.dag_id if self.operator.dag is not None else None
        pulled = [f"task_ids='{self.operator.task_id}'"]
        if dag_id is not None:
            pulled.append(f"dag_id='{dag_id}'")
        pulled.append(f"key='{self.key}'")
        return f"{{{{ task_instance.xcom_pull({', '.join(pulled)}) }}}}"

    # Values derived from a result, mapped over or passed whole (xcom_transforms.py).
    def map(self, f):
        from .xcom_transforms import MapXComArg

        return MapXComArg(self, [f])

    def zip(self, *others, **kwargs):
        from .xcom_transforms import NOTSET, ZipXComArg

        # `fillvalue` given (even None) means as long as the longest, as in Airflow.
        fillvalue = kwargs.pop("fillvalue", NOTSET)
        if kwargs:
            raise TypeError(f"zip() got unexpected arguments {sorted(kwargs)}")
        return ZipXComArg([self, *others], fillvalue=fillvalue)

    def concat(self, *others):
        from .xcom_transforms import ConcatXComArg

        return ConcatXComArg([self, *others])

    def as_setup(self):
        self.operator.as_setup()
        return self

    def as_teardown(self, *, setups=None, on_failure_fail_dagrun=None):
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self):
        from .setup_teardown import enter

        return enter(self)

    def __exit__(self, exc_type, exc_value, traceback):
        from .setup_teardown import exit_block

        exit_block()


class Label(DependencyMixin):
    """A label on an edge: `a >> Label("when empty") >> b`. The label itself is not stored
    (updraft's DAG documents have no edge labels); the dependency is."""

    def __init__(self, label):
        self.label = label
        self._upstream = []
        self._pending_downstream = []

    def __rrshift__(self, other):
        self._upstream.append(other)
        return self

    def __rshift__(self, other):
        for upstream in self._upstream:
            _set_edge(upstream, other)
        self._pending_downstream.append(other)
        return other

    def __lshift__(self, other):
        for downstream in self._pending_downstream:
            _set_edge(other, downstream)
        self._upstream.append(other)
        return other

    def __rlshift__(self, other):
        self._pending_downstream.append(other)
        return self

    def _roots(self):
        return []

    def _leaves(self):
        return []


EdgeModifier = Label


def _set_edge(upstream, downstream):
    for up in _leaves_of(upstream):
        for down in _roots_of(downstream):
            _link(up, down)


def chain(*tasks):
    """`chain(a, b, [c, d], e)`: each element upstream of the next; two adjacent lists must have
    the same length and are linked pairwise, as Airflow's chain does."""
    for up, down in zip(tasks, tasks[1:]):
        up_list = isinstance(up, (list, tuple))
        down_list = isinstance(down, (list, tuple))
        if up_list and down_list:
            if len(up) != len(down):
                raise AirflowException(
                    f"chain() got lists of different lengths: {len(up)} and {len(down)}"
                )
            for a, b in zip(up, down):
                _set_edge(a, b)
        else:
            _set_edge(up, down)


def chain_linear(*elements):
    """Every element of each group upstream of every element of the next."""
    for up, down in zip(elements, elements[1:]):
        _set_edge(up, down)


def cross_downstream(from_tasks, to_tasks):
    """Every task of `from_tasks` upstream of every task of `to_tasks`."""
    for task in from_tasks:
        _set_edge(task, list(to_tasks))

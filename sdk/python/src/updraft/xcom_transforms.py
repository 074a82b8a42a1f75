"""`XComArg.map(f)`, `.zip(...)` and `.concat(...)`: values derived from tasks' results, to map
over (`task.expand(x=nums.map(f))`) or to pass whole. Their length is known to updraft from the
results alone (a map keeps its source's, a zip takes the shortest or, with `fillvalue`, the
longest, a concat adds them up), so the scheduler expands them; the callables of a map run in
Python where the value is resolved: in the mapped instance, on its own item, or in the task
that takes the whole value. See docs/python-protocol.md."""

from .exceptions import AirflowException
from .nodes import XCOM_RETURN_KEY, XComArg

NOTSET = object()


def _check_return_value(arg, what):
    if not isinstance(arg, XComArg):
        raise TypeError(f"{what} takes task results (XComArgs), not {type(arg).__name__}")
    if type(arg) is XComArg and arg.key != XCOM_RETURN_KEY:
        raise ValueError(f"cannot {what} against a non-return XCom ({arg!r})")


def as_items(value, what):
    """A resolved value as the items mapped over: a list's, a dict's (key, value) pairs."""
    if isinstance(value, dict):
        return [list(item) for item in value.items()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError(f"{what} expects a list or a dict, not {type(value).__name__}")


class _DerivedXComArg(XComArg):
    """An XComArg computed from others; `_args` are the ones it reads."""

    key = XCOM_RETURN_KEY

    def __init__(self, args):
        self._args = list(args)

    @property
    def operator(self):
        # The first task read: what `>>` and error messages use for a single task.
        return self._args[0].operator

    def _roots(self):
        return [op for arg in self._args for op in arg._roots()]

    def _leaves(self):
        return [op for arg in self._args for op in arg._leaves()]

    def __getitem__(self, key):
        raise TypeError(f"{type(self).__name__} cannot be indexed by key")

    def __str__(self):
        raise TypeError(f"{type(self).__name__} cannot be used in a template string")


class MapXComArg(_DerivedXComArg):
    """`arg.map(f)`: each item of `arg` turned by `f` (and the callables chained after it)."""

    def __init__(self, arg, callables):
        _check_return_value(arg, "map")
        if isinstance(arg, MapXComArg):
            # `a.map(f).map(g)` is one map of f then g, as in Airflow.
            arg, callables = arg.arg, arg.callables + list(callables)
        super().__init__([arg])
        self.arg = arg
        self.callables = list(callables)
        from .taskflow import TaskDecorator

        for function in self.callables:
            if isinstance(function, TaskDecorator):
                raise ValueError("map() argument must be a plain function, not a @task operator")
            if not callable(function):
                raise TypeError(f"map() takes a callable, not {type(function).__name__}")

    def apply(self, item):
        for function in self.callables:
            item = function(item)
        return item

    def resolve(self, context):
        return [self.apply(item) for item in as_items(self.arg.resolve(context), "map()")]

    def final(self, raw):
        return self.apply(final_item(self.arg, raw))

    def __repr__(self):
        return f"MapXComArg({self.arg!r}, {len(self.callables)} callable(s))"


class ZipXComArg(_DerivedXComArg):
    """`arg.zip(*others, fillvalue=...)`: tuples of the items at each index."""

    def __init__(self, args, fillvalue=NOTSET):
        for arg in args:
            _check_return_value(arg, "zip")
        super().__init__(args)
        self.fillvalue = fillvalue

    def resolve(self, context):
        columns = [as_items(arg.resolve(context), "zip()") for arg in self._args]
        lengths = [len(c) for c in columns]
        length = max(lengths) if self.fillvalue is not NOTSET else min(lengths)
        fill = None if self.fillvalue is NOTSET else self.fillvalue
        return [tuple(c[i] if i < len(c) else fill for c in columns) for i in range(length)]

    def final(self, raw):
        return tuple(final_item(arg, item) for arg, item in zip(self._args, raw))

    def __repr__(self):
        return f"ZipXComArg({self._args!r})"


class ConcatXComArg(_DerivedXComArg):
    """`arg.concat(*others)`: the items of each, one after the other."""

    def __init__(self, args):
        for arg in args:
            _check_return_value(arg, "concat")
            if needs_python(arg):
                from .exceptions import NotSupportedByUpdraft

                raise NotSupportedByUpdraft("concat() of an XComArg.map()",
                                            "map the concatenation instead")
        super().__init__(args)

    def resolve(self, context):
        out = []
        for arg in self._args:
            out.extend(as_items(arg.resolve(context), "concat()"))
        return out

    def final(self, raw):
        return raw

    def __repr__(self):
        return f"ConcatXComArg({self._args!r})"


def needs_python(value):
    if isinstance(value, MapXComArg):
        return True
    if isinstance(value, _DerivedXComArg):
        return any(needs_python(arg) for arg in value._args)
    return False


def final_item(source, raw):
    """A mapped instance's value of `source`, from the item updraft gave it."""
    if isinstance(source, _DerivedXComArg):
        return source.final(raw)
    return raw


def source_document(value):
    """How a derived value is written in the DAG document (see `mapping.source_document`)."""
    if isinstance(value, MapXComArg):
        from .operators import callable_name

        return {"map": source_document(value.arg),
                "callables": [callable_name(f) for f in value.callables]}
    if isinstance(value, ZipXComArg):
        doc = {"zip": [source_document(arg) for arg in value._args]}
        if value.fillvalue is not NOTSET:
            doc["fillvalue"] = value.fillvalue
        return doc
    if isinstance(value, ConcatXComArg):
        return {"concat": [source_document(arg) for arg in value._args]}
    if value.key != XCOM_RETURN_KEY:
        raise AirflowException(f"cannot map over a non-return XCom ({value!r})")
    return {"xcom": value.operator.task_id}

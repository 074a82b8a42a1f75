"""Values known only at run time inside a task's arguments (XComArgs, `@dag` params) and the
rendering of templated arguments."""

from .dag import DagParam
from .nodes import XComArg


def find_references(value):
    """Every XComArg and DagParam inside `value` (lists, tuples, sets and dicts are searched)."""
    found = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (XComArg, DagParam)):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return found


def resolve(value, context, render=None):
    """`value` with references replaced by their run-time values and, when `render` is given,
    its strings rendered as templates (as Airflow renders templated fields)."""
    if isinstance(value, (XComArg, DagParam)):
        return value.resolve(context)
    if isinstance(value, str):
        return render(value) if render is not None else value
    if isinstance(value, dict):
        return {
            resolve(k, context, render): resolve(v, context, render) for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve(v, context, render) for v in value]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(resolve(v, context, render) for v in value))
    if isinstance(value, (tuple, set, frozenset)):
        return type(value)(resolve(v, context, render) for v in value)
    return value
